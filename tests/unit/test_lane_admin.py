"""Lane operations for admins, on the in-memory fakes: the lane view, paging every user's jobs,
and the retry of a failed job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from ordo.accounts import Role, User
from ordo.errors import Forbidden, InvalidInput, JobNotFound, Unavailable
from ordo.jobs import Job, JobStatus, NotRetryable, accept, new_job
from ordo.lane_admin import JobsQuery, lane_view, list_jobs, retry_job
from ordo.tasks import TaskRequest, TaskType
from tests.fakes import InMemoryJobQueue, InMemoryJobTable
from tests.fakes_accounts import make_user

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ALICE = make_user("alice")
BOB = make_user("bob")
ADMIN = make_user("root", role=Role.ADMIN)


class FakeGauge:
    def __init__(self, depth: int = 0) -> None:
        self.messages = depth

    def depth(self) -> int:
        return self.messages


class FakeLane:
    """The fakes, and a worker's moves done by hand at chosen moments."""

    def __init__(self) -> None:
        self.table = InMemoryJobTable()
        self.queue = InMemoryJobQueue()
        self.dead_letters = FakeGauge()

    def submit(self, at: datetime, *, owner: str = ALICE.id, text: str = "abc") -> Job:
        payload = TaskRequest(type=TaskType.REVERSE, data=text).payload()
        job = new_job(payload, owner=owner, now=at)
        accept(self.table, self.queue, job, at, max_pending=1000, retention_days=30)
        return job

    def start(self, job: Job, at: datetime) -> Job:
        return self.table.claim(self.table.jobs[job.job_id], at)

    def fail(self, job: Job, at: datetime, error: str = "boom") -> Job:
        running = self.start(job, at)
        return self.table.finish(running, JobStatus.FAILED, at, error=error)

    def complete(self, job: Job, at: datetime) -> Job:
        running = self.start(job, at)
        return self.table.finish(running, JobStatus.COMPLETED, at, result="cba")

    def retry(self, job_id: str, viewer: User = ADMIN) -> str:
        return retry_job(self.table, self.queue, viewer, job_id, now=NOW, retention_days=30).job_id


@pytest.fixture
def lane() -> FakeLane:
    return FakeLane()


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# --- the lane view ---------------------------------------------------------------------------


def test_an_empty_lane(lane: FakeLane) -> None:
    view = lane_view(lane.table, lane.dead_letters, ADMIN, NOW)
    assert view.model_dump() == {
        "pending": 0,
        "processing": 0,
        "oldest_pending_age_seconds": None,
        "running": None,
        "dead_letters": 0,
        "failed_last_hour": 0,
    }


def test_a_busy_lane(lane: FakeLane) -> None:
    # Given a job that failed two hours ago, one that failed ten minutes ago, one completed,
    # a stranded processing job, the one running now, and two waiting
    lane.fail(lane.submit(NOW - minutes(130)), NOW - minutes(120))
    lane.fail(lane.submit(NOW - minutes(15)), NOW - minutes(10))
    lane.complete(lane.submit(NOW - minutes(15)), NOW - minutes(9))
    lane.start(lane.submit(NOW - minutes(14)), NOW - minutes(8))
    running = lane.start(lane.submit(NOW - minutes(13)), NOW - minutes(2))
    lane.submit(NOW - minutes(5), owner=BOB.id)
    lane.submit(NOW - minutes(1))
    lane.dead_letters.messages = 3

    view = lane_view(lane.table, lane.dead_letters, ADMIN, NOW)

    assert (view.pending, view.processing) == (2, 2)
    assert view.oldest_pending_age_seconds == 300.0  # the oldest of every owner's
    assert view.running is not None
    assert (view.running.job_id, view.running.kind) == (running.job_id, "reverse")
    assert view.running.started_at == NOW - minutes(2)
    assert view.dead_letters == 3
    assert view.failed_last_hour == 1


def test_the_lane_view_as_the_worker_moves(lane: FakeLane) -> None:
    first, second = lane.submit(NOW - minutes(2)), lane.submit(NOW - minutes(1))
    assert lane_view(lane.table, lane.dead_letters, ADMIN, NOW).oldest_pending_age_seconds == 120

    lane.start(first, NOW)
    view = lane_view(lane.table, lane.dead_letters, ADMIN, NOW)
    assert (view.pending, view.processing, view.oldest_pending_age_seconds) == (1, 1, 60)
    assert view.running is not None
    assert view.running.job_id == first.job_id

    lane.table.finish(lane.table.jobs[first.job_id], JobStatus.FAILED, NOW, error="boom")
    lane.start(second, NOW)
    view = lane_view(lane.table, lane.dead_letters, ADMIN, NOW)
    assert (view.pending, view.processing, view.failed_last_hour) == (0, 1, 1)
    assert view.oldest_pending_age_seconds is None
    assert view.running is not None
    assert view.running.job_id == second.job_id


