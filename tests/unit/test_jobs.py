from datetime import UTC, datetime

import pytest

from ordo.errors import ResultNotReady, StaleTransition, TaskNotFound, Unavailable
from ordo.jobs import JobStatus, TaskRequest, get_result, get_task, submit_task
from ordo.tasks import TaskType
from tests.fakes import InMemoryJobQueue, InMemoryJobTable

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def submit(table: InMemoryJobTable, queue: InMemoryJobQueue, data: str = "abc") -> str:
    request = TaskRequest(type=TaskType.REVERSE, data=data)
    return submit_task(table, queue, request, NOW, retention_days=30).task_id


def test_submitted_task_is_pending_and_queued() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    task_id = submit(table, queue)
    assert queue.sent == [task_id]
    view = get_task(table, task_id)
    assert view.status is JobStatus.PENDING
    assert view.queue_position == 0


def test_retention_sets_the_ttl_attribute() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    job = table.jobs[submit(table, queue)]
    assert job.expires_at == int(NOW.timestamp()) + 30 * 86400


def test_queue_position_counts_pending_jobs_ahead() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    ids = [submit(table, queue) for _ in range(4)]
    assert [get_task(table, i).queue_position for i in ids] == [0, 1, 2, 3]
    # When the first starts, everyone moves up and the started one has no position
    table.claim(table.jobs[ids[0]], NOW)
    assert [get_task(table, i).queue_position for i in ids] == [None, 0, 1, 2]


def test_enqueue_failure_marks_the_job_failed_and_reports_unavailable() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue(fail=True)
    with pytest.raises(Unavailable):
        submit(table, queue)
    (job,) = table.jobs.values()
    assert job.status is JobStatus.FAILED
    assert job.error


@pytest.mark.parametrize("task_id", ["", "nope", "0" * 31, "G" * 32, "../../etc/passwd"])
def test_unknown_or_malformed_ids_are_not_found(task_id: str) -> None:
    with pytest.raises(TaskNotFound):
        get_task(InMemoryJobTable(), task_id)
    with pytest.raises(TaskNotFound):
        get_result(InMemoryJobTable(), task_id)


def test_result_of_a_pending_task_is_a_conflict_with_its_status() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    task_id = submit(table, queue)
    with pytest.raises(ResultNotReady) as raised:
        get_result(table, task_id)
    assert raised.value.extra == {"status": "pending"}


def test_result_of_a_failed_task_is_a_conflict_with_its_error() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    task_id = submit(table, queue)
    table.abandon(task_id, "gave up", NOW)
    with pytest.raises(ResultNotReady) as raised:
        get_result(table, task_id)
    assert raised.value.extra == {"status": "failed", "error": "gave up"}


def test_result_can_be_read_many_times() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    task_id = submit(table, queue)
    job = table.claim(table.jobs[task_id], NOW)
    table.finish(job, JobStatus.COMPLETED, NOW, result="cba", error=None)
    assert {get_result(table, task_id).result for _ in range(3)} == {"cba"}


class TestStateMachine:
    def setup_method(self) -> None:
        self.table, self.queue = InMemoryJobTable(), InMemoryJobQueue()
        self.task_id = submit(self.table, self.queue)

    def test_a_finished_job_cannot_be_claimed_again(self) -> None:
        job = self.table.claim(self.table.jobs[self.task_id], NOW)
        done = self.table.finish(job, JobStatus.COMPLETED, NOW, result="x", error=None)
        with pytest.raises(StaleTransition):
            self.table.claim(done, NOW)

    def test_a_stale_attempt_cannot_finish_the_job(self) -> None:
        first = self.table.claim(self.table.jobs[self.task_id], NOW)
        second = self.table.claim(first, NOW)  # redelivered after a crash
        with pytest.raises(StaleTransition):
            self.table.finish(first, JobStatus.COMPLETED, NOW, result="late", error=None)
        assert self.table.finish(second, JobStatus.COMPLETED, NOW, "x", None).attempt == 2

    def test_a_finished_job_cannot_be_abandoned(self) -> None:
        job = self.table.claim(self.table.jobs[self.task_id], NOW)
        self.table.finish(job, JobStatus.COMPLETED, NOW, result="x", error=None)
        with pytest.raises(StaleTransition):
            self.table.abandon(self.task_id, "late", NOW)
