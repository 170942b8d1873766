"""The DLQ consumer and the reconciler on fakes: every stranded job ends, and no other does.

Every test's table is checked on teardown: each owner's pending quota equals their pending jobs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ordo.jobs import Job, JobStatus, expiry, new_job_id
from ordo.observability import metrics
from ordo.recovery import (
    MIN_PENDING_AGE,
    NEVER_QUEUED,
    RETRY_LOST,
    STALL_SLACK,
    SUBMIT_WINDOW,
    WORKER_GONE,
    DeadLetter,
    ReconcileReport,
    end_dead_letters,
    reconcile,
)
from ordo.registry import KINDS
from ordo.worker import CRASHED
from tests.fakes import InMemoryJobTable

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ALICE, BOB = "a" * 32, "b" * 32
PENDING_MINUTES = 15
THRESHOLD = timedelta(minutes=PENDING_MINUTES)
WORKER_TIMEOUT = 30
TIME_SCALE = 1.0
RETENTION_DAYS = 3
MAX_RECEIVE_COUNT = 5
SECOND = timedelta(seconds=1)


class Gauge:
    """A lane of a fixed depth; counts how often it was read."""

    def __init__(self, depth: int = 0) -> None:
        self.value = depth
        self.reads = 0

    def depth(self) -> int:
        self.reads += 1
        return self.value


EMPTY_LANE, BUSY_LANE = 0, 7
PENDING = JobStatus.PENDING


def _quota_matches(table: InMemoryJobTable) -> None:
    owners = {job.owner for job in table.jobs.values()} | set(table.pending)
    for owner in owners:
        waiting = [j for j in table.jobs.values() if j.owner == owner and j.status is PENDING]
        assert table.pending_count(owner) == len(waiting), owner


@pytest.fixture(autouse=True)
def _fresh_metrics() -> None:
    metrics.clear_metrics()


@pytest.fixture
def table() -> Iterator[InMemoryJobTable]:
    table = InMemoryJobTable()
    yield table
    _quota_matches(table)


def metric(name: str) -> float:
    entry = metrics.metric_set.get(name)
    return sum(entry["Value"]) if entry else 0.0


# --- building the table's state --------------------------------------------------------------


def pending(
    table: InMemoryJobTable, created_at: datetime, *, owner: str = ALICE, kind: str = "reverse"
) -> Job:
    job = Job(
        job_id=new_job_id(),
        owner=owner,
        kind=kind,
        data='{"kind": "%s", "text": "abc"}' % kind,  # noqa: UP031
        created_at=created_at,
        updated_at=created_at,
    )
    table.create(job, max_pending=1000)
    return job


def processing(
    table: InMemoryJobTable,
    started_at: datetime,
    *,
    kind: str = "reverse",
    created_at: datetime | None = None,
    interrupted: bool = False,
) -> Job:
    job = table.claim(pending(table, created_at or started_at, kind=kind), started_at)
    if interrupted:
        job = table.note_interrupted(job, "attempt 1 interrupted: ThrottlingException")
    return job


def started(
    table: InMemoryJobTable, created_at: datetime, status: JobStatus = JobStatus.COMPLETED
) -> Job:
    """A job the worker took from the lane (a moment after it was created), in ``status``."""
    job = processing(table, created_at + SECOND, created_at=created_at)
    if status is JobStatus.PROCESSING:
        return job
    outcome: dict[str, Any] = (
        {"result": "cba"} if status is JobStatus.COMPLETED else {"error": "runner failed"}
    )
    return table.finish(job, status, created_at + 2 * SECOND, **outcome)


def run(
    table: InMemoryJobTable, lane: Gauge | None = None, now: datetime = NOW, **options: Any
) -> ReconcileReport:
    settings: dict[str, Any] = {
        "pending_minutes": PENDING_MINUTES,
        "worker_timeout_seconds": WORKER_TIMEOUT,
        "time_scale": TIME_SCALE,
        "retention_days": RETENTION_DAYS,
    } | options
    return reconcile(table, lane or Gauge(EMPTY_LANE), KINDS, now, **settings)


def status(table: InMemoryJobTable, job: Job) -> JobStatus:
    return table.jobs[job.job_id].status


def stall_deadline(kind: str) -> timedelta:
    """How long after its start a processing job of ``kind`` is certainly stranded."""
    budget = timedelta(seconds=KINDS.get(kind).budget(TIME_SCALE))
    return budget + timedelta(seconds=WORKER_TIMEOUT) + STALL_SLACK


# --- reconciler: pending jobs whose message never reached the lane --------------------------


def test_a_pending_job_past_the_threshold_on_an_empty_lane_is_ended(
    table: InMemoryJobTable,
) -> None:
    # Given a job pending for just over the threshold, and nothing on the lane
    job = pending(table, NOW - THRESHOLD - SECOND)
    # When the reconciler runs
    report = run(table, Gauge(EMPTY_LANE))
    # Then the job is failed with the reason, set to expire, and off its owner's quota
    ended = table.jobs[job.job_id]
    assert (ended.status, ended.error) == (JobStatus.FAILED, NEVER_QUEUED)
    assert ended.finished_at == NOW
    assert ended.expires_at == expiry(NOW, RETENTION_DAYS)
    assert table.pending_count(ALICE) == 0
    assert (report.pending_ended, report.job_ids) == (1, [job.job_id])
    assert metric("ReconcilerActions") == 1


def test_a_pending_job_just_under_the_threshold_is_left_alone(table: InMemoryJobTable) -> None:
    # Given a job pending for just under the threshold, and nothing on the lane
    job = pending(table, NOW - THRESHOLD + SECOND)
    # When the reconciler runs
    report = run(table, Gauge(EMPTY_LANE))
    # Then it is still pending and counted in the quota
    assert status(table, job) is JobStatus.PENDING
    assert table.pending_count(ALICE) == 1
    assert report.ended == 0
    assert metric("ReconcilerActions") == 0


def test_an_old_pending_job_is_left_alone_while_the_lane_holds_messages(
    table: InMemoryJobTable,
) -> None:
    # Given an old pending job, messages on the lane, and no later job started
    job = pending(table, NOW - 3 * THRESHOLD)
    # When the reconciler runs
    report = run(table, Gauge(BUSY_LANE))
    # Then its message may be waiting in the backlog: it stays pending, and is reported
    assert status(table, job) is JobStatus.PENDING
    assert report.oldest_waiting == job.job_id
    assert report.ended == 0


@pytest.mark.parametrize(
    "witness_status", [JobStatus.PROCESSING, JobStatus.COMPLETED, JobStatus.FAILED]
)
def test_a_job_created_after_the_submit_window_and_started_proves_the_message_lost(
    table: InMemoryJobTable, witness_status: JobStatus
) -> None:
    # Given an old pending job P, and a job created just past P's submit window that the
    # worker has already started (and maybe finished)
    lost = pending(table, NOW - 2 * THRESHOLD)
    started(table, lost.created_at + SUBMIT_WINDOW + SECOND, witness_status)
    # When the reconciler runs while the lane still holds other messages
    report = run(table, Gauge(BUSY_LANE))
    # Then P's message came off the lane before that job's: P is ended
    assert table.jobs[lost.job_id].error == NEVER_QUEUED
    assert report.pending_ended == 1


def test_a_job_started_within_the_submit_window_proves_nothing(table: InMemoryJobTable) -> None:
    # Given an old pending job P, and a started job created just inside P's submit window
    # (its message may have gone on the lane before P's)
    waiting = pending(table, NOW - 2 * THRESHOLD)
    started(table, waiting.created_at + SUBMIT_WINDOW - SECOND)
    # When the reconciler runs while the lane holds messages
    report = run(table, Gauge(BUSY_LANE))
    # Then P is left alone
    assert status(table, waiting) is JobStatus.PENDING
    assert report.ended == 0


def test_a_later_job_that_never_started_proves_nothing(table: InMemoryJobTable) -> None:
    # Given an old pending job P, and a later job that failed without ever running
    waiting = pending(table, NOW - 2 * THRESHOLD)
    never_ran = pending(table, NOW - THRESHOLD)
    table.abandon(never_ran.job_id, "could not be queued", NOW - THRESHOLD)
    # When the reconciler runs while the lane holds messages
    run(table, Gauge(BUSY_LANE))
    # Then P is left alone
    assert status(table, waiting) is JobStatus.PENDING


def test_only_the_jobs_older_than_the_latest_started_one_are_ended(
    table: InMemoryJobTable,
) -> None:
    # Given two old pending jobs, and a started job created between them
    older = pending(table, NOW - 4 * THRESHOLD)
    started(table, NOW - 3 * THRESHOLD)
    newer = pending(table, NOW - 2 * THRESHOLD)
    # When the reconciler runs while the lane holds messages
    report = run(table, Gauge(BUSY_LANE))
    # Then only the older one is ended; the newer one's message may be on the lane
    assert status(table, older) is JobStatus.FAILED
    assert status(table, newer) is JobStatus.PENDING
    assert report.oldest_waiting == newer.job_id


def test_a_low_threshold_still_gives_the_message_time_to_show_on_the_lane(
    table: InMemoryJobTable,
) -> None:
    # Given a one-minute threshold, and a job pending for just under the least age looked at
    job = pending(table, NOW - MIN_PENDING_AGE + SECOND)
    # When the reconciler runs with the lane (maybe a minute behind) showing empty
    run(table, Gauge(EMPTY_LANE), pending_minutes=1)
    # Then the job is left alone
    assert status(table, job) is JobStatus.PENDING


def test_many_owners_quotas_are_released_each_for_their_own_jobs(
    table: InMemoryJobTable,
) -> None:
    # Given lost jobs of two owners, and a recent pending job of each
    for owner in (ALICE, BOB, ALICE):
        pending(table, NOW - 2 * THRESHOLD, owner=owner)
    for owner in (ALICE, BOB):
        pending(table, NOW - SECOND, owner=owner)
    # When the reconciler runs
    report = run(table, Gauge(EMPTY_LANE))
    # Then each owner is left with exactly their recent job counted
    assert report.pending_ended == 3
    assert (table.pending_count(ALICE), table.pending_count(BOB)) == (1, 1)


def test_the_lane_is_not_read_when_no_job_is_old_enough(table: InMemoryJobTable) -> None:
    pending(table, NOW - SECOND)
    lane = Gauge(EMPTY_LANE)

    run(table, lane)

    assert lane.reads == 0


# --- reconciler: processing jobs whose worker is gone ---------------------------------------


@pytest.mark.parametrize("kind", ["reverse", "fetch"])
def test_a_processing_job_past_its_budget_and_the_workers_timeout_is_ended(
    table: InMemoryJobTable, kind: str
) -> None:
    # Given a job processing for just over its kind's budget, the worker's timeout and slack
    job = processing(table, NOW - stall_deadline(kind) - SECOND, kind=kind)
    # When the reconciler runs (even with a busy lane)
    report = run(table, Gauge(BUSY_LANE))
    # Then the worker that ran it is gone: the job is failed
    ended = table.jobs[job.job_id]
    assert (ended.status, ended.error) == (JobStatus.FAILED, WORKER_GONE)
    assert ended.expires_at == expiry(NOW, RETENTION_DAYS)
    assert (report.processing_ended, report.job_ids) == (1, [job.job_id])


@pytest.mark.parametrize("kind", ["reverse", "fetch"])
def test_a_processing_job_within_its_budget_and_the_workers_timeout_is_left_alone(
    table: InMemoryJobTable, kind: str
) -> None:
    job = processing(table, NOW - stall_deadline(kind) + SECOND, kind=kind)

    report = run(table, Gauge(EMPTY_LANE))

    assert status(table, job) is JobStatus.PROCESSING
    assert report.ended == 0


def test_a_job_of_an_unknown_kind_gets_the_longest_budget(table: InMemoryJobTable) -> None:
    # Given two jobs of a kind this deployment does not know, either side of the longest budget
    longest = timedelta(seconds=KINDS.longest_budget(TIME_SCALE))
    deadline = longest + timedelta(seconds=WORKER_TIMEOUT) + STALL_SLACK
    inside = processing(table, NOW - deadline + SECOND, kind="retired")
    past = processing(table, NOW - deadline - SECOND, kind="retired")
    # When the reconciler runs
    run(table)
    # Then only the one past it is ended
    assert status(table, inside) is JobStatus.PROCESSING
    assert status(table, past) is JobStatus.FAILED


def test_an_interrupted_job_waits_for_its_message_while_it_may_be_on_the_lane(
    table: InMemoryJobTable,
) -> None:
    # Given an old processing job that infrastructure interrupted: its message went back
    job = processing(table, NOW - 2 * stall_deadline("reverse"), interrupted=True)
    # When the reconciler runs while the lane holds messages
    run(table, Gauge(BUSY_LANE))
    # Then it is left to run again
    assert status(table, job) is JobStatus.PROCESSING


def test_an_interrupted_job_whose_message_is_gone_is_ended(table: InMemoryJobTable) -> None:
    job = processing(table, NOW - 2 * stall_deadline("reverse"), interrupted=True)

    report = run(table, Gauge(EMPTY_LANE))

    assert table.jobs[job.job_id].error == RETRY_LOST
    assert report.processing_ended == 1


# --- reconciler: safe to repeat, and to race ---------------------------------------------------


def test_a_second_run_ends_nothing(table: InMemoryJobTable) -> None:
    # Given a lost pending job and a stalled processing job
    lost = pending(table, NOW - 2 * THRESHOLD)
    stalled = processing(table, NOW - 2 * stall_deadline("reverse"))
    first = run(table)
    # When the reconciler runs again
    second = run(table, now=NOW + timedelta(minutes=5))
    # Then it ends nothing more, and the jobs keep the first run's outcome
    assert sorted(first.job_ids) == sorted([lost.job_id, stalled.job_id])
    assert (second.ended, second.moved_on) == (0, 0)
    assert table.jobs[lost.job_id].finished_at == NOW


class WorkerFinishesFirst(InMemoryJobTable):
    """The worker's redelivery ends the job between the reconciler's read and its write."""

    def abandon(self, job_id: str, error: str, now: datetime, **options: Any) -> Job:
        current = self.jobs[job_id]
        if current.status is JobStatus.PROCESSING:
            self.finish(current, JobStatus.FAILED, now, error=CRASHED)
        return super().abandon(job_id, error, now, **options)


def test_a_job_the_worker_ended_meanwhile_is_skipped() -> None:
    # Given a stalled job that the worker ends just before the reconciler's write
    table = WorkerFinishesFirst()
    job = processing(table, NOW - 2 * stall_deadline("reverse"))
    # When the reconciler runs
    report = run(table)
    # Then the conditional write loses, and the worker's outcome stands
    assert table.jobs[job.job_id].error == CRASHED
    assert (report.ended, report.moved_on) == (0, 1)
    _quota_matches(table)


class ClaimedBehindTheIndex(InMemoryJobTable):
    """The status index lags: a job it lists as pending has already been claimed."""

    def get(self, job_id: str) -> Job | None:
        current = self.jobs.get(job_id)
        if current is not None and current.status is JobStatus.PENDING:
            self.claim(current, NOW)
        return super().get(job_id)


def test_a_candidate_is_read_again_before_it_is_ended() -> None:
    table = ClaimedBehindTheIndex()
    job = pending(table, NOW - 2 * THRESHOLD)

    report = run(table)

    assert status(table, job) is JobStatus.PROCESSING
    assert (report.ended, report.moved_on) == (0, 1)
    _quota_matches(table)


def test_a_run_stops_at_its_limit_and_the_next_goes_on(table: InMemoryJobTable) -> None:
    # Given three lost jobs and a limit of two per run
    jobs = [pending(table, NOW - 2 * THRESHOLD + n * SECOND) for n in range(3)]
    # When the reconciler runs twice
    first = run(table, max_ended=2)
    second = run(table, max_ended=2)
    # Then the oldest two end in the first run, and the last in the second
    assert (first.job_ids, first.capped) == ([j.job_id for j in jobs[:2]], True)
    assert (second.job_ids, second.capped) == ([jobs[2].job_id], False)


def _throttled() -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "Update")


class ThrottledWrites(InMemoryJobTable):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def abandon(self, job_id: str, error: str, now: datetime, **options: Any) -> Job:
        raise self.error


def test_a_transient_error_stops_the_run_for_the_next_one_to_go_on() -> None:
    table = ThrottledWrites(_throttled())
    job = pending(table, NOW - 2 * THRESHOLD)

    report = run(table)

    assert report.stopped == "ThrottlingException"
    assert status(table, job) is JobStatus.PENDING
    _quota_matches(table)


def test_any_other_error_is_raised() -> None:
    table = ThrottledWrites(RuntimeError("a bug"))
    pending(table, NOW - 2 * THRESHOLD)

    with pytest.raises(RuntimeError, match="a bug"):
        run(table)


# --- the dead-letter consumer ---------------------------------------------------------------


def letter(body: str, n: int = 1) -> DeadLetter:
    return DeadLetter(message_id=f"m-{n}", body=body)


def pointer(job: Job | str) -> str:
    return '{"job_id":"%s"}' % (job if isinstance(job, str) else job.job_id)


def consume(table: InMemoryJobTable, *letters: DeadLetter) -> list[str]:
    return end_dead_letters(
        table,
        letters,
        NOW,
        max_receive_count=MAX_RECEIVE_COUNT,
        retention_days=RETENTION_DAYS,
    )


def test_a_dead_lettered_pending_job_ends_failed_and_leaves_the_quota(
    table: InMemoryJobTable,
) -> None:
    # Given a pending job whose message SQS gave up on
    job = pending(table, NOW - SECOND)
    body = pointer(job)
    # When its dead letter is consumed
    kept = consume(table, letter(body))
    # Then the job is failed with the reason, keeps the body, expires, and leaves the quota
    ended = table.jobs[job.job_id]
    assert kept == []
    assert (ended.status, ended.error) == (JobStatus.FAILED, "dead-lettered after 5 deliveries")
    assert ended.dead_letter_body == body
    assert ended.expires_at == expiry(NOW, RETENTION_DAYS)
    assert table.pending_count(ALICE) == 0
    assert metric("JobsDeadLettered") == 1


def test_a_dead_lettered_processing_job_ends_failed(table: InMemoryJobTable) -> None:
    job = processing(table, NOW - SECOND)

    assert consume(table, letter(pointer(job))) == []

    assert table.jobs[job.job_id].status is JobStatus.FAILED
    assert table.jobs[job.job_id].error == "dead-lettered after 5 deliveries"


def test_a_dead_letter_of_a_finished_job_is_acknowledged_and_changes_nothing(
    table: InMemoryJobTable,
) -> None:
    job = started(table, NOW - timedelta(minutes=1))

    assert consume(table, letter(pointer(job))) == []

    assert table.jobs[job.job_id] == job
    assert metric("JobsDeadLettered") == 0


@pytest.mark.parametrize(
    "body", ["garbage", "", "{}", '{"job_id": "not-an-id"}', pointer("f" * 32)]
)
def test_an_unreadable_or_unknown_dead_letter_is_acknowledged(
    table: InMemoryJobTable, body: str
) -> None:
    # Given a dead letter that points at no job, and one behind it that does
    job = pending(table, NOW - SECOND)
    # When both are consumed
    kept = consume(table, letter(body, 1), letter(pointer(job), 2))
    # Then neither is kept in flight, and the job behind is ended
    assert kept == []
    assert metric("DeadLettersDiscarded") == 1
    assert status(table, job) is JobStatus.FAILED


class FailsOnce(InMemoryJobTable):
    """The first write for the job ``fail_for`` raises ``error``."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error
        self.fail_for = ""

    def abandon(self, job_id: str, error: str, now: datetime, **options: Any) -> Job:
        if job_id == self.fail_for:
            self.fail_for = ""
            raise self.error
        return super().abandon(job_id, error, now, **options)