def test_a_job_accepted_a_moment_ahead_of_the_clock_has_waited_zero(lane: FakeLane) -> None:
    lane.submit(NOW + timedelta(milliseconds=5))  # another container's clock
    assert lane_view(lane.table, lane.dead_letters, ADMIN, NOW).oldest_pending_age_seconds == 0


# --- every user's jobs -----------------------------------------------------------------------


def test_failed_jobs_of_every_user_page_newest_first(lane: FakeLane) -> None:
    failed = [
        lane.fail(lane.submit(NOW, owner=owner.id), NOW + minutes(n), error=f"error {n}")
        for n, owner in enumerate([ALICE, BOB, ALICE, BOB, ALICE])
    ]
    lane.complete(lane.submit(NOW), NOW + minutes(10))
    seen, cursor = [], None
    while True:
        page = list_jobs(
            lane.table, ADMIN, JobsQuery(status=JobStatus.FAILED, limit=2, cursor=cursor)
        )
        assert len(page.items) <= 2
        seen += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [item.job_id for item in seen] == [job.job_id for job in reversed(failed)]
    newest = seen[0]
    assert newest.model_dump() == {
        "job_id": failed[-1].job_id,
        "owner": ALICE.id,
        "kind": "reverse",
        "status": JobStatus.FAILED,
        "error": "error 4",
        "attempts": 1,
        "created_at": NOW,
        "started_at": NOW + minutes(4),
        "finished_at": NOW + minutes(4),
        "updated_at": NOW + minutes(4),
        "retry_of": None,
        "retried_as": None,
    }


def test_every_status_can_be_listed(lane: FakeLane) -> None:
    lane.submit(NOW)
    for status, expected in [
        (JobStatus.PENDING, 1),
        (JobStatus.PROCESSING, 0),
        (JobStatus.COMPLETED, 0),
        (JobStatus.FAILED, 0),
    ]:
        assert len(list_jobs(lane.table, ADMIN, JobsQuery(status=status)).items) == expected


@pytest.mark.parametrize("query", [{}, {"status": ""}, {"limit": "5"}])
def test_a_missing_status_names_the_choices(query: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as raised:
        JobsQuery.model_validate(query)
    assert "status is required: one of pending, processing, completed, failed" in str(raised.value)


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"status": "stuck"}, "'pending', 'processing', 'completed' or 'failed'"),
        ({"status": "failed", "limit": "0"}, "greater than or equal to 1"),
        ({"status": "failed", "limit": "101"}, "less than or equal to 100"),
        ({"status": "failed", "cursor": "x" * 2049}, "at most 2048 characters"),
    ],
)
def test_a_query_out_of_bounds_says_why(query: dict[str, str], problem: str) -> None:
    with pytest.raises(ValidationError) as raised:
        JobsQuery.model_validate(query)
    assert problem in str(raised.value)


def test_a_query_of_a_status_has_defaults() -> None:
    assert JobsQuery.model_validate({"status": "failed"}) == JobsQuery(
        status=JobStatus.FAILED, limit=20, cursor=None
    )


def test_a_bad_cursor_is_invalid_input(lane: FakeLane) -> None:
    with pytest.raises(InvalidInput):
        list_jobs(lane.table, ADMIN, JobsQuery(status=JobStatus.FAILED, cursor="nope"))


# --- retry -----------------------------------------------------------------------------------


def test_a_retry_is_a_new_pending_job_with_the_same_payload_and_owner(lane: FakeLane) -> None:
    # Given a failed job of bob's, and a job of alice's waiting in the lane
    failed = lane.fail(lane.submit(NOW - minutes(3), owner=BOB.id, text="xyz"), NOW - minutes(2))
    waiting = lane.submit(NOW - minutes(1))
    pending_before = lane.table.pending_count(BOB.id)

    # When an admin retries it
    accepted = retry_job(lane.table, lane.queue, ADMIN, failed.job_id, now=NOW, retention_days=30)

    # Then a new job is pending at the end of the lane, with the old one's kind, payload, owner
    new = lane.table.jobs[accepted.job_id]
    assert accepted.job_id != failed.job_id
    assert (accepted.retry_of, accepted.status, accepted.owner) == (
        failed.job_id,
        JobStatus.PENDING,
        BOB.id,
    )
    assert (new.status, new.kind, new.data, new.owner) == (
        JobStatus.PENDING,
        failed.kind,
        failed.data,
        BOB.id,
    )
    assert (new.created_at, new.attempt, new.error, new.result) == (NOW, 0, None, None)
    # linked both ways
    assert new.retry_of == failed.job_id
    assert lane.table.jobs[failed.job_id].retried_as == new.job_id
    assert lane.table.jobs[failed.job_id].status is JobStatus.FAILED
    # counted in its owner's quota, and queued behind the job already waiting
    assert lane.table.pending_count(BOB.id) == pending_before + 1
    assert lane.queue.sent[-2:] == [waiting.job_id, new.job_id]
    assert new.queue_seq is not None
    assert lane.table.count_pending_before(new.queue_seq) == 1


