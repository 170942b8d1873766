"""Aggregation through the real handlers on moto, against a real HTTP server on loopback
(pytest-httpserver): retries, timeouts, bad answers, the lock, the cache and /data."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.harness import Account, InProcessStack, reset_ordo_caches

ROOT = Path(__file__).resolve().parents[2]
POSTS = [
    {"userId": 1 + n % 3, "id": n, "title": f"title {n}", "body": f"body {n}"} for n in range(1, 11)
]


@pytest.fixture
def source(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    monkeypatch.setenv("ORDO_FETCH_SOURCE_URL", httpserver.url_for("/posts"))
    # Generous for an answer on loopback from a busy machine (a late one is asked for again).
    monkeypatch.setenv("ORDO_FETCH_READ_TIMEOUT", "5")
    monkeypatch.setenv("ORDO_FETCH_CONNECT_TIMEOUT", "5")
    monkeypatch.setenv("ORDO_FETCH_MAX_BYTES", "4096")
    reset_ordo_caches()
    return httpserver


@pytest.fixture
def admin(cloud: InProcessStack) -> Account:
    return cloud.sign_up("root", admin=True)


def sync(cloud: InProcessStack, admin: Account) -> Any:
    return cloud.request("POST", "/fetch", query="mode=sync", token=admin.access_token)


def requests_made(server: HTTPServer) -> int:
    return len(server.log)


def test_the_schedule_fetches_and_reports_a_failed_source_without_raising(
    cloud: InProcessStack, source: HTTPServer
) -> None:
    event = json.loads((ROOT / "infra" / "events" / "fetch_schedule.json").read_text())
    source.expect_ordered_request("/posts").respond_with_json(POSTS)
    source.expect_ordered_request("/posts").respond_with_data("gone", status=404)

    done = cloud.invoke("FetchFunction", event)
    failed = cloud.invoke("FetchFunction", event)

    assert done == {"status": "ok", "fetched": 10, "created": 10, "updated": 0, "skipped": 0}
    assert failed["status"] == "failed"
    assert failed["error"] == "the source answered 404; not retried"
    data = cloud.request("GET", "/data", query="limit=100", token=None).body
    assert [post["id"] for post in data["items"]] == list(range(1, 11))  # kept as they were


def test_a_sync_fetch_stores_the_posts(
    cloud: InProcessStack, source: HTTPServer, admin: Account
) -> None:
    source.expect_request("/posts").respond_with_json(POSTS)
    response = sync(cloud, admin)
    assert response.status == 200, response.body
    assert response.body == {
        "message": "Data fetched successfully",
        "status": "ok",
        "fetched": 10,
        "created": 10,
        "updated": 0,
        "skipped": 0,
    }
    page = cloud.request("GET", "/data", query="limit=100", token=None)
    assert [item["id"] for item in page.body["items"]] == list(range(1, 11))
    assert page.body["items"][0] == {"id": 1, "user_id": 2, "title": "title 1", "body": "body 1"}


def test_the_same_data_twice_changes_nothing(
    cloud: InProcessStack, source: HTTPServer, admin: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDO_FETCH_CACHE_SECONDS", "0")
    reset_ordo_caches()
    source.expect_request("/posts").respond_with_json(POSTS)
    sync(cloud, admin)
    again = sync(cloud, admin).body
    assert (again["status"], again["created"], again["updated"]) == ("ok", 0, 0)


def test_within_the_cache_window_the_source_is_not_called(
    cloud: InProcessStack, source: HTTPServer, admin: Account
) -> None:
    source.expect_request("/posts").respond_with_json(POSTS)
    sync(cloud, admin)
    cached = sync(cloud, admin)
    assert (cached.status, cached.body["status"]) == (200, "cached")
    assert requests_made(source) == 1


def test_a_500_is_retried(cloud: InProcessStack, source: HTTPServer, admin: Account) -> None:
    source.expect_ordered_request("/posts").respond_with_data("down", status=500)
    source.expect_ordered_request("/posts").respond_with_json(POSTS)
    response = sync(cloud, admin)
    assert (response.status, response.body["created"]) == (200, 10)
    assert requests_made(source) == 2


def test_a_404_is_not_retried(cloud: InProcessStack, source: HTTPServer, admin: Account) -> None:
    source.expect_request("/posts").respond_with_data("gone", status=404)
    response = sync(cloud, admin)
    assert response.status == 502
    assert "answered 404; not retried" in response.body["detail"]
    assert requests_made(source) == 1


def test_a_source_that_times_out_every_time_fails_and_keeps_the_data(
    cloud: InProcessStack, source: HTTPServer, admin: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDO_FETCH_CACHE_SECONDS", "0")
    reset_ordo_caches()
    source.expect_ordered_request("/posts").respond_with_json(POSTS)

    def slow(_: Request) -> Response:
        time.sleep(1.0)  # past the 0.5 s read timeout
        return Response("[]", content_type="application/json")

    source.expect_request("/posts").respond_with_handler(slow)
    sync(cloud, admin)
    monkeypatch.setenv("ORDO_FETCH_READ_TIMEOUT", "0.5")
    reset_ordo_caches()
    response = sync(cloud, admin)
    assert response.status == 502
    assert "timed out" in response.body["detail"]
    assert len(cloud.request("GET", "/data", query="limit=100", token=None).body["items"]) == 10


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"posts": []}), "a JSON dict, not a list"),
        (json.dumps([{"userId": 1, "id": 1, "title": "x" * 500, "body": "y" * 4000}]), "over 4096"),
    ],
)
def test_a_bad_answer_fails_readably(
    cloud: InProcessStack, source: HTTPServer, admin: Account, body: str, problem: str
) -> None:
    source.expect_request("/posts").respond_with_data(body, content_type="application/json")
    response = sync(cloud, admin)
    assert response.status == 502
    assert problem in response.body["detail"]


def test_partially_invalid_items_are_skipped(
    cloud: InProcessStack, source: HTTPServer, admin: Account
) -> None:
    items = [*POSTS[:3], {"id": "x"}, {"userId": 1, "id": 99}, 42]
    source.expect_request("/posts").respond_with_json(items)
    body = sync(cloud, admin).body
    assert (body["fetched"], body["created"], body["skipped"]) == (6, 3, 3)


def test_a_task_fetch_runs_on_the_lane(cloud: InProcessStack, source: HTTPServer) -> None:
    source.expect_request("/posts").respond_with_json(POSTS)
    queued = cloud.request("POST", "/fetch", query="mode=task")
    assert queued.status == 202
    assert queued.body["message"] == "Fetch job queued in background"
    job_id = queued.body["job_id"]
    pending = cloud.request("GET", f"/fetch/status/{job_id}").body
    assert set(pending) == {
        "job_id",
        "status",
        "outcome",
        "created_at",
        "updated_at",
        "error",
        "fetched",
        "created",
        "updated",
        "skipped",
    }
    assert pending["status"] == "pending"
    cloud.drain()
    done = cloud.request("GET", f"/fetch/status/{job_id}").body
    assert (done["status"], done["outcome"], done["fetched"], done["created"], done["error"]) == (
        "completed",
        "ok",
        10,
        10,
        None,
    )


def test_a_failing_source_fails_the_fetch_job_readably(
    cloud: InProcessStack, source: HTTPServer
) -> None:
    source.expect_request("/posts").respond_with_data("down", status=503)
    job_id = cloud.request("POST", "/fetch", query="mode=task").body["job_id"]
    cloud.drain()
    done = cloud.request("GET", f"/fetch/status/{job_id}").body
    assert done["status"] == "failed"
    assert done["error"] == "the source failed 3 times; last: the source answered 503"
    assert cloud.dead_letters() == []


def test_a_sync_and_a_task_fetch_never_overlap(
    cloud: InProcessStack, source: HTTPServer, admin: Account
) -> None:
    entered, release = threading.Event(), threading.Event()

    def held(_: Request) -> Response:
        entered.set()
        release.wait(timeout=10)
        return Response(json.dumps(POSTS), content_type="application/json")

    source.expect_request("/posts").respond_with_handler(held)
    outcome: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: outcome.update(sync=sync(cloud, admin)))
    thread.start()
    try:
        assert entered.wait(timeout=10)  # the sync fetch holds the lock now
        job_id = cloud.request("POST", "/fetch", query="mode=task").body["job_id"]
        cloud.drain()
        task = cloud.request("GET", f"/fetch/status/{job_id}").body
        assert (task["status"], task["error"]) == (
            "failed",
            "Another fetch is in progress; try again shortly",
        )
        second = sync(cloud, admin)
        assert (second.status, second.body["status"]) == (409, "locked")
    finally:
        release.set()
        thread.join(timeout=10)
    assert outcome["sync"].body["status"] == "ok"


def test_a_stale_lock_does_not_block_fetching(
    cloud: InProcessStack, source: HTTPServer, admin: Account
) -> None:
    source.expect_request("/posts").respond_with_json(POSTS)
    cloud.dynamodb.put_item(
        TableName=cloud.stack.physical["JobsTable"]["Ref"],
        Item={
            "pk": {"S": "LOCK#fetch"},
            "sk": {"S": "LOCK"},
            "holder": {"S": "crashed"},
            "expires_at": {"N": str(int(time.time()) - 1)},
        },
    )
    assert sync(cloud, admin).body["status"] == "ok"


def test_who_may_fetch_and_read(cloud: InProcessStack, source: HTTPServer) -> None:
    source.expect_request("/posts").respond_with_json(POSTS)
    assert cloud.request("POST", "/fetch", query="mode=sync").status == 403  # alice is a user
    assert cloud.request("POST", "/fetch", query="mode=task", token=None).status == 401
    unknown = cloud.request("POST", "/fetch", query="mode=later")
    assert unknown.status == 422
    assert "mode" in unknown.body["detail"]
    assert cloud.request("GET", "/data", token=None).status == 200
    missing = cloud.request("GET", f"/fetch/status/{'0' * 32}")
    assert (missing.status, missing.body) == (404, {"detail": "Job not found"})


def test_data_pages_by_id_and_filters_by_user(
    cloud: InProcessStack, source: HTTPServer, admin: Account
) -> None:
    source.expect_request("/posts").respond_with_json(POSTS)
    sync(cloud, admin)
    ids: list[int] = []
    cursor = None
    while True:
        query = "user_id=2&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = cloud.request("GET", "/data", query=query, token=None).body
        ids += [item["id"] for item in page["items"]]
        assert all(item["user_id"] == 2 for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert ids == [1, 4, 7, 10]
    for query in ("limit=101", "limit=0", "user_id=0", "cursor=junk"):
        assert cloud.request("GET", "/data", query=query, token=None).status == 422, query
    other_users_cursor = cloud.request("GET", "/data", query="limit=1", token=None).body[
        "next_cursor"
    ]
    bad = cloud.request("GET", "/data", query=f"user_id=2&cursor={other_users_cursor}", token=None)
    assert bad.status == 422


# --- an untrusted source meets its limits: a total deadline, an item cap, bounded nesting --------


def test_a_source_that_trickles_fails_at_the_total_deadline_not_per_read(
    cloud: InProcessStack, source: HTTPServer, admin: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a source that sends a byte every 0.2 s: each read is well inside its read timeout
    monkeypatch.setenv("ORDO_FETCH_DEADLINE_SECONDS", "1")
    reset_ordo_caches()
    stop = threading.Event()

    def trickle(_: Request) -> Response:
        def body() -> Any:
            yield b"["
            while not stop.wait(0.2):
                yield b" "

        return Response(body(), content_type="application/json")

    source.expect_request("/posts").respond_with_handler(trickle)
    started = time.monotonic()
    try:
        response = sync(cloud, admin)
    finally:
        stop.set()
    # Then the fetch gives up at its deadline, and the stored data is untouched
    assert response.status == 502
    assert response.body["detail"].startswith("the source did not answer within 1 s")
    assert time.monotonic() - started < 5
    assert cloud.request("GET", "/data", token=None).body["items"] == []


def test_a_source_with_too_many_items_fails_the_fetch(
    cloud: InProcessStack, source: HTTPServer, admin: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDO_FETCH_MAX_ITEMS", "5")
    reset_ordo_caches()
    source.expect_request("/posts").respond_with_json(POSTS)  # 10 items
    response = sync(cloud, admin)
    assert (response.status, response.body["detail"]) == (
        502,
        "the source sent 10 items; at most 5",
    )


def test_a_deeply_nested_answer_fails_the_fetch_job_readably(
    cloud: InProcessStack, source: HTTPServer
) -> None:
    source.expect_request("/posts").respond_with_data(
        "[" * 2000 + "]" * 2000, content_type="application/json"
    )
    after = cloud.request("POST", "/tasks", {"type": "reverse", "data": "abc"})
    job_id = cloud.request("POST", "/fetch", query="mode=task").body["job_id"]
    cloud.drain()
    done = cloud.request("GET", f"/fetch/status/{job_id}").body
    assert (done["status"], done["error"]) == (
        "failed",
        "the source's answer is nested too deeply to read",
    )
    task = cloud.request("GET", f"/tasks/{after.body['task_id']}").body
    assert task["status"] == "completed"


# --- mode=task: one active fetch job for everyone, and the cache window -----------------------


def task_fetch(cloud: InProcessStack, account: Account | None = None) -> Any:
    token = account.access_token if account else cloud.token
    return cloud.request("POST", "/fetch", query="mode=task", token=token)


def test_parallel_task_fetches_queue_one_job_and_all_answer_with_it(
    cloud: InProcessStack, source: HTTPServer
) -> None:
    # Given six users, each about to ask for a fetch twice at the same moment
    source.expect_request("/posts").respond_with_json(POSTS)
    users = [cloud.sign_up(f"user{n}") for n in range(6)]
    assert cloud.request("GET", f"/fetch/status/{'0' * 32}").status == 404  # warm: one import
    start = threading.Barrier(12)

    def ask(account: Account) -> Any:
        start.wait(timeout=10)
        return task_fetch(cloud, account)

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(ask, users * 2))
    # Then one job was queued (202), and every other request answered with its id (200)
    assert sorted(answer.status for answer in answers) == [200] * 11 + [202]
    job_ids = {answer.body["job_id"] for answer in answers}
    assert len(job_ids) == 1, job_ids
    assert cloud.queue_depth() == 1
    (job_id,) = job_ids
    # And every one of them may follow it, though only its owner sees it among their jobs
    for account in users:
        view = cloud.request("GET", f"/fetch/status/{job_id}", token=account.access_token)
        assert (view.status, view.body["status"]) == (200, "pending")
    cloud.drain()
    assert requests_made(source) == 1
    owners = [
        account
        for account in users
        if cloud.request("GET", f"/status/{job_id}", token=account.access_token).status == 200
    ]
    assert len(owners) == 1


def test_a_second_task_fetch_answers_with_the_pending_job_then_cached(
    cloud: InProcessStack, source: HTTPServer
) -> None:
    source.expect_request("/posts").respond_with_json(POSTS)
    bob = cloud.sign_up("bob")
    queued = task_fetch(cloud)
    assert (queued.status, queued.body["status"]) == (202, "pending")
    same = task_fetch(cloud, bob)
    assert (same.status, same.body["job_id"], same.body["status"]) == (
        200,
        queued.body["job_id"],
        "pending",
    )
    assert same.body["message"] == "A fetch job is already pending; follow that one"
    cloud.drain()
    # Within the cache window: a job that ended cached at once, without the lane or the source
    cached = task_fetch(cloud, bob)
    assert (cached.status, cached.body["status"], cached.body["message"]) == (
        200,
        "completed",
        "Data fetched recently; using the stored data",
    )
    assert cached.body["job_id"] != queued.body["job_id"]
    assert cloud.queue_depth() == 0
    view = cloud.request("GET", f"/fetch/status/{cached.body['job_id']}", token=bob.access_token)
    assert (view.body["status"], view.body["outcome"], view.body["fetched"]) == (
        "completed",
        "cached",
        0,
    )
    mine = cloud.request("GET", f"/status/{cached.body['job_id']}", token=bob.access_token)
    assert mine.body["result"]["status"] == "cached"
    assert requests_made(source) == 1


def test_a_failed_fetch_job_does_not_block_the_next(
    cloud: InProcessStack, source: HTTPServer
) -> None:
    source.expect_request("/posts").respond_with_data("down", status=503)
    first = task_fetch(cloud).body["job_id"]
    cloud.drain()
    assert cloud.request("GET", f"/fetch/status/{first}").body["status"] == "failed"
    second = task_fetch(cloud)
    assert second.status == 202
    assert second.body["job_id"] != first


def test_a_marker_naming_a_job_that_is_gone_does_not_block_fetching(
    cloud: InProcessStack, source: HTTPServer
) -> None:
    # Given the marker names a job that expired (TTL) or whose write never happened
    source.expect_request("/posts").respond_with_json(POSTS)
    cloud.dynamodb.put_item(
        TableName=cloud.stack.physical["JobsTable"]["Ref"],
        Item={"pk": {"S": "ACTIVE#fetch"}, "sk": {"S": "JOB"}, "job_id": {"S": "e" * 32}},
    )
    queued = task_fetch(cloud)
    assert queued.status == 202
    assert queued.body["job_id"] != "e" * 32


def test_a_fetch_job_that_runs_just_after_a_sync_fetch_ends_cached(
    cloud: InProcessStack, source: HTTPServer, admin: Account
) -> None:
    source.expect_request("/posts").respond_with_json(POSTS)
    job_id = task_fetch(cloud).body["job_id"]
    assert sync(cloud, admin).body["status"] == "ok"
    cloud.drain()
    view = cloud.request("GET", f"/fetch/status/{job_id}").body
    assert (view["status"], view["outcome"], view["fetched"]) == ("completed", "cached", 0)
    assert requests_made(source) == 1


def _recurse() -> object:
    return _recurse()


# Failures nobody listed, raised by the line a fetch job runs first (its cache check).
def _missing_key() -> object:
    fields: dict[str, object] = {}
    return fields["a field a new kind forgot"]


UNLISTED: dict[str, Callable[[], object]] = {
    "ArithmeticError": lambda: 1 // 0,
    "RecursionError": _recurse,
    "KeyError": _missing_key,
}


@pytest.mark.parametrize("failure", list(UNLISTED))
def test_a_fetch_job_that_raises_anything_fails_alone_and_the_next_job_runs(
    cloud: InProcessStack, source: HTTPServer, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    from ordo.jobs import JobStatus
    from ordo.storage.aggregation import DynamoFetchLog

    fetch_id = cloud.request("POST", "/fetch", query="mode=task").body["job_id"]
    after = cloud.request("POST", "/tasks", {"type": "reverse", "data": "after"}).body["task_id"]
    monkeypatch.setattr(DynamoFetchLog, "last_success", lambda _self: UNLISTED[failure]())
    cloud.drain()

    fetched = cloud.request("GET", f"/fetch/status/{fetch_id}").body
    assert fetched["status"] == "failed"
    assert fetched["error"].startswith("the fetch runner failed (")
    assert cloud.request("GET", f"/tasks/{after}/result").body["result"] == "retfa"
    table = cloud.module("WorkerFunction").worker.table
    for status in (JobStatus.PENDING, JobStatus.PROCESSING):
        assert table.count_by_status(status) == 0
    assert cloud.dead_letters() == []
    assert requests_made(source) == 0
