"""Aggregation over HTTP: on demand, as a job, and on the schedule the local cloud fires."""

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.conftest import SOURCE_HITS, SOURCE_POSTS, Api


def wait_for_data(client: httpx.Client, count: int, timeout: float = 30) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items: list[dict[str, object]] = client.get("/data", params={"limit": 100}).json()["items"]
        if len(items) >= count:
            return items
        time.sleep(0.1)
    raise AssertionError(f"/data did not reach {count} items")


@pytest.mark.usefixtures("local_only")
def test_the_schedule_fires_when_the_local_clock_is_advanced(
    api: Api, anonymous: httpx.Client
) -> None:
    """Advance the clock past the next fire time: the scheduled fetch asks the source and
    stores what it answers."""
    asked = len(SOURCE_HITS)
    anonymous.post("/_local/clock/advance", params={"seconds": 15 * 60})
    deadline = time.monotonic() + 30
    while len(SOURCE_HITS) == asked:
        assert time.monotonic() < deadline, "the schedule did not fire"
        time.sleep(0.05)
    items = wait_for_data(anonymous, len(SOURCE_POSTS))
    assert [item["id"] for item in items] == [post["id"] for post in SOURCE_POSTS]


def test_a_fetch_job_and_a_sync_fetch(api: Api, client: httpx.Client, admin: httpx.Client) -> None:
    queued = client.post("/fetch", params={"mode": "task"})
    # 202: queued now; 200: another fetch job was active, or a fetch just succeeded (cached)
    assert queued.status_code in (200, 202), queued.text
    assert (queued.status_code == 202) == (
        queued.json()["message"] == "Fetch job queued in background"
    )
    job_id = queued.json()["job_id"]
    deadline = time.monotonic() + 30
    while (view := client.get(f"/fetch/status/{job_id}").json())["status"] in (
        "pending",
        "processing",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert view["status"] == "completed", view
    if view["outcome"] == "ok":
        assert view["fetched"] == len(SOURCE_POSTS) if api.local else view["fetched"] >= 0
    else:
        assert (view["outcome"], view["fetched"]) == ("cached", 0)
    answer = admin.post("/fetch", params={"mode": "sync"})
    assert answer.status_code in (200, 409)
    assert answer.json()["status"] in ("ok", "cached", "locked")
    by_user = client.get("/data", params={"user_id": 2}).json()["items"]
    assert by_user
    assert all(item["user_id"] == 2 for item in by_user)


def test_every_user_follows_the_one_active_fetch_job(
    api: Api, client: httpx.Client, anonymous: httpx.Client
) -> None:
    """Two users ask at the same moment: at most one job goes on the lane, and each may follow
    the job the other was handed."""
    _, token = api.sign_up()
    with api.client(token) as other, ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(lambda c: c.post("/fetch", params={"mode": "task"}), (client, other))
        )
        assert sorted(a.status_code for a in answers) in ([200, 200], [200, 202]), answers
        ids = {a.json()["job_id"] for a in answers}
        cached = all(a.json()["status"] == "completed" for a in answers)
        assert cached or len(ids) == 1, [a.json() for a in answers]
        for job_id in ids:
            for reader in (client, other):
                assert reader.get(f"/fetch/status/{job_id}").status_code == 200
            assert anonymous.get(f"/fetch/status/{job_id}").status_code == 401