def test_a_retry_is_never_refused_by_the_owners_quota(lane: FakeLane) -> None:
    failed = lane.fail(lane.submit(NOW - minutes(1)), NOW)
    for _ in range(100):
        lane.submit(NOW)
    new_id = lane.retry(failed.job_id)
    assert lane.table.pending_count(ALICE.id) == 101
    assert lane.table.jobs[new_id].status is JobStatus.PENDING


def test_a_retry_of_a_kind_that_no_longer_exists_is_queued(lane: FakeLane) -> None:
    gone = Job(
        job_id="a" * 32,
        owner=ALICE.id,
        kind="retired",
        data="{}",
        created_at=NOW,
        status=JobStatus.FAILED,
        finished_at=NOW,
    )
    lane.table.jobs[gone.job_id] = gone
    new_id = lane.retry(gone.job_id)
    assert (lane.table.jobs[new_id].kind, lane.table.jobs[new_id].data) == ("retired", "{}")


@pytest.mark.parametrize(
    ("state", "why"),
    [
        ("pending", "is pending; only a failed job can be retried"),
        ("processing", "is processing; only a failed job can be retried"),
        ("completed", "is completed; only a failed job can be retried"),
    ],
)
def test_only_a_failed_job_can_be_retried(lane: FakeLane, state: str, why: str) -> None:
    job = lane.submit(NOW - minutes(1))
    if state == "processing":
        lane.start(job, NOW)
    if state == "completed":
        lane.complete(job, NOW)
    sent = list(lane.queue.sent)
    with pytest.raises(NotRetryable) as raised:
        lane.retry(job.job_id)
    assert raised.value.detail == f"Job {job.job_id} {why}"
    assert lane.queue.sent == sent
    assert len(lane.table.jobs) == 1


def test_a_failed_job_is_retried_once(lane: FakeLane) -> None:
    failed = lane.fail(lane.submit(NOW - minutes(1)), NOW)
    first = lane.retry(failed.job_id)
    with pytest.raises(NotRetryable) as raised:
        lane.retry(failed.job_id)
    assert raised.value.detail == f"Job {failed.job_id} was already retried as {first}"
    assert len(lane.table.jobs) == 2


def test_a_retry_that_fails_again_can_itself_be_retried(lane: FakeLane) -> None:
    failed = lane.fail(lane.submit(NOW - minutes(1)), NOW)
    second = lane.fail(lane.table.jobs[lane.retry(failed.job_id)], NOW)
    third = lane.retry(second.job_id)
    assert lane.table.jobs[third].retry_of == second.job_id
    assert lane.table.jobs[second.job_id].retried_as == third


def test_a_concurrent_retry_loses_in_the_table(lane: FakeLane) -> None:
    # Another admin's retry landed between this one's read and its write
    failed = lane.fail(lane.submit(NOW - minutes(1)), NOW)
    stale = lane.table.get

    def read_before_the_other_retry(job_id: str) -> Job | None:
        job = stale(job_id)
        lane.table.get = stale  # type: ignore[method-assign]
        lane.retry(failed.job_id)
        return job

    lane.table.get = read_before_the_other_retry  # type: ignore[method-assign]
    with pytest.raises(NotRetryable):
        lane.retry(failed.job_id)
    assert len(lane.table.jobs) == 2


@pytest.mark.parametrize("job_id", ["0" * 32, "nope", "x" * 3000, "0" * 31 + "g"])
def test_an_unknown_or_malformed_id_is_not_found(lane: FakeLane, job_id: str) -> None:
    with pytest.raises(JobNotFound):
        lane.retry(job_id)


def test_a_retry_the_lane_refuses_ends_the_new_job_failed(lane: FakeLane) -> None:
    failed = lane.fail(lane.submit(NOW - minutes(1)), NOW)
    with pytest.raises(Unavailable):
        retry_job(
            lane.table, InMemoryJobQueue(fail=True), ADMIN, failed.job_id, now=NOW, retention_days=1
        )
    new = lane.table.jobs[lane.table.jobs[failed.job_id].retried_as or ""]
    assert new.status is JobStatus.FAILED
    assert lane.table.pending_count(ALICE.id) == 0


# --- admins only -----------------------------------------------------------------------------


def test_users_are_forbidden_everything(lane: FakeLane) -> None:
    failed = lane.fail(lane.submit(NOW - minutes(1)), NOW)
    with pytest.raises(Forbidden):
        lane_view(lane.table, lane.dead_letters, ALICE, NOW)
    with pytest.raises(Forbidden):
        list_jobs(lane.table, ALICE, JobsQuery(status=JobStatus.FAILED))
    with pytest.raises(Forbidden):
        lane.retry(failed.job_id, viewer=ALICE)  # even their own job
    assert lane.table.jobs[failed.job_id].retried_as is None