def test_a_transient_error_keeps_that_dead_letter_and_every_later_one() -> None:
    # Given four dead letters, and a table that throttles the second one's job
    table = FailsOnce(_throttled())
    jobs = [pending(table, NOW - SECOND) for _ in range(4)]
    table.fail_for = jobs[1].job_id
    letters = [letter(pointer(job), n) for n, job in enumerate(jobs)]
    # When the batch is consumed
    kept = consume(table, *letters)
    # Then the first is done, and the throttled one and all after it are kept, in order
    assert kept == ["m-1", "m-2", "m-3"]
    assert [status(table, job) for job in jobs] == [JobStatus.FAILED] + [PENDING] * 3
    # And when they are delivered again, they are all ended
    assert consume(table, *letters[1:]) == []
    assert all(status(table, job) is JobStatus.FAILED for job in jobs)
    _quota_matches(table)


def test_a_permanent_error_is_logged_and_acknowledged_for_the_reconciler_to_finish() -> None:
    # Given a dead letter whose job cannot be written (not a transient error)
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Update")
    table = FailsOnce(denied)
    job, after = pending(table, NOW - SECOND), pending(table, NOW - SECOND)
    table.fail_for = job.job_id
    # When the batch is consumed
    kept = consume(table, letter(pointer(job), 1), letter(pointer(after), 2))
    # Then no message blocks the DLQ, and the next one is still handled
    assert kept == []
    assert status(table, job) is PENDING
    assert status(table, after) is JobStatus.FAILED
    assert metric("DeadLettersDiscarded") == 1
    _quota_matches(table)


def test_a_dead_letter_racing_the_reconciler_is_acknowledged(table: InMemoryJobTable) -> None:
    # Given a job the reconciler already ended
    job = pending(table, NOW - 2 * THRESHOLD)
    run(table)
    # When its dead letter arrives
    kept = consume(table, letter(pointer(job)))
    # Then it is acknowledged, and the reconciler's outcome stands
    assert kept == []
    assert table.jobs[job.job_id].error == NEVER_QUEUED
