from datetime import UTC, datetime

import pytest

from ordo.accounts import Role
from ordo.errors import ResultNotReady, StaleTransition, TaskNotFound, Unavailable
from ordo.jobs import JobStatus, PendingQuotaExceeded
from ordo.tasks import TaskRequest, TaskType, get_result, get_task, submit_task
from tests.fakes import InMemoryJobQueue, InMemoryJobTable
from tests.fakes_accounts import make_user

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ALICE = make_user("alice")
BOB = make_user("bob")
ADMIN = make_user("root", role=Role.ADMIN)


def submit(
    table: InMemoryJobTable,
    queue: InMemoryJobQueue,
    data: str = "abc",
    *,
    owner: str = ALICE.id,
    max_pending: int = 100,
) -> str:
    request = TaskRequest(type=TaskType.REVERSE, data=data)
    return submit_task(
        table,
        queue,
        request,
        owner=owner,
        now=NOW,
        retention_days=30,
        max_pending=max_pending,
    ).task_id


def test_submitted_task_is_pending_and_queued() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    task_id = submit(table, queue)
    assert queue.sent == [task_id]
    view = get_task(table, ALICE, task_id)
    assert view.status is JobStatus.PENDING
    assert view.queue_position == 0


def test_a_waiting_job_never_expires_and_one_that_could_not_be_queued_expires_from_then() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    assert table.jobs[submit(table, queue)].expires_at is None
    with pytest.raises(Unavailable):
        submit(table, InMemoryJobQueue(fail=True))
    failed = next(job for job in table.jobs.values() if job.status is JobStatus.FAILED)
    assert failed.expires_at == int(NOW.timestamp()) + 30 * 86400


def test_queue_position_counts_pending_jobs_ahead() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    ids = [submit(table, queue) for _ in range(4)]
    assert [get_task(table, ALICE, i).queue_position for i in ids] == [0, 1, 2, 3]
    # When the first starts, everyone moves up and the started one has no position
    table.claim(table.jobs[ids[0]], NOW)
    assert [get_task(table, ALICE, i).queue_position for i in ids] == [None, 0, 1, 2]


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
        get_task(InMemoryJobTable(), ALICE, task_id)
    with pytest.raises(TaskNotFound):
        get_result(InMemoryJobTable(), ALICE, task_id)


def test_result_of_a_pending_task_is_a_conflict_with_its_status() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    task_id = submit(table, queue)
    with pytest.raises(ResultNotReady) as raised:
        get_result(table, ALICE, task_id)
    assert raised.value.extra == {"status": "pending"}


def test_result_of_a_failed_task_is_a_conflict_with_its_error() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    task_id = submit(table, queue)
    table.abandon(task_id, "gave up", NOW)
    with pytest.raises(ResultNotReady) as raised:
        get_result(table, ALICE, task_id)
    assert raised.value.extra == {"status": "failed", "error": "gave up"}


def test_result_can_be_read_many_times() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    task_id = submit(table, queue)
    job = table.claim(table.jobs[task_id], NOW)
    table.finish(job, JobStatus.COMPLETED, NOW, result="cba", error=None)
    assert {get_result(table, ALICE, task_id).result for _ in range(3)} == {"cba"}


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
        noted = self.table.note_interrupted(first, "attempt 1 interrupted: throttled")
        second = self.table.claim(noted, NOW)  # redelivered after the interruption
        with pytest.raises(StaleTransition):
            self.table.finish(first, JobStatus.COMPLETED, NOW, result="late", error=None)
        assert self.table.finish(second, JobStatus.COMPLETED, NOW, result="x").attempt == 2

    def test_a_job_cut_off_without_a_note_cannot_be_claimed_again(self) -> None:
        crashed = self.table.claim(self.table.jobs[self.task_id], NOW)
        with pytest.raises(StaleTransition):
            self.table.claim(crashed, NOW)

    def test_a_finished_job_cannot_be_abandoned(self) -> None:
        job = self.table.claim(self.table.jobs[self.task_id], NOW)
        self.table.finish(job, JobStatus.COMPLETED, NOW, result="x", error=None)
        with pytest.raises(StaleTransition):
            self.table.abandon(self.task_id, "late", NOW)


# --- ownership ---------------------------------------------------------------------------------


def test_the_job_records_its_owner() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    assert table.jobs[submit(table, queue)].owner == ALICE.id


def test_another_users_job_is_not_found_not_forbidden() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    task_id = submit(table, queue)
    with pytest.raises(TaskNotFound):
        get_task(table, BOB, task_id)
    with pytest.raises(TaskNotFound):
        get_result(table, BOB, task_id)


def test_an_admin_sees_every_job() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    task_id = submit(table, queue)
    assert get_task(table, ADMIN, task_id).task_id == task_id


# --- quota -------------------------------------------------------------------------------------


def test_the_quota_admits_exactly_max_pending_jobs() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    for _ in range(3):
        submit(table, queue, max_pending=3)
    with pytest.raises(PendingQuotaExceeded) as raised:
        submit(table, queue, max_pending=3)
    assert "3" in raised.value.detail
    assert len(table.jobs) == 3
    assert len(queue.sent) == 3


def test_the_quota_is_per_user() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    submit(table, queue, max_pending=1)
    submit(table, queue, owner=BOB.id, max_pending=1)
    assert table.pending_count(ALICE.id) == table.pending_count(BOB.id) == 1


def test_a_started_job_frees_its_place_in_the_quota() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    first = submit(table, queue, max_pending=1)
    table.claim(table.jobs[first], NOW)
    submit(table, queue, max_pending=1)
    assert table.pending_count(ALICE.id) == 1


def test_a_job_that_could_not_be_queued_leaves_the_quota() -> None:
    table = InMemoryJobTable()
    with pytest.raises(Unavailable):
        submit(table, InMemoryJobQueue(fail=True), max_pending=1)
    assert table.pending_count(ALICE.id) == 0
    submit(table, InMemoryJobQueue(), max_pending=1)
