"""Lane operations for admins through the real handler, on the stack made from template.yaml:
the lane view, every user's jobs by status, and the retry of a failed job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pytest

from ordo.clock import utcnow
from ordo.jobs import JobStatus
from ordo.wiring import job_table
from tests.harness import Account, InProcessStack

BAD_INVOICE = {"type": "invoice", "content": {"amount": "abc"}}
BAD_AMOUNT = "amount must be a number, not 'abc'"
LANE_FIELDS = {
    "pending",
    "processing",
    "oldest_pending_age_seconds",
    "running",
    "dead_letters",
    "failed_last_hour",
}
JOB_FIELDS = {
    "job_id",
    "owner",
    "kind",
    "status",
    "error",
    "attempts",
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
    "retry_of",
    "retried_as",
}


@dataclass
class Admins:
    cloud: InProcessStack
    alice: Account
    root: Account

    def as_admin(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.cloud.request(method, path, token=self.root.access_token, **kwargs)

    def fail_a_job(self) -> str:
        """An invoice job of alice's that fails for real in the worker."""
        uploaded = self.cloud.request("POST", "/upload", BAD_INVOICE)
        assert uploaded.status == 200, uploaded.body
        self.cloud.drain()
        job_id = str(uploaded.body["job_id"])
        assert self.status(job_id)["status"] == "failed"
        return job_id

    def submit_task(self, text: str = "abc") -> str:
        accepted = self.cloud.request("POST", "/tasks", {"type": "reverse", "data": text})
        assert accepted.status == 202, accepted.body
        return str(accepted.body["task_id"])

    def status(self, job_id: str, token: str | None = None) -> dict[str, Any]:
        view = self.cloud.request(
            "GET", f"/status/{job_id}", token=token or self.alice.access_token
        )
        assert view.status == 200, view.body
        return dict(view.body)

    def jobs(self, **params: object) -> Any:
        return self.as_admin("GET", "/admin/jobs", query=urlencode(params))


@pytest.fixture
def admins(cloud: InProcessStack) -> Admins:
    """``cloud`` sends as alice; ``root`` is an admin."""
    alice = cloud.sign_in("alice")
    return Admins(cloud, alice, cloud.sign_up("root", admin=True))


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "admin_gets"),
    [
        ("GET", "/admin/lane", 200),
        ("GET", "/admin/jobs?status=failed", 200),
        ("POST", "/admin/jobs/{failed}/retry", 202),
    ],
)
def test_admins_only(admins: Admins, method: str, path: str, admin_gets: int) -> None:
    failed = admins.fail_a_job()
    route, _, query = path.format(failed=failed).partition("?")
    tokens = {
        "anonymous": None,
        "user": admins.alice.access_token,
        "admin": admins.root.access_token,
    }
    got = {
        role: admins.cloud.request(method, route, query=query, token=token)
        for role, token in tokens.items()
    }
    assert {role: response.status for role, response in got.items()} == {
        "anonymous": 401,
        "user": 403,
        "admin": admin_gets,
    }
    assert got["anonymous"].body == {"detail": "Not authenticated"}
    assert got["user"].body == {"detail": "Admin role required"}
    # a user's refused retry changed nothing
    assert job_table().count_by_status(JobStatus.PENDING) == (1 if admin_gets == 202 else 0)


# --- the lane view ---------------------------------------------------------------------------


def test_the_lane_view_of_an_idle_lane(admins: Admins) -> None:
    lane = admins.as_admin("GET", "/admin/lane")
    assert lane.status == 200
    assert lane.body == {
        "pending": 0,
        "processing": 0,
        "oldest_pending_age_seconds": None,
        "running": None,
        "dead_letters": 0,
        "failed_last_hour": 0,
    }


def test_the_lane_view_of_a_busy_lane(admins: Admins) -> None:
    # Given a failed job, a job the worker is running, two waiting, and a dead letter
    admins.fail_a_job()
    first, *_ = [admins.submit_task() for _ in range(3)]
    table = job_table()
    claimed = table.get(first)
    assert claimed
    running = table.claim(claimed, utcnow())  # as the worker does, while it runs the job
    dlq = admins.cloud.stack.queue_url("JobsDeadLetterQueue")
    admins.cloud.sqs.send_message(
        QueueUrl=dlq,
        MessageBody='{"job_id": "x"}',
        MessageGroupId="lane",
        MessageDeduplicationId="1",
    )

    lane = admins.as_admin("GET", "/admin/lane").body

    assert set(lane) == LANE_FIELDS
    assert (lane["pending"], lane["processing"]) == (2, 1)
    assert 0 <= lane["oldest_pending_age_seconds"] < 60
    assert lane["running"]["job_id"] == first
    assert lane["running"]["kind"] == "reverse"
    assert moment(lane["running"]["started_at"]) == running.started_at
    assert (lane["dead_letters"], lane["failed_last_hour"]) == (1, 1)


# --- every user's jobs -----------------------------------------------------------------------


