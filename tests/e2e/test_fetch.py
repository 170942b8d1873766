"""Aggregation over HTTP: on demand, as a job, and on the schedule the local cloud fires.

Locally each test arranges the state it asserts: a cloud of this module's own fetches a source
that holds every request until the test releases it, so the lock, the shared job and the cache
window are each met on purpose. Against a running stack the source is real: a test that needs it
skips, naming it, when the stack cannot reach it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import (
    SOURCE_HITS,
    SOURCE_POSTS,
    Api,
    fetch_source_url,
    json_server,
    local_cloud,
)
from tests.waiting import eventually

QUEUED = "Fetch job queued in background"
FETCHED = "Data fetched successfully"
CACHED = "Data fetched recently; using the stored data"
LOCKED = {"detail": "Another fetch is in progress; try again shortly", "status": "locked"}
CACHE_SECONDS = 10  # the held cloud's cache window: long enough to assert in, short to outlast
HELD = "points a local cloud of its own at a source the test holds and releases"


class HeldSource:
    """The posts, answered only once the test releases the source; counts every request."""

    def __init__(self) -> None:
        self.asked = 0
        self.released = threading.Event()

    def answer(self) -> list[dict[str, Any]]:
        self.asked += 1
        self.released.wait(timeout=60)
        return SOURCE_POSTS


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, HeldSource]]:
    """A fresh local cloud (no fetch yet) and the source it fetches, held until released."""
    source = HeldSource()
    with json_server(source.answer) as url:
        env = {
            "ORDO_FETCH_SOURCE_URL": f"{url}/posts",
            "ORDO_FETCH_CACHE_SECONDS": str(CACHE_SECONDS),
            # One attempt that waits for the release (at most the deadline's ceiling, 15 s).
            "ORDO_FETCH_ATTEMPTS": "1",
            "ORDO_FETCH_READ_TIMEOUT": "15",
            "ORDO_FETCH_DEADLINE_SECONDS": "15",
        }
        try:
            with local_cloud(tmp_path_factory.mktemp("held-source-cloud"), env) as api:
                yield api, source
        finally:
            source.released.set()


def signed_in(api: Api) -> httpx.Client:
    return api.client(api.sign_up()[1])


@pytest.mark.local_only(reason=HELD)
def test_one_fetch_at_a_time_then_cached_until_the_window_ends(
    held: tuple[Api, HeldSource],
) -> None:
    api, source = held
    assert api.admin is not None
    admin_token = api.sign_in(*api.admin)
    with (
        signed_in(api) as user,
        signed_in(api) as other,
        api.client() as anonymous,
        api.client(admin_token) as admin,
    ):
        # Given a stack that has never fetched, whose source holds the first request
        # When a user queues a fetch job, and it reaches the source
        queued = user.post("/fetch", params={"mode": "task"})
        assert queued.status_code == 202, queued.text
        job_id = queued.json()["job_id"]
        assert queued.json() == {"message": QUEUED, "job_id": job_id, "status": "pending"}
        assert eventually(lambda: source.asked == 1), "the fetch job never asked the source"

        # Then while it holds the lock, a sync fetch is refused and every user follows that job
        assert user.get(f"/fetch/status/{job_id}").json()["status"] == "processing"
        refused = admin.post("/fetch", params={"mode": "sync"})
        assert (refused.status_code, refused.json()) == (409, LOCKED)
        followed = other.post("/fetch", params={"mode": "task"})
        assert (followed.status_code, followed.json()) == (
            200,
            {
                "message": "A fetch job is already processing; follow that one",
                "job_id": job_id,
                "status": "processing",
            },
        )
        assert other.get(f"/fetch/status/{job_id}").status_code == 200
        assert anonymous.get(f"/fetch/status/{job_id}").status_code == 401

        # When the source answers, the first fetch is ok with every post
        source.released.set()
        done = api.finished(user, f"/fetch/status/{job_id}")
        assert (done["status"], done["outcome"]) == ("completed", "ok"), done
        posts = len(SOURCE_POSTS)
        assert (done["fetched"], done["created"], done["updated"]) == (posts, posts, 0), done

        # Then within the window every mode answers cached, and the source is not asked again
        cached = admin.post("/fetch", params={"mode": "sync"})
        assert (cached.status_code, cached.json()["status"]) == (200, "cached"), cached.text
        assert cached.json()["message"] == CACHED
        again = other.post("/fetch", params={"mode": "task"})
        assert again.status_code == 200, again.text
        assert (again.json()["message"], again.json()["status"]) == (CACHED, "completed")
        view = other.get(f"/fetch/status/{again.json()['job_id']}").json()
        assert (view["outcome"], view["fetched"]) == ("cached", 0), view
        assert source.asked == 1

        # And once the window has passed, a sync fetch asks the source again
        def fetched_again() -> dict[str, Any] | None:
            answer = admin.post("/fetch", params={"mode": "sync"})
            assert answer.status_code == 200, answer.text
            return answer.json() if answer.json()["status"] == "ok" else None

        fresh = eventually(fetched_again, timeout=CACHE_SECONDS + 20, interval=0.5)
        assert fresh is not None, "still cached after the window"
        assert (fresh["message"], fresh["fetched"], fresh["created"], fresh["updated"]) == (
            FETCHED,
            posts,
            0,
            0,
        )
        assert source.asked == 2
        by_user = user.get("/data", params={"user_id": 2}).json()["items"]
        expected = [post["id"] for post in SOURCE_POSTS if post["userId"] == 2]
        assert [item["id"] for item in by_user] == expected


@pytest.mark.local_only(reason="advances the local cloud's clock and counts its source's requests")
def test_the_schedule_fires_when_the_local_clock_is_advanced(
    api: Api, anonymous: httpx.Client
) -> None:
    """Advance the clock past the next fire time: the scheduled fetch asks the source and
    stores what it answers."""
    asked = len(SOURCE_HITS)
    anonymous.post("/_local/clock/advance", params={"seconds": 15 * 60})
    assert eventually(lambda: len(SOURCE_HITS) > asked, timeout=30), "the schedule did not fire"

    def stored() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = anonymous.get("/data", params={"limit": 100}).json()["items"]
        return items if len(items) >= len(SOURCE_POSTS) else []

    items = eventually(stored, timeout=30, interval=0.1)
    assert [item["id"] for item in items] == [post["id"] for post in SOURCE_POSTS]


def test_a_fetch_job_of_the_stacks_source(
    api: Api, client: httpx.Client, anonymous: httpx.Client
) -> None:
    """A fetch job, whatever state the stack's fetching is in: each answer matches its state.
    Against a running stack the source is real, and an unreachable one skips the test."""
    queued = client.post("/fetch", params={"mode": "task"})
    body = queued.json()
    job_id = body["job_id"]
    if queued.status_code == 202:  # queued now
        assert body == {"message": QUEUED, "job_id": job_id, "status": "pending"}
    else:  # another fetch job is active, or one just succeeded (cached)
        assert queued.status_code == 200, queued.text
        assert (body["message"], body["status"]) in [
            ("A fetch job is already pending; follow that one", "pending"),
            ("A fetch job is already processing; follow that one", "processing"),
            (CACHED, "completed"),
        ], body
    view = api.finished(client, f"/fetch/status/{job_id}")
    if view["status"] == "failed" and not api.local:
        pytest.skip(f"the stack cannot fetch its source {fetch_source_url()}: {view['error']}")
    assert view["status"] == "completed", view
    if view["outcome"] == "ok":
        assert view["fetched"] == len(SOURCE_POSTS) if api.local else view["fetched"] >= 1
        if api.admin is not None:  # it succeeded just now: a sync fetch is inside the window
            with api.client(api.sign_in(*api.admin)) as admin:
                answer = admin.post("/fetch", params={"mode": "sync"})
            assert (answer.status_code, answer.json()["status"]) == (200, "cached"), answer.text
    else:
        assert (view["outcome"], view["fetched"]) == ("cached", 0), view
    assert anonymous.get(f"/fetch/status/{job_id}").status_code == 401
    by_user = client.get("/data", params={"user_id": 2}).json()["items"]
    assert by_user
    assert all(item["user_id"] == 2 for item in by_user)


def test_two_users_asking_at_once_follow_one_fetch_job(
    api: Api, client: httpx.Client, anonymous: httpx.Client
) -> None:
    """Two users ask at the same moment: at most one job goes on the lane, and each may follow
    the job the other was handed."""
    _, token = api.sign_up()
    with api.client(token) as other, ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(lambda c: c.post("/fetch", params={"mode": "task"}), (client, other))
        )
    bodies = [answer.json() for answer in answers]
    ids = {body["job_id"] for body in bodies}
    codes = sorted(answer.status_code for answer in answers)
    if all(body["message"] == CACHED for body in bodies):  # a fetch had just succeeded
        assert (codes, len(ids)) == ([200, 200], 2), bodies
        assert {body["status"] for body in bodies} == {"completed"}
    else:  # one job: queued by one of them now, or already active
        assert codes in ([200, 200], [200, 202]), bodies
        assert len(ids) == 1, bodies
        assert {body["status"] for body in bodies} <= {"pending", "processing"}, bodies
    with api.client(token) as other:
        for job_id in ids:
            for reader in (client, other):
                assert reader.get(f"/fetch/status/{job_id}").status_code == 200
            assert anonymous.get(f"/fetch/status/{job_id}").status_code == 401
