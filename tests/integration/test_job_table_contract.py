"""One contract, two implementations: the DynamoDB adapter on moto and the in-memory fake."""

from datetime import UTC, datetime, timedelta

import pytest

from ordo.errors import StaleTransition
from ordo.jobs import Job, JobStatus, JobTable, PendingQuotaExceeded, new_job_id
from ordo.storage.dynamodb import DynamoJobTable
from ordo.tasks import TaskType
from tests.fakes import InMemoryJobTable
from tests.harness import Cloud

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["dynamodb", "memory"])
def table(request: pytest.FixtureRequest) -> JobTable:
    if request.param == "memory":
        return InMemoryJobTable()
    cloud: Cloud = request.getfixturevalue("anonymous_cloud")
    return DynamoJobTable(cloud.dynamodb, cloud.stack.physical["JobsTable"]["Ref"])


OWNER = "a" * 32


def new_job(table: JobTable, data: str = "abc", max_pending: int = 100) -> Job:
    job = Job(
        job_id=new_job_id(), owner=OWNER, task_type=TaskType.REVERSE, data=data, created_at=NOW
    )
    table.create(job, max_pending)
    return job


def test_create_then_get_round_trips_every_field(table: JobTable) -> None:
    job = new_job(table, data="ж😀\u0000 x")
    assert table.get(job.job_id) == job


def test_create_refuses_an_existing_id(table: JobTable) -> None:
    job = new_job(table)
    with pytest.raises(Exception):  # noqa: B017, PT011 - each adapter raises its own kind
        table.create(job, 100)


def test_get_of_unknown_id_is_none(table: JobTable) -> None:
    assert table.get(new_job_id()) is None


def test_queue_position_counts_only_pending_jobs_with_smaller_sequence(table: JobTable) -> None:
    jobs = [new_job(table) for _ in range(3)]
    for seq, job in enumerate(jobs, start=100):
        table.set_queue_seq(job.job_id, seq)
    assert [table.count_pending_before(s) for s in (100, 101, 102, 103)] == [0, 1, 2, 3]
    table.claim(jobs[0], NOW)
    assert table.count_pending_before(103) == 2


def test_sequence_is_not_recorded_once_the_job_started(table: JobTable) -> None:
    job = new_job(table)
    table.claim(job, NOW)
    table.set_queue_seq(job.job_id, 5)
    assert table.count_pending_before(10) == 0


def test_claim_finish_and_stale_attempts(table: JobTable) -> None:
    job = new_job(table)
    first = table.claim(job, NOW)
    assert (first.status, first.attempt, first.started_at) == (JobStatus.PROCESSING, 1, NOW)
    second = table.claim(first, NOW)
    with pytest.raises(StaleTransition):
        table.claim(first, NOW)
    with pytest.raises(StaleTransition):
        table.finish(first, JobStatus.COMPLETED, NOW, result="stale", error=None)
    done = table.finish(second, JobStatus.COMPLETED, NOW, result="cba", error=None)
    assert (done.status, done.result, done.finished_at) == (JobStatus.COMPLETED, "cba", NOW)
    with pytest.raises(StaleTransition):
        table.claim(done, NOW)
    with pytest.raises(StaleTransition):
        table.abandon(job.job_id, "late", NOW)


def test_failed_outcome_keeps_the_error(table: JobTable) -> None:
    job = table.claim(new_job(table), NOW)
    failed = table.finish(job, JobStatus.FAILED, NOW, result=None, error="bad input")
    assert (failed.status, failed.error, failed.result) == (JobStatus.FAILED, "bad input", None)


def test_abandon_pending_or_processing(table: JobTable) -> None:
    pending = new_job(table)
    assert table.abandon(pending.job_id, "never ran", NOW).status is JobStatus.FAILED
    running = table.claim(new_job(table), NOW)
    assert table.abandon(running.job_id, "crashed", NOW).error == "crashed"
    with pytest.raises(StaleTransition):
        table.abandon(new_job_id(), "unknown", NOW)


def test_create_counts_pending_jobs_and_refuses_one_past_the_limit(table: JobTable) -> None:
    jobs = [new_job(table, max_pending=2) for _ in range(2)]
    with pytest.raises(PendingQuotaExceeded):
        new_job(table, max_pending=2)
    assert table.pending_count(OWNER) == 2
    assert [table.get(job.job_id) is not None for job in jobs] == [True, True]


def test_leaving_pending_frees_the_quota_once(table: JobTable) -> None:
    claimed, abandoned, kept = (new_job(table) for _ in range(3))
    first = table.claim(claimed, NOW)
    table.note_failure(first, "attempt 1 failed")
    retried = table.claim(table.get(claimed.job_id) or first, NOW)  # a retry: no change
    table.abandon(abandoned.job_id, "never ran", NOW)
    table.abandon(retried.job_id, "crashed", NOW)  # was processing: no change
    assert table.pending_count(OWNER) == 1
    assert table.get(kept.job_id) is not None


def test_progress_only_grows_for_the_current_attempt(table: JobTable) -> None:
    job = table.claim(new_job(table), NOW)
    later = NOW + timedelta(seconds=1)
    assert table.set_progress(job, 25, later).progress == 25
    with pytest.raises(StaleTransition):
        table.set_progress(job, 25, later)  # not higher
    retry = table.claim(table.get(job.job_id) or job, later)
    with pytest.raises(StaleTransition):
        table.set_progress(job, 50, later)  # a stale attempt
    table.set_progress(retry, 50, later)
    done = table.finish(retry, JobStatus.COMPLETED, later, result="cba", error=None)
    assert (done.progress, done.updated_at) == (100, later)
    stored = table.get(job.job_id)
    assert stored is not None
    assert (stored.progress, stored.updated_at) == (100, later)
