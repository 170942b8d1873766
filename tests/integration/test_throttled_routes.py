"""DynamoDB throttling on any request path is a 503 with ``Retry-After``, never a 500.

Every HTTP route in template.yaml is called through its real handler on moto: once to count
the DynamoDB calls it makes, then once per call ``i``, with call ``i`` and every later one
refused with DynamoDB's own ``ProvisionedThroughputExceededException`` or
``ThrottlingException`` (as a throttled table does, past the SDK's retries).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.harness import PASSWORD, Account, InProcessStack, Response, reset_ordo_caches


@dataclass
class Call:
    method: str
    path: str
    token: str | None
    json_body: Any = None
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    query: str = ""


@dataclass
class World:
    """What the routes act on: an admin, a user with a task, a case, a document and a product."""

    cloud: InProcessStack
    admin: Account
    user: Account
    task_id: str = ""
    document_id: str = ""
    fetch_id: str = ""
    case_id: str = ""
    product_id: str = ""

    def fresh_user(self) -> Account:
        return self.cloud.sign_up(f"u-{secrets.token_hex(4)}")

    def made(self, call: Call, key: str) -> str:
        response = send(self.cloud, call)
        assert response.status < 300, response.body
        return str(response.body[key])


def send(cloud: InProcessStack, call: Call) -> Response:
    return cloud.request(
        call.method,
        call.path,
        call.json_body,
        body=call.body,
        headers=call.headers,
        query=call.query,
        token=call.token,
    )


def _new_task(w: World) -> Call:
    w.cloud.drain()  # the user's earlier tasks end: no pending quota in the way
    return Call("POST", "/tasks", w.user.access_token, {"type": "reverse", "data": "abc"})


def _fetch_job(w: World) -> str:
    if not w.fetch_id:
        w.fetch_id = w.made(REQUESTS["POST /fetch"](w), "job_id")
    return w.fetch_id


def _signed_in(w: World) -> Account:
    """A new account, so that sign-ins cut short by throttling never lock one out."""
    return w.fresh_user()


# One request per route, built afresh for each run (some spend what they are given).
REQUESTS: dict[str, Callable[[World], Call]] = {
    "GET /admin/jobs": lambda w: Call(
        "GET", "/admin/jobs", w.admin.access_token, query="status=completed"
    ),
    "POST /admin/jobs/{job_id}/retry": lambda w: Call(
        "POST", f"/admin/jobs/{w.task_id}/retry", w.admin.access_token
    ),
    "GET /admin/lane": lambda w: Call("GET", "/admin/lane", w.admin.access_token),
    "POST /auth/login": lambda w: Call(
        "POST",
        "/auth/login",
        None,
        body=f"username={_signed_in(w).username}&password={PASSWORD}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    ),
    "POST /auth/login/json": lambda w: Call(
        "POST", "/auth/login/json", None, {"username": _signed_in(w).username, "password": PASSWORD}
    ),
    "POST /auth/logout": lambda w: Call(
        "POST", "/auth/logout", None, {"refresh_token": _signed_in(w).refresh_token}
    ),
    "GET /auth/me": lambda w: Call("GET", "/auth/me", w.user.access_token),
    "POST /auth/refresh": lambda w: Call(
        "POST", "/auth/refresh", None, {"refresh_token": _signed_in(w).refresh_token}
    ),
    "POST /auth/register": lambda w: Call(
        "POST",
        "/auth/register",
        None,
        {
            "email": f"n{secrets.token_hex(4)}@example.com",
            "username": f"n-{secrets.token_hex(4)}",
            "password": PASSWORD,
        },
    ),
    "GET /cases": lambda w: Call("GET", "/cases", w.user.access_token),
    "POST /cases": lambda w: Call("POST", "/cases", w.user.access_token, {"notes": "n"}),
    "GET /cases/{case_id}": lambda w: Call("GET", f"/cases/{w.case_id}", w.user.access_token),
    "GET /data": lambda w: Call("GET", "/data", None, query="user_id=1"),
    "GET /health": lambda w: Call("GET", "/health", None, query="deep=true"),
    "GET /jobs": lambda w: Call("GET", "/jobs", w.user.access_token),
    "POST /jobs": lambda w: Call(
        "POST", "/jobs", w.user.access_token, {"kind": "reverse", "text": "abc"}
    ),
    "POST /process": lambda w: Call(
        "POST", "/process", w.user.access_token, {"job_id": w.document_id, "document": "invoice"}
    ),
    "GET /products": lambda w: Call("GET", "/products", None, query="min_price=1"),
    "POST /products": lambda w: Call(
        "POST",
        "/products",
        w.admin.access_token,
        {"name": "n", "price": "1.50", "sku": f"S-{secrets.token_hex(4)}"},
    ),
    "GET /products/search": lambda w: Call("GET", "/products/search", None, query="q=widget"),
    "DELETE /products/{product_id}": lambda w: Call(
        "DELETE", f"/products/{w.made(REQUESTS['POST /products'](w), 'id')}", w.admin.access_token
    ),
    "GET /products/{product_id}": lambda w: Call("GET", f"/products/{w.product_id}", None),
    "PUT /products/{product_id}": lambda w: Call(
        "PUT", f"/products/{w.product_id}", w.admin.access_token, {"stock": 3}
    ),
    "GET /status/{job_id}": lambda w: Call("GET", f"/status/{w.document_id}", w.user.access_token),
    "POST /tasks": _new_task,
    "GET /tasks/{task_id}": lambda w: Call("GET", f"/tasks/{w.task_id}", w.user.access_token),
    "GET /tasks/{task_id}/result": lambda w: Call(
        "GET", f"/tasks/{w.task_id}/result", w.user.access_token
    ),
    "POST /upload": lambda w: Call(
        "POST", "/upload", w.user.access_token, {"type": "invoice", "content": {"total": "1.00"}}
    ),
    "GET /users": lambda w: Call("GET", "/users", w.admin.access_token),
    "DELETE /users/{user_id}": lambda w: Call(
        "DELETE", f"/users/{w.fresh_user().id}", w.admin.access_token
    ),
    "GET /users/{user_id}": lambda w: Call("GET", f"/users/{w.user.id}", w.user.access_token),
    "PUT /users/{user_id}": lambda w: Call(
        "PUT", f"/users/{w.fresh_user().id}", w.admin.access_token, {"is_active": True}
    ),
    "PUT /users/{user_id}/role": lambda w: Call(
        "PUT", f"/users/{w.fresh_user().id}/role", w.admin.access_token, {"role": "user"}
    ),
    # Last: the fetch job they queue stays pending (nothing drains it, nothing fetches).
    "POST /fetch": lambda w: Call("POST", "/fetch", w.user.access_token, query="mode=task"),
    "GET /fetch/status/{job_id}": lambda w: Call(
        "GET", f"/fetch/status/{_fetch_job(w)}", w.user.access_token
    ),
}


class Throttle:
    """Counts DynamoDB calls; from call number ``refuse_from`` on, refuses each as throttled."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.calls = 0
        self.refuse_from: int | None = None

    def reset(self, refuse_from: int | None) -> None:
        self.calls, self.refuse_from = 0, refuse_from

    def __call__(self, event_name: str, **_: Any) -> None:
        self.calls += 1
        if self.refuse_from is not None and self.calls > self.refuse_from:
            operation = event_name.rsplit(".", 1)[-1]
            error: Any = {
                "Error": {"Code": self.code, "Message": "Rate of requests exceeded"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
            # In-process moto answers from a before-send hook too: raising stops the call first.
            raise ClientError(error, operation)


@pytest.fixture
def world(cloud: InProcessStack, monkeypatch: pytest.MonkeyPatch) -> World:
    # Every sign-in here comes from one address: no per-address limit in the way.
    monkeypatch.setenv("ORDO_CLIENT_ATTEMPTS", "1000000")
    reset_ordo_caches()
    w = World(cloud, admin=cloud.sign_up("root", admin=True), user=cloud.sign_up("bob"))
    w.task_id = w.made(_new_task(w), "task_id")
    w.cloud.drain()
    w.document_id = w.made(REQUESTS["POST /upload"](w), "job_id")
    w.case_id = w.made(REQUESTS["POST /cases"](w), "case_id")
    w.product_id = w.made(REQUESTS["POST /products"](w), "id")
    return w


def test_every_route_of_the_template_is_called_here(cloud: InProcessStack) -> None:
    assert {f"{r.method} {r.path}" for r in cloud.routes.routes} == set(REQUESTS)


@pytest.mark.parametrize(
    ("code", "sweep"),
    [("ProvisionedThroughputExceededException", True), ("ThrottlingException", False)],
)
def test_throttling_at_any_dynamodb_call_of_any_route_is_a_503_to_retry(
    world: World, code: str, sweep: bool
) -> None:
    """``sweep``: from each call in turn; otherwise every call (the other code, same path)."""
    from ordo import aws

    throttle = Throttle(code)
    aws.dynamodb().meta.events.register_first("before-send.dynamodb", throttle)
    wrong: list[str] = []
    for route, build in REQUESTS.items():
        call = build(world)
        throttle.reset(None)
        answer = send(world.cloud, call)
        calls = throttle.calls
        if answer.status >= 500:
            wrong.append(f"{route} unthrottled: {answer.status} {answer.body}")
        for refuse_from in range(calls if sweep else min(calls, 1)):
            call = build(world)  # with the throttle off: a run may spend what it is given
            throttle.reset(refuse_from)
            answer = send(world.cloud, call)
            throttle.reset(None)
            retry_after = answer.headers.get("retry-after")
            if answer.status >= 500 and (answer.status != 503 or not retry_after):
                wrong.append(f"{route} from call {refuse_from}: {answer.status} {answer.body}")
            if refuse_from == 0 and answer.status != 503:
                wrong.append(f"{route} with every call throttled: {answer.status} {answer.body}")
    assert not wrong, "\n".join(wrong)
