"""Accounts and access over HTTP: who may do what, as a client sees it."""

import secrets

import httpx

from tests.e2e.conftest import PASSWORD, USER_FIELDS, Api


def test_register_sign_in_and_rotate_tokens(api: Api, anonymous: httpx.Client) -> None:
    name = f"eve-{secrets.token_hex(4)}"  # new on every run, on every stack
    body = {"email": f"Eve.{name}@Example.com", "username": name, "password": PASSWORD}
    registered = anonymous.post("/auth/register", json=body)
    assert registered.status_code == 201, registered.text
    user = registered.json()
    assert set(user) == USER_FIELDS
    assert (user["role"], user["is_active"]) == ("user", True)
    assert "password" not in registered.text
    again = anonymous.post("/auth/register", json=body)
    assert again.status_code == 409, again.text

    pair = anonymous.post("/auth/login/json", json=body).json()
    assert pair["token_type"] == "bearer"
    me = anonymous.get("/auth/me", headers={"authorization": f"Bearer {pair['access_token']}"})
    assert me.json()["username"] == name

    rotated = anonymous.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert rotated.status_code == 200
    reused = anonymous.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert reused.status_code == 401
    assert reused.json()["detail"]


def test_every_job_route_needs_a_token(anonymous: httpx.Client) -> None:
    task_id = "0" * 32
    for method, path in [
        ("POST", "/tasks"),
        ("GET", f"/tasks/{task_id}"),
        ("GET", f"/tasks/{task_id}/result"),
        ("GET", "/auth/me"),
        ("GET", "/users"),
    ]:
        response = anonymous.request(method, path, json={"type": "reverse", "data": "x"})
        assert response.status_code == 401, (method, path)
        assert response.json()["detail"] == "Not authenticated"
        assert response.headers["www-authenticate"] == "Bearer"


def test_another_users_task_is_404_and_an_admin_sees_it(
    api: Api, client: httpx.Client, admin: httpx.Client
) -> None:
    task_id = client.post("/tasks", json={"type": "reverse", "data": "abc"}).json()["task_id"]
    _, other_token = api.sign_up()
    with api.client(other_token) as other:
        assert other.get(f"/tasks/{task_id}").status_code == 404
        assert other.get(f"/tasks/{task_id}/result").status_code == 404
    assert admin.get(f"/tasks/{task_id}").status_code == 200
    assert api.wait_for(client, task_id)["status"] == "completed"


def test_an_admin_lists_and_deletes_users_and_a_deleted_users_token_dies(
    api: Api, admin: httpx.Client
) -> None:
    username, token = api.sign_up()
    with api.client(token) as user:
        user_id = user.get("/auth/me").json()["id"]
        assert user.get("/users").status_code == 403

        page = admin.get("/users", params={"limit": 100}).json()
        assert {"items", "next_cursor"} == set(page)
        assert admin.delete(f"/users/{user_id}").status_code == 204

        assert user.get("/auth/me").status_code == 401
    signed_in = api.client().post(
        "/auth/login/json", json={"username": username, "password": PASSWORD}
    )
    assert signed_in.status_code == 401
