import json
from datetime import UTC, datetime

import pytest

from ordo.jobs import Job, JobStatus, TaskRequest, submit_task
from ordo.observability import metrics
from ordo.tasks import TaskType
from ordo.worker import Delivery, JobFailed, Lane
from tests.fakes import InMemoryJobQueue, InMemoryJobTable, RecordingDeadLetters

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
OWNER = "0" * 32


class Boom(Exception):
    pass


def make_lane(**kwargs: object) -> tuple[Lane, InMemoryJobTable, RecordingDeadLetters]:
    table, dead = InMemoryJobTable(), RecordingDeadLetters()
    lane = Lane(table=table, dead_letters=dead, max_receive_count=3, time_scale=0, **kwargs)  # type: ignore[arg-type]
    return lane, table, dead


def submit(table: InMemoryJobTable, data: str = "abc") -> str:
    request = TaskRequest(type=TaskType.SWAP_PAIRS, data=data)
    return submit_task(
        table,
        InMemoryJobQueue(),
        request,
        owner=OWNER,
        now=NOW,
        retention_days=0,
        max_pending=1000,
    ).task_id


def deliver(job_id: str, receive_count: int = 1) -> Delivery:
    return Delivery(f"m-{job_id}-{receive_count}", json.dumps({"job_id": job_id}), receive_count)


def test_runs_the_task_and_stores_the_result() -> None:
    lane, table, _ = make_lane()
    job_id = submit(table)
    lane.handle(deliver(job_id))
    job = table.jobs[job_id]
    assert (job.status, job.result, job.attempt) == (JobStatus.COMPLETED, "bac", 1)
    assert job.started_at
    assert job.finished_at


def test_sleeps_the_scaled_delay() -> None:
    slept: list[float] = []
    lane, table, _ = make_lane(sleep=slept.append)
    lane.time_scale = 0.5
    lane.handle(deliver(submit(table)))
    assert slept == [2.5]


def test_redelivery_of_a_completed_job_does_not_run_it_again() -> None:
    runs: list[str] = []

    def runner(job: Job, scale: float, sleep: object, report: object) -> str:
        runs.append(job.job_id)
        return "once"

    lane, table, _ = make_lane(runner=runner)
    job_id = submit(table)
    lane.handle(deliver(job_id))
    lane.handle(deliver(job_id, receive_count=2))
    assert runs == [job_id]
    assert table.jobs[job_id].result == "once"


def test_job_left_processing_by_a_crash_runs_again_and_finishes_once() -> None:
    lane, table, _ = make_lane()
    job_id = submit(table)
    table.claim(table.jobs[job_id], NOW)  # the crashed invocation got this far
    lane.handle(deliver(job_id, receive_count=2))
    job = table.jobs[job_id]
    assert (job.status, job.attempt, job.result) == (JobStatus.COMPLETED, 2, "bac")


def test_transient_failure_raises_for_a_retry_and_keeps_the_job_processing() -> None:
    def runner(job: Job, scale: float, sleep: object, report: object) -> str:
        raise Boom

    lane, table, dead = make_lane(runner=runner)
    job_id = submit(table)
    metrics.clear_metrics()
    with pytest.raises(Boom):
        lane.handle(deliver(job_id, receive_count=1))
    job = table.jobs[job_id]
    assert (job.status, job.error) == (JobStatus.PROCESSING, "attempt 1 failed (Boom)")
    assert dead.forwarded == []
    assert metrics.metric_set["JobAttemptsFailed"]["Value"] == [1.0]
    metrics.clear_metrics()


def test_job_whose_attempts_raised_gets_a_real_final_attempt() -> None:
    attempts: list[int] = []

    def runner(job: Job, scale: float, sleep: object, report: object) -> str:
        attempts.append(job.attempt)
        if len(attempts) < 3:
            raise Boom
        return "third time lucky"

    lane, table, dead = make_lane(runner=runner)
    job_id = submit(table)
    for receive_count in (1, 2):
        with pytest.raises(Boom):
            lane.handle(deliver(job_id, receive_count))
    lane.handle(deliver(job_id, receive_count=3))
    job = table.jobs[job_id]
    assert (job.status, job.result, job.error) == (JobStatus.COMPLETED, "third time lucky", None)
    assert attempts == [1, 2, 3]
    assert dead.forwarded == []


def test_failure_on_the_final_attempt_fails_the_job_and_dead_letters_it() -> None:
    def runner(job: Job, scale: float, sleep: object, report: object) -> str:
        raise Boom("secret internals")

    lane, table, dead = make_lane(runner=runner)
    job_id = submit(table)
    lane.handle(deliver(job_id, receive_count=3))  # max_receive_count is 3
    job = table.jobs[job_id]
    assert job.status is JobStatus.FAILED
    assert job.error == "failed after 1 attempts"
    assert "secret" not in (job.error or "")
    assert [reason for _, _, reason in dead.forwarded] == ["failed on its final attempt: Boom"]


def test_job_that_crashed_every_time_is_given_up_on_the_final_delivery() -> None:
    lane, table, dead = make_lane()
    job_id = submit(table)
    job = table.claim(table.jobs[job_id], NOW)
    table.claim(job, NOW)
    lane.handle(deliver(job_id, receive_count=3))
    job = table.jobs[job_id]
    assert job.status is JobStatus.FAILED
    assert "did not finish in 2 attempts" in (job.error or "")
    assert len(dead.forwarded) == 1


def test_input_that_cannot_succeed_fails_at_once_without_retry() -> None:
    def runner(job: Job, scale: float, sleep: object, report: object) -> str:
        raise JobFailed("amount is not a number")

    lane, table, dead = make_lane(runner=runner)
    job_id = submit(table)
    lane.handle(deliver(job_id))
    job = table.jobs[job_id]
    assert (job.status, job.error) == (JobStatus.FAILED, "amount is not a number")
    assert dead.forwarded == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "unparseable message"),
        (json.dumps({"job": 1}), "unparseable message"),
        (json.dumps({"job_id": "../x"}), "unparseable message"),
        (json.dumps({"job_id": "a" * 32}), "unknown job"),
    ],
)
def test_poison_messages_are_dead_lettered_and_acknowledged(body: str, reason: str) -> None:
    lane, _, dead = make_lane()
    lane.handle(Delivery("m-1", body, 1))
    assert dead.forwarded == [("m-1", body, reason)]