def test_failed_jobs_of_every_user_newest_first_with_paging(admins: Admins) -> None:
    bob = admins.cloud.sign_up("bob")
    failed = [admins.fail_a_job() for _ in range(2)]
    uploaded = admins.cloud.request("POST", "/upload", BAD_INVOICE, token=bob.access_token)
    admins.cloud.drain()
    failed.append(uploaded.body["job_id"])
    admins.submit_task()
    admins.cloud.drain()  # a completed job, not listed

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = admins.jobs(status="failed", limit=2, **({"cursor": cursor} if cursor else {}))
        assert page.status == 200, page.body
        assert len(page.body["items"]) <= 2
        seen += page.body["items"]
        cursor = page.body["next_cursor"]
        if cursor is None:
            break

    assert [item["job_id"] for item in seen] == failed[::-1]
    finished = [moment(item["finished_at"]) for item in seen]
    assert finished == sorted(finished, reverse=True)
    newest = seen[0]
    assert set(newest) == JOB_FIELDS
    assert (newest["owner"], newest["kind"], newest["status"]) == (bob.id, "invoice", "failed")
    assert (newest["error"], newest["attempts"]) == (BAD_AMOUNT, 1)
    assert (newest["retry_of"], newest["retried_as"]) == (None, None)
    assert {item["owner"] for item in seen} == {admins.alice.id, bob.id}


def test_the_default_page_and_other_statuses(admins: Admins) -> None:
    tasks = [admins.submit_task() for _ in range(3)]
    pending = admins.jobs(status="pending").body
    assert [item["job_id"] for item in pending["items"]] == tasks[::-1]
    assert pending["next_cursor"] is None
    admins.cloud.drain()
    completed = admins.jobs(status="completed").body["items"]
    assert [item["job_id"] for item in completed] == tasks[::-1]
    assert admins.jobs(status="processing").body == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({}, "status is required: one of pending, processing, completed, failed"),
        ({"status": "stuck"}, "'pending', 'processing', 'completed' or 'failed'"),
        ({"status": "failed", "limit": 0}, "greater than or equal to 1"),
        ({"status": "failed", "limit": 101}, "less than or equal to 100"),
        ({"status": "failed", "cursor": "nope"}, "cursor is not valid"),
        ({"status": "failed", "cursor": "x" * 2049}, "at most 2048 characters"),
    ],
    ids=["no status", "unknown status", "limit 0", "limit 101", "bad cursor", "long cursor"],
)
def test_bad_queries_are_422_saying_why(
    admins: Admins, params: dict[str, object], problem: str
) -> None:
    response = admins.jobs(**params)
    assert response.status == 422
    assert problem in response.body["detail"]


def test_a_cursor_of_one_status_is_refused_for_another(admins: Admins) -> None:
    for _ in range(2):
        admins.fail_a_job()
    cursor = admins.jobs(status="failed", limit=1).body["next_cursor"]
    assert cursor
    response = admins.jobs(status="pending", cursor=cursor)
    assert (response.status, response.body["detail"]) == (422, "cursor is not valid")


# --- retry -----------------------------------------------------------------------------------


def test_a_retry_runs_at_the_end_of_the_lane_linked_both_ways(admins: Admins) -> None:
    # Given a failed job, and tasks submitted before the retry
    failed = admins.fail_a_job()
    ahead = [admins.submit_task(text) for text in ("one", "two", "three")]

    # When an admin retries it
    retried = admins.as_admin("POST", f"/admin/jobs/{failed}/retry")

    # Then a new pending job of alice's is accepted, with its place to follow
    assert retried.status == 202, retried.body
    new = retried.body["job_id"]
    assert new != failed
    assert (retried.body["retry_of"], retried.body["status"]) == (failed, "pending")
    assert (retried.body["kind"], retried.body["owner"]) == ("invoice", admins.alice.id)
    assert retried.headers["location"] == f"/status/{new}"
    assert job_table().pending_count(admins.alice.id) == 4  # in its owner's quota

    # and it runs after every job that was waiting before it
    admins.cloud.drain()
    table = job_table()
    stored_new, stored_old = table.get(new), table.get(failed)
    assert stored_new
    assert stored_old
    finished_ahead = [job.finished_at for job_id in ahead if (job := table.get(job_id))]
    assert len(finished_ahead) == len(ahead)
    assert stored_new.finished_at
    assert all(at and at < stored_new.finished_at for at in finished_ahead)

    # with the same payload (so it fails the same way), linked both ways
    assert (stored_new.kind, stored_new.data, stored_new.owner) == (
        stored_old.kind,
        stored_old.data,
        stored_old.owner,
    )
    assert (stored_new.retry_of, stored_old.retried_as) == (failed, new)
    view = admins.status(new)
    assert (view["status"], view["error"]) == ("failed", BAD_AMOUNT)
    assert admins.status(new, token=admins.root.access_token)["status"] == "failed"
    listed = admins.jobs(status="failed").body["items"]
    assert (listed[0]["job_id"], listed[0]["retry_of"]) == (new, failed)
    assert (listed[1]["job_id"], listed[1]["retried_as"]) == (failed, new)

    # and a failed job is retried only once
    again = admins.as_admin("POST", f"/admin/jobs/{failed}/retry")
    assert again.status == 409
    assert again.body == {"detail": f"Job {failed} was already retried as {new}"}


def test_only_a_failed_job_can_be_retried(admins: Admins) -> None:
    pending = admins.submit_task()
    response = admins.as_admin("POST", f"/admin/jobs/{pending}/retry")
    assert response.status == 409
    assert response.body == {
        "detail": f"Job {pending} is pending; only a failed job can be retried"
    }
    admins.cloud.drain()
    response = admins.as_admin("POST", f"/admin/jobs/{pending}/retry")
    assert response.status == 409
    assert "is completed" in response.body["detail"]
    assert job_table().count_by_status(JobStatus.PENDING) == 0


@pytest.mark.parametrize("job_id", ["0" * 32, "nope", "x" * 300, "0" * 31 + "g"])
def test_an_unknown_or_malformed_job_is_404(admins: Admins, job_id: str) -> None:
    response = admins.as_admin("POST", f"/admin/jobs/{job_id}/retry")
    assert (response.status, response.body) == (404, {"detail": "Job not found"})
