"""Who may do what: the role x endpoint matrix, token attacks, the quota and sign-in throttling,
through the real handlers and API Gateway events."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from ordo.keyring import rotate_signing_key
from ordo.tokens import SigningKey, TokenType, issue_token
from tests.e2e.conftest import USER_FIELDS
from tests.harness import PASSWORD, Account, InProcessStack, Response, reset_ordo_caches

ANONYMOUS = None


@dataclass
class People:
    alice: Account
    bob: Account
    admin: Account
    deleted: Account
    task_id: str

    def tokens(self) -> dict[str, str | None]:
        return {
            "anonymous": ANONYMOUS,
            "user": self.alice.access_token,
            "other user": self.bob.access_token,
            "admin": self.admin.access_token,
            "deleted user": self.deleted.access_token,
        }


@pytest.fixture
def people(anonymous_cloud: InProcessStack) -> People:
    cloud = anonymous_cloud
    alice, bob = cloud.sign_up("alice"), cloud.sign_up("bob")
    admin, deleted = cloud.sign_up("root", admin=True), cloud.sign_up("carol")
    removed = cloud.request("DELETE", f"/users/{deleted.id}", token=admin.access_token)
    assert removed.status == 204
    task = cloud.request(
        "POST", "/tasks", {"type": "reverse", "data": "abc"}, token=alice.access_token
    )
    assert task.status == 202
    return People(alice, bob, admin, deleted, task.body["task_id"])


# --- the matrix ----------------------------------------------------------------------------------

# Callers in the order they ask: the admin last, as its call may change things (a delete).
ROLES = ("anonymous", "user", "other user", "deleted user", "admin")
# (method, path, body): the status each of ROLES gets. "user" is alice, who owns {task}.
MATRIX: list[tuple[str, str, dict[str, object] | None, tuple[int, int, int, int, int]]] = [
    ("POST", "/tasks", {"type": "swap_pairs", "data": "abcd"}, (401, 202, 202, 401, 202)),
    ("GET", "/tasks/{task}", None, (401, 200, 404, 401, 200)),
    ("GET", "/tasks/{task}/result", None, (401, 409, 404, 401, 409)),
    ("GET", "/auth/me", None, (401, 200, 200, 401, 200)),
    ("GET", "/users", None, (401, 403, 403, 401, 200)),
    ("GET", "/users/{alice}", None, (401, 200, 404, 401, 200)),
    ("PUT", "/users/{alice}", {"email": "a.new@example.com"}, (401, 422, 404, 401, 200)),
    (
        "PUT",
        "/users/{alice}",
        {"email": "a.new@example.com", "current_password": PASSWORD},
        (401, 200, 404, 401, 200),
    ),
    # role and is_active are admin-only, even unchanged
    ("PUT", "/users/{alice}", {"role": "user"}, (401, 403, 404, 401, 200)),
    ("PUT", "/users/{alice}", {"is_active": True}, (401, 403, 404, 401, 200)),
    ("PUT", "/users/{bob}/role", {"role": "user"}, (401, 403, 403, 401, 200)),
    ("DELETE", "/users/{bob}", None, (401, 403, 403, 401, 204)),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    MATRIX,
    ids=[f"{method} {path} {body or ''}".strip() for method, path, body, _ in MATRIX],
)
def test_who_gets_what(
    anonymous_cloud: InProcessStack,
    people: People,
    method: str,
    path: str,
    body: dict[str, object] | None,
    expected: tuple[int, ...],
) -> None:
    url = path.format(task=people.task_id, alice=people.alice.id, bob=people.bob.id)
    tokens = people.tokens()
    got = {
        role: anonymous_cloud.request(method, url, body, token=tokens[role]).status
        for role in ROLES
    }
    assert got == dict(zip(ROLES, expected, strict=True))


def test_another_users_task_looks_exactly_like_a_missing_one(
    anonymous_cloud: InProcessStack, people: People
) -> None:
    bob = people.bob.access_token
    theirs = anonymous_cloud.request("GET", f"/tasks/{people.task_id}", token=bob)
    missing = anonymous_cloud.request("GET", f"/tasks/{'0' * 32}", token=bob)
    assert (theirs.status, theirs.body) == (404, {"detail": "Task not found"})
    assert (missing.status, missing.body) == (theirs.status, theirs.body)


def test_me_is_the_caller_without_secrets(anonymous_cloud: InProcessStack, people: People) -> None:
    me = anonymous_cloud.request("GET", "/auth/me", token=people.alice.access_token).body
    assert me["id"] == people.alice.id
    assert "password_hash" not in me


def test_the_user_list_pages_with_a_cursor(anonymous_cloud: InProcessStack, people: People) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = anonymous_cloud.request(
            "GET", "/users", query=query, token=people.admin.access_token
        )
        assert page.status == 200
        assert len(page.body["items"]) <= 2
        seen += [user["username"] for user in page.body["items"]]
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == ["alice", "bob", "carol", "root"]
    bad = anonymous_cloud.request(
        "GET", "/users", query="cursor=nope", token=people.admin.access_token
    )
    assert bad.status == 422
    assert bad.body["detail"] == "cursor is not valid"


def test_a_deleted_users_jobs_remain_and_an_admin_still_reads_them(
    anonymous_cloud: InProcessStack, people: People
) -> None:
    admin = people.admin.access_token
    assert anonymous_cloud.request("DELETE", f"/users/{people.alice.id}", token=admin).status == 204
    view = anonymous_cloud.request("GET", f"/tasks/{people.task_id}", token=admin)
    assert view.status == 200
    login = {"username": "alice", "password": PASSWORD}
    assert anonymous_cloud.request("POST", "/auth/login/json", login, token=None).status == 401


def test_an_admin_cannot_lock_themself_out(anonymous_cloud: InProcessStack, people: People) -> None:
    me, token = people.admin.id, people.admin.access_token
    for method, path, body in [
        ("DELETE", f"/users/{me}", None),
        ("PUT", f"/users/{me}/role", {"role": "user"}),
        ("PUT", f"/users/{me}", {"is_active": False}),
    ]:
        response = anonymous_cloud.request(method, path, body, token=token)
        assert response.status == 409, (method, path)
        assert "your own account" in response.body["detail"]


@pytest.mark.parametrize("user_id", ["nope", "0" * 32, "x" * 3000, "0" * 31 + "g"])
def test_unknown_or_malformed_user_ids_are_404(
    anonymous_cloud: InProcessStack, people: People, user_id: str
) -> None:
    response = anonymous_cloud.request("GET", f"/users/{user_id}", token=people.admin.access_token)
    assert (response.status, response.body) == (404, {"detail": "User not found"})


# --- registration and sign-in ------------------------------------------------------------------


def test_register_returns_the_user_without_secrets(anonymous_cloud: InProcessStack) -> None:
    body = {"email": "Dana@Example.com", "username": "dana", "password": PASSWORD}
    response = anonymous_cloud.request("POST", "/auth/register", body, token=None)
    assert response.status == 201
    assert set(response.body) == USER_FIELDS
    assert (response.body["role"], response.body["is_active"]) == ("user", True)
    assert PASSWORD not in json.dumps(response.body)


def test_a_bad_email_is_a_422_saying_what_is_wrong(anonymous_cloud: InProcessStack) -> None:
    body = {"email": "dana.example.com", "username": "dana2", "password": PASSWORD}
    response = anonymous_cloud.request("POST", "/auth/register", body, token=None)
    assert response.status == 422
    assert response.body["detail"] == (
        "body.email: email must be an address like name@example.com: it has no @"
    )


def test_a_duplicate_email_or_username_is_409_naming_which(anonymous_cloud: InProcessStack) -> None:
    anonymous_cloud.sign_up("erin")
    twin_name = {"email": "other@example.com", "username": "ERIN", "password": PASSWORD}
    twin_mail = {"email": "erin@EXAMPLE.com", "username": "erin2", "password": PASSWORD}
    by_name = anonymous_cloud.request("POST", "/auth/register", twin_name, token=None)
    by_mail = anonymous_cloud.request("POST", "/auth/register", twin_mail, token=None)
    assert (by_name.status, by_name.body["detail"]) == (409, "Username already taken")
    assert (by_mail.status, by_mail.body["detail"]) == (409, "Email already registered")


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Short1a", "at least 8"),
        ("alllower1", "upper-case"),
        ("ALLUPPER1", "lower-case"),
        ("NoDigitsHere", "digit"),
        ("Aa1" + "x" * 98, "at most 100"),
    ],
)
def test_the_password_policy_is_enforced_at_registration(
    anonymous_cloud: InProcessStack, password: str, problem: str
) -> None:
    body = {"email": "fay@example.com", "username": "fay", "password": password}
    response = anonymous_cloud.request("POST", "/auth/register", body, token=None)
    assert response.status == 422
    assert problem in response.body["detail"]


def test_wrong_password_unknown_user_and_inactive_user_get_the_same_401(
    anonymous_cloud: InProcessStack,
) -> None:
    admin = anonymous_cloud.sign_up("root", admin=True)
    gus = anonymous_cloud.sign_up("gus")
    deactivated = anonymous_cloud.request(
        "PUT", f"/users/{gus.id}", {"is_active": False}, token=admin.access_token
    )
    assert deactivated.status == 200
    answers = [
        anonymous_cloud.request("POST", "/auth/login/json", body, token=None)
        for body in (
            {"username": "root", "password": "Wrong-passw0rd"},
            {"username": "nobody", "password": PASSWORD},
            {"username": "gus", "password": PASSWORD},
        )
    ]
    assert {(a.status, a.body["detail"]) for a in answers} == {
        (401, "Incorrect username or password")
    }


def test_the_oauth2_form_signs_in(anonymous_cloud: InProcessStack) -> None:
    anonymous_cloud.sign_up("hal")
    response = anonymous_cloud.request(
        "POST",
        "/auth/login",
        body=f"username=hal&password={PASSWORD}&grant_type=password",
        headers={"content-type": "application/x-www-form-urlencoded"},
        token=None,
    )
    assert response.status == 200
    assert set(response.body) == {"access_token", "refresh_token", "token_type"}
    assert response.body["token_type"] == "bearer"


# --- token attacks -----------------------------------------------------------------------------


def _signing_key(cloud: InProcessStack) -> SigningKey:
    name = cloud.stack.parameters["JwtSigningKeyParameterName"]
    value = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]
    return SigningKey.from_jwk(value["Value"])


def _b64(part: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def _forge(token: str, header: dict[str, object] | None = None, **claims: object) -> str:
    head, body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    new_head = _b64(header) if header else head
    return f"{new_head}.{_b64(payload | claims)}.{signature}"


def test_token_attacks_are_401(anonymous_cloud: InProcessStack) -> None:
    cloud = anonymous_cloud
    ivy = cloud.sign_up("ivy")
    key = _signing_key(cloud)
    issuer = cloud.stack.functions()["AuthFunction"].environment["ORDO_JWT_ISSUER"]

    def signed(with_key: SigningKey = key, at: datetime | None = None, **claims: str) -> str:
        token, _ = issue_token(
            with_key,
            ivy.id,
            "user",
            TokenType.ACCESS,
            now=at or datetime.now(UTC),
            lifetime=timedelta(minutes=15),
            generation=0,
            family="f",
            issuer=claims.get("iss", issuer),
            audience=claims.get("aud", "ordo-api"),
        )
        return token

    assert cloud.request("GET", "/auth/me", token=signed()).status == 200  # the control
    header, payload, _ = ivy.access_token.split(".")
    public_x = base64.urlsafe_b64decode(key.x + "=")  # HS256 keyed with the public key
    confused = hmac.new(public_x, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    hs256 = _b64({"alg": "HS256", "kid": key.kid, "typ": "JWT"})
    attacks = {
        "tampered claims": _forge(ivy.access_token, role="admin"),
        "alg none": _forge(ivy.access_token, {"alg": "none", "typ": "JWT"}).rsplit(".", 1)[0] + ".",
        "HS256 keyed with the public key": (
            f"{hs256}.{payload}.{base64.urlsafe_b64encode(confused).rstrip(b'=').decode()}"
        ),
        "signed with another key": signed(SigningKey.generate()),
        "another issuer": signed(iss="ordo/another-stack"),
        "another audience": signed(aud="another-api"),
        "expired": signed(at=datetime.now(UTC) - timedelta(hours=1)),
        "refresh token as access token": ivy.refresh_token,
        "garbage": "not-a-jwt",
    }
    for name, token in attacks.items():
        response = cloud.request("GET", "/auth/me", token=token)
        assert (response.status, response.body) == (
            401,
            {"detail": "Could not validate credentials"},
        ), name
        assert response.headers["www-authenticate"] == "Bearer", name


def _refresh(cloud: InProcessStack, token: str) -> Response:
    return cloud.request("POST", "/auth/refresh", {"refresh_token": token}, token=None)


def test_refresh_rotates_and_refuses_access_tokens(anonymous_cloud: InProcessStack) -> None:
    jay = anonymous_cloud.sign_up("jay")
    rotated = _refresh(anonymous_cloud, jay.refresh_token)
    assert rotated.status == 200
    assert rotated.body["refresh_token"] != jay.refresh_token
    assert _refresh(anonymous_cloud, jay.access_token).status == 401  # wrong type
    again = _refresh(anonymous_cloud, rotated.body["refresh_token"])
    assert again.status == 200
    assert (
        anonymous_cloud.request("GET", "/auth/me", token=again.body["access_token"]).status == 200
    )


def test_reusing_a_spent_refresh_token_revokes_its_whole_family(
    anonymous_cloud: InProcessStack,
) -> None:
    # Given a victim who refreshed once, and a thief holding a copy of the spent token
    victim = anonymous_cloud.sign_up("vic")
    other_session = anonymous_cloud.sign_in("vic")
    rotated = _refresh(anonymous_cloud, victim.refresh_token).body
    # When the thief presents the spent token
    reused = _refresh(anonymous_cloud, victim.refresh_token)
    # Then it is refused, and the victim's current refresh token stops working too
    assert reused.status == 401
    assert reused.body == {
        "detail": "Refresh token reused; the session is revoked, please sign in again"
    }
    assert _refresh(anonymous_cloud, rotated["refresh_token"]).status == 401
    assert _refresh(anonymous_cloud, victim.refresh_token).status == 401
    # ...while another sign-in of the same user is another family, untouched
    assert _refresh(anonymous_cloud, other_session.refresh_token).status == 200
    # ...and access tokens are not checked against the family: they run out on their own
    assert anonymous_cloud.request("GET", "/auth/me", token=rotated["access_token"]).status == 200


def test_logout_revokes_the_callers_family_and_is_idempotent(
    anonymous_cloud: InProcessStack,
) -> None:
    cloud = anonymous_cloud
    lou = cloud.sign_up("lou")
    kept = cloud.sign_in("lou")

    def logout(body: dict[str, str] | None, token: str | None) -> Response:
        return cloud.request("POST", "/auth/logout", body, token=token)

    # As the console and the CLI send it: the refresh token in the body, and the bearer
    first = logout({"refresh_token": lou.refresh_token}, lou.access_token)
    assert (first.status, first.body) == (204, None)
    assert _refresh(cloud, lou.refresh_token).status == 401
    assert logout({"refresh_token": lou.refresh_token}, lou.access_token).status == 204  # again
    assert logout({"refresh_token": lou.refresh_token}, None).status == 204
    assert _refresh(cloud, kept.refresh_token).status == 200  # another sign-in: untouched

    # The bearer alone names the family too
    only_bearer = cloud.sign_in("lou")
    assert logout(None, only_bearer.access_token).status == 204
    assert _refresh(cloud, only_bearer.refresh_token).status == 401

    # Nothing valid names a family: 401, with a detail
    for body, token in [(None, None), ({"refresh_token": "junk"}, None), ({}, "junk")]:
        refused = logout(body, token)
        assert refused.status == 401, (body, token)
        assert refused.body == {"detail": "Could not validate credentials"}
    too_long = logout({"refresh_token": "x" * 5000}, None)
    assert too_long.status == 422
    assert "detail" in too_long.body


def test_a_rotated_key_keeps_the_previous_keys_tokens_valid(
    anonymous_cloud: InProcessStack,
) -> None:
    cloud = anonymous_cloud
    names = {
        "private_name": cloud.stack.parameters["JwtSigningKeyParameterName"],
        "public_name": cloud.stack.parameters["JwtPublicKeysParameterName"],
    }
    before = cloud.sign_up("rob")
    rotate_signing_key(boto3.client("ssm"), **names)
    reset_ordo_caches()  # new containers: they read the new keys
    # The previous key's tokens still verify, and refresh into tokens of the new key
    assert cloud.request("GET", "/auth/me", token=before.access_token).status == 200
    rotated = _refresh(cloud, before.refresh_token)
    assert rotated.status == 200
    after = rotated.body["access_token"]
    assert _kid(after) == _signing_key(cloud).kid != _kid(before.access_token)
    # Two rotations on, the first key is gone: its tokens no longer verify
    rotate_signing_key(boto3.client("ssm"), **names)
    reset_ordo_caches()
    assert cloud.request("GET", "/auth/me", token=before.access_token).status == 401
    assert cloud.request("GET", "/auth/me", token=after).status == 200


def _kid(token: str) -> str:
    header = token.split(".", maxsplit=1)[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def test_a_deleted_users_refresh_token_is_refused(anonymous_cloud: InProcessStack) -> None:
    admin = anonymous_cloud.sign_up("root", admin=True)
    kim = anonymous_cloud.sign_up("kim")
    anonymous_cloud.request("DELETE", f"/users/{kim.id}", token=admin.access_token)
    response = anonymous_cloud.request(
        "POST", "/auth/refresh", {"refresh_token": kim.refresh_token}, token=None
    )
    assert response.status == 401


def test_a_password_change_signs_the_account_out_everywhere(
    anonymous_cloud: InProcessStack,
) -> None:
    lee = anonymous_cloud.sign_up("lee")
    change = {"password": "Changed123", "current_password": PASSWORD}
    changed = anonymous_cloud.request("PUT", f"/users/{lee.id}", change, token=lee.access_token)
    assert changed.status == 200, changed.body
    assert anonymous_cloud.request("GET", "/auth/me", token=lee.access_token).status == 401
    refreshed = anonymous_cloud.request(
        "POST", "/auth/refresh", {"refresh_token": lee.refresh_token}, token=None
    )
    assert refreshed.status == 401
    again = anonymous_cloud.sign_in("lee", "Changed123")
    assert anonymous_cloud.request("GET", "/auth/me", token=again.access_token).status == 200


# --- quota ---------------------------------------------------------------------------------------


def test_the_pending_quota_at_its_boundary(
    anonymous_cloud: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDO_MAX_PENDING_PER_USER", "3")
    reset_ordo_caches()
    cloud = anonymous_cloud
    lee, max_ = cloud.sign_up("lee"), cloud.sign_up("max")
    body = {"type": "reverse", "data": "abc"}

    accepted = [cloud.request("POST", "/tasks", body, token=lee.access_token) for _ in range(3)]
    assert [r.status for r in accepted] == [202, 202, 202]
    refused = cloud.request("POST", "/tasks", body, token=lee.access_token)
    assert refused.status == 429
    assert "3 jobs waiting" in refused.body["detail"]
    assert cloud.queue_depth() == 3  # the refused job was never queued
    assert cloud.request("POST", "/tasks", body, token=max_.access_token).status == 202

    cloud.drain()
    assert cloud.request("POST", "/tasks", body, token=lee.access_token).status == 202


# --- sign-in throttling --------------------------------------------------------------------------


def test_repeated_failures_slow_that_username_only(anonymous_cloud: InProcessStack) -> None:
    cloud = anonymous_cloud
    cloud.sign_up("mia")
    cloud.sign_up("ned")
    wrong = {"username": "mia", "password": "Wrong-passw0rd"}
    failures = [cloud.request("POST", "/auth/login/json", wrong, token=None) for _ in range(5)]
    assert [f.status for f in failures] == [401] * 5

    right = {"username": "mia", "password": PASSWORD}
    locked = cloud.request("POST", "/auth/login/json", right, token=None)
    assert locked.status == 429
    assert 0 < int(locked.headers["retry-after"]) <= 30
    assert "try again later" in locked.body["detail"]
    other = {"username": "ned", "password": PASSWORD}
    assert cloud.request("POST", "/auth/login/json", other, token=None).status == 200


def test_an_attacker_locks_their_own_address_not_the_owner(anonymous_cloud: InProcessStack) -> None:
    cloud = anonymous_cloud
    cloud.sign_up("mia")
    wrong = {"username": "mia", "password": "Wrong-passw0rd"}
    right = {"username": "mia", "password": PASSWORD}
    attacker, owner = "203.0.113.66", "198.51.100.7"
    for _ in range(5):
        cloud.request("POST", "/auth/login/json", wrong, token=None, source_ip=attacker)
    refused = cloud.request("POST", "/auth/login/json", right, token=None, source_ip=attacker)
    assert refused.status == 429
    signed_in = cloud.request("POST", "/auth/login/json", right, token=None, source_ip=owner)
    assert signed_in.status == 200, signed_in.body


def test_one_address_cannot_register_in_bulk(
    anonymous_cloud: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDO_CLIENT_ATTEMPTS", "3")
    reset_ordo_caches()
    cloud, prober = anonymous_cloud, "203.0.113.66"
    cloud.sign_up("mia")
    probes = [
        cloud.request(
            "POST",
            "/auth/register",
            {"email": "mia@example.com", "username": f"probe{n}", "password": PASSWORD},
            token=None,
            source_ip=prober,
        )
        for n in range(4)
    ]
    assert [p.status for p in probes] == [409, 409, 409, 429]
    assert int(probes[-1].headers["retry-after"]) > 0
    fresh = {"email": "neo@example.com", "username": "neo", "password": PASSWORD}
    other = cloud.request("POST", "/auth/register", fresh, token=None, source_ip="198.51.100.7")
    assert other.status == 201


def test_changing_your_own_password_needs_the_current_one(anonymous_cloud: InProcessStack) -> None:
    lee = anonymous_cloud.sign_up("lee")
    url, token = f"/users/{lee.id}", lee.access_token
    missing = anonymous_cloud.request("PUT", url, {"password": "Changed123"}, token=token)
    assert (missing.status, missing.body["detail"]) == (
        422,
        "current_password is required to change your own email, username or password",
    )
    wrong = {"password": "Changed123", "current_password": "Wrong-passw0rd"}
    assert anonymous_cloud.request("PUT", url, wrong, token=token).status == 403
    assert anonymous_cloud.request("GET", "/auth/me", token=token).status == 200
