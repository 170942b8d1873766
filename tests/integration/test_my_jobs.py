"""``GET /jobs`` through the real handler, on the stack made from template.yaml: each caller's
own jobs, newest first, paged by a cursor no one else can use."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from tests.harness import Account, InProcessStack

VIEW_FIELDS = {
    "job_id",
    "kind",
    "status",
    "progress",
    "result",
    "error",
    "queue_position",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
}


def submit(cloud: InProcessStack, account: Account, data: str) -> str:
    body = {"type": "reverse", "data": data}
    accepted = cloud.request("POST", "/tasks", body, token=account.access_token)
    assert accepted.status == 202, accepted.body
    return str(accepted.body["task_id"])


def listing(cloud: InProcessStack, account: Account, **params: object) -> Any:
    return cloud.request("GET", "/jobs", query=urlencode(params), token=account.access_token)


def every_id(cloud: InProcessStack, account: Account, limit: int = 2) -> list[str]:
    """All the account's jobs, page after page."""
    ids: list[str] = []
    params: dict[str, object] = {"limit": limit}
    while True:
        page = listing(cloud, account, **params)
        assert page.status == 200, page.body
        ids += [item["job_id"] for item in page.body["items"]]
        if page.body["next_cursor"] is None:
            return ids
        params["cursor"] = page.body["next_cursor"]


@pytest.fixture
def people(cloud: InProcessStack) -> tuple[Account, Account, Account]:
    return cloud.sign_in("alice"), cloud.sign_up("bob"), cloud.sign_up("root", admin=True)


def test_each_caller_sees_only_their_own_jobs_newest_first(
    cloud: InProcessStack, people: tuple[Account, Account, Account]
) -> None:
    alice, bob, admin = people
    alices = [submit(cloud, alice, f"a{n}") for n in range(3)]
    bobs = [submit(cloud, bob, f"b{n}") for n in range(2)]
    admins = [submit(cloud, admin, "root")]

    assert every_id(cloud, alice) == alices[::-1]
    assert every_id(cloud, bob) == bobs[::-1]
    assert every_id(cloud, admin) == admins  # an admin's own, not everyone's
    assert every_id(cloud, cloud.sign_up("carol")) == []


def test_a_job_shows_its_place_in_line_then_its_result(
    cloud: InProcessStack, people: tuple[Account, Account, Account]
) -> None:
    alice, bob, _ = people
    submit(cloud, bob, "ahead")
    task_id = submit(cloud, alice, "abc")

    (waiting,) = listing(cloud, alice).body["items"]
    assert set(waiting) == VIEW_FIELDS
    assert (waiting["job_id"], waiting["kind"], waiting["status"]) == (
        task_id,
        "reverse",
        "pending",
    )
    assert (waiting["queue_position"], waiting["result"], waiting["started_at"]) == (1, None, None)

    cloud.drain()
    (done,) = listing(cloud, alice).body["items"]
    assert (done["status"], done["result"], done["progress"], done["queue_position"]) == (
        "completed",
        "cba",
        100,
        None,
    )
    assert done["created_at"] <= done["started_at"] <= done["finished_at"]


def test_a_failed_document_shows_its_error(
    cloud: InProcessStack, people: tuple[Account, Account, Account]
) -> None:
    alice, _, _ = people
    uploaded = cloud.request(
        "POST",
        "/upload",
        {"type": "invoice", "content": {"amount": "abc"}},
        token=alice.access_token,
    )
    assert uploaded.status == 200, uploaded.body
    cloud.drain()
    (failed,) = listing(cloud, alice).body["items"]
    assert (failed["job_id"], failed["kind"], failed["status"]) == (
        uploaded.body["job_id"],
        "invoice",
        "failed",
    )
    assert failed["error"] == "amount must be a number, not 'abc'"
    assert failed["result"] is None


def test_another_users_cursor_is_refused(
    cloud: InProcessStack, people: tuple[Account, Account, Account]
) -> None:
    alice, bob, admin = people
    for n in range(3):
        submit(cloud, alice, f"a{n}")
    submit(cloud, bob, "b")
    cursor = listing(cloud, alice, limit=1).body["next_cursor"]
    assert cursor
    for someone_else in (bob, admin):
        refused = listing(cloud, someone_else, cursor=cursor)
        assert (refused.status, refused.body) == (422, {"detail": "cursor is not valid"})
    assert listing(cloud, alice, cursor=cursor).status == 200


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 51}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "nope"}, "cursor"),
        ({"cursor": "x" * 2049}, "cursor"),
    ],
)
def test_a_bad_limit_or_cursor_is_422_naming_it(
    cloud: InProcessStack,
    people: tuple[Account, Account, Account],
    query: dict[str, object],
    problem: str,
) -> None:
    alice, _, _ = people
    submit(cloud, alice, "abc")
    response = listing(cloud, alice, **query)
    assert response.status == 422, response.body
    assert problem in response.body["detail"]


def test_signing_in_is_required(cloud: InProcessStack) -> None:
    response = cloud.request("GET", "/jobs", token=None)
    assert (response.status, response.body) == (401, {"detail": "Not authenticated"})


def test_post_jobs_still_submits_while_get_jobs_lists(
    cloud: InProcessStack, people: tuple[Account, Account, Account]
) -> None:
    alice, _, _ = people
    accepted = cloud.request(
        "POST", "/jobs", {"kind": "swap_pairs", "text": "abcd"}, token=alice.access_token
    )
    assert accepted.status == 202, accepted.body
    (listed,) = listing(cloud, alice).body["items"]
    assert (listed["job_id"], listed["kind"]) == (accepted.body["job_id"], "swap_pairs")
