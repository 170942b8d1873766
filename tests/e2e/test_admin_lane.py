"""Lane operations for admins over HTTP: the lane view, every user's jobs, and a retry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from tests.e2e.conftest import Api

BAD_INVOICE = {"type": "invoice", "content": {"amount": "abc"}}
BAD_AMOUNT = "amount must be a number, not 'abc'"


def failed_job(api: Api, client: httpx.Client) -> str:
    uploaded = client.post("/upload", json=BAD_INVOICE)
    assert uploaded.status_code == 200, uploaded.text
    job_id = str(uploaded.json()["job_id"])
    ended = api.finished(client, f"/status/{job_id}")
    assert (ended["status"], ended["error"]) == ("failed", BAD_AMOUNT)
    return job_id


def find_failed(admin: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job in the failed list, paging newest first; other tests fail jobs too."""
    cursor = None
    previous: datetime | None = None
    for _ in range(50):
        params: dict[str, Any] = {"status": "failed", "limit": 20}
        if cursor:
            params["cursor"] = cursor
        page = admin.get("/admin/jobs", params=params)
        assert page.status_code == 200, page.text
        for item in page.json()["items"]:
            finished = datetime.fromisoformat(item["finished_at"])
            assert previous is None or finished <= previous  # newest first
            previous = finished
            if item["job_id"] == job_id:
                return dict(item)
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    raise AssertionError(f"job {job_id} is not among the failed jobs")


def test_only_admins_see_the_lane(
    anonymous: httpx.Client, client: httpx.Client, admin: httpx.Client
) -> None:
    assert anonymous.get("/admin/lane").status_code == 401
    assert client.get("/admin/lane").status_code == 403
    assert client.get("/admin/jobs", params={"status": "failed"}).status_code == 403
    assert client.post(f"/admin/jobs/{'0' * 32}/retry").json() == {"detail": "Admin role required"}
    lane = admin.get("/admin/lane")
    assert lane.status_code == 200
    body = lane.json()
    assert set(body) == {
        "pending",
        "processing",
        "oldest_pending_age_seconds",
        "running",
        "dead_letters",
        "failed_last_hour",
    }
    assert all(isinstance(body[name], int) for name in ("pending", "processing", "dead_letters"))


def test_a_failed_job_is_listed_and_retried_once_at_the_end_of_the_lane(
    api: Api, client: httpx.Client, admin: httpx.Client
) -> None:
    # Given a job that failed for real, listed for the admin with its owner and error
    failed = failed_job(api, client)
    listed = find_failed(admin, failed)
    assert (listed["kind"], listed["error"], listed["attempts"]) == ("invoice", BAD_AMOUNT, 1)
    assert admin.get("/admin/lane").json()["failed_last_hour"] >= 1

    # and tasks submitted before the retry
    ahead = [
        client.post("/tasks", json={"type": "repeat_by_position", "data": "abc"}).json()["task_id"]
        for _ in range(3)
    ]

    # When the admin retries it
    retried = admin.post(f"/admin/jobs/{failed}/retry")

    # Then a new job of the same owner is queued, and runs after the tasks ahead of it
    assert retried.status_code == 202, retried.text
    new = retried.json()["job_id"]
    assert (retried.json()["retry_of"], retried.json()["status"]) == (failed, "pending")
    assert retried.headers["location"] == f"/status/{new}"
    ended = api.finished(client, f"/status/{new}")  # its owner sees it
    assert (ended["status"], ended["error"]) == ("failed", BAD_AMOUNT)
    tasks_finished = [
        datetime.fromisoformat(client.get(f"/tasks/{task_id}").json()["finished_at"])
        for task_id in ahead
    ]
    again = find_failed(admin, new)
    assert all(moment < datetime.fromisoformat(again["finished_at"]) for moment in tasks_finished)
    assert again["retry_of"] == failed
    assert find_failed(admin, failed)["retried_as"] == new

    # and a second retry of the same job is refused
    second = admin.post(f"/admin/jobs/{failed}/retry")
    assert (second.status_code, second.json()) == (
        409,
        {"detail": f"Job {failed} was already retried as {new}"},
    )


def test_bad_requests(admin: httpx.Client) -> None:
    missing = admin.get("/admin/jobs")
    assert missing.status_code == 422
    assert "pending, processing, completed, failed" in missing.json()["detail"]
    assert admin.get("/admin/jobs", params={"status": "failed", "limit": 101}).status_code == 422
    bad_cursor = admin.get("/admin/jobs", params={"status": "failed", "cursor": "nope"})
    assert (bad_cursor.status_code, bad_cursor.json()["detail"]) == (422, "cursor is not valid")
    unknown = admin.post(f"/admin/jobs/{'0' * 32}/retry")
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "Job not found"})
