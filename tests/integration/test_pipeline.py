"""The task pipeline end to end on moto: real handlers, real v2 and SQS events."""

import dataclasses
import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from infra.local.invoke import Outcome
from ordo.jobs import JobStatus
from ordo.kinds import JobFailed, Registry
from ordo.tasks import TRANSFORMS, TaskType
from ordo.worker import CRASHED
from tests.harness import InProcessStack


def submit(cloud: InProcessStack, task_type: str, data: str) -> str:
    response = cloud.request("POST", "/tasks", {"type": task_type, "data": data})
    assert response.status == 202, response.body
    return str(response.body["task_id"])


def result_of(cloud: InProcessStack, task_id: str) -> str:
    response = cloud.request("GET", f"/tasks/{task_id}/result")
    assert response.status == 200, response.body
    return str(response.body["result"])


def finished_order(cloud: InProcessStack, ids: list[str]) -> list[str]:
    views = [cloud.request("GET", f"/tasks/{task_id}").body for task_id in ids]
    return [view["task_id"] for view in sorted(views, key=lambda v: v["finished_at"])]


def test_submit_returns_202_with_location(cloud: InProcessStack) -> None:
    response = cloud.request("POST", "/tasks", {"type": "swap_pairs", "data": "abcdef"})
    assert response.status == 202
    assert set(response.body) == {"task_id", "type", "status", "created_at"}
    assert response.body["status"] == "pending"
    assert response.headers["location"] == f"/tasks/{response.body['task_id']}"


def test_fifty_mixed_tasks_run_in_acceptance_order_with_correct_results(
    cloud: InProcessStack,
) -> None:
    rng = random.Random(7)
    kinds = list(TaskType)
    submitted = []
    for n in range(50):
        kind = rng.choice(kinds)
        data = "".join(rng.choice("abcжё😀 ") for _ in range(rng.randint(0, 12))) + str(n)
        submitted.append((submit(cloud, kind, data), kind, data))
    ids = [task_id for task_id, _, _ in submitted]
    positions = [cloud.request("GET", f"/tasks/{i}").body["queue_position"] for i in ids]
    assert positions == list(range(50))

    cloud.drain()

    for task_id, kind, data in submitted:
        assert result_of(cloud, task_id) == TRANSFORMS[kind](data)
    assert finished_order(cloud, ids) == ids


def test_status_moves_through_the_states(cloud: InProcessStack) -> None:
    task_id = submit(cloud, "reverse", "abc")
    view = cloud.request("GET", f"/tasks/{task_id}").body
    assert view["status"] == "pending"
    assert view["started_at"] is None
    cloud.drain()
    view = cloud.request("GET", f"/tasks/{task_id}").body
    assert view["status"] == "completed"
    assert view["queue_position"] is None
    assert view["created_at"] <= view["started_at"] <= view["finished_at"]


def test_result_before_completion_is_409_with_status(cloud: InProcessStack) -> None:
    task_id = submit(cloud, "reverse", "abc")
    response = cloud.request("GET", f"/tasks/{task_id}/result")
    assert response.status == 409
    assert response.body["status"] == "pending"
    assert response.body["detail"]


def test_result_can_be_read_many_times(cloud: InProcessStack) -> None:
    task_id = submit(cloud, "repeat_by_position", "abc")
    cloud.drain()
    assert [result_of(cloud, task_id) for _ in range(3)] == ["abbccc"] * 3


@pytest.mark.parametrize("path", ["/tasks/{id}", "/tasks/{id}/result"])
@pytest.mark.parametrize("task_id", ["0" * 32, "nope", "a.b-c", "A" * 32, "%00"])
def test_unknown_or_malformed_id_is_404(cloud: InProcessStack, path: str, task_id: str) -> None:
    response = cloud.request("GET", path.format(id=task_id))
    assert (response.status, response.body) == (404, {"detail": "Task not found"})


def test_path_traversal_is_404_with_detail(cloud: InProcessStack) -> None:
    response = cloud.request("GET", "/tasks/..%2F..%2Fetc%2Fpasswd")
    assert response.status == 404
    assert response.body["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"type": "shout", "data": "x"},
        {"type": "reverse"},
        {"type": "reverse", "data": 7},
        {"type": "repeat_by_position", "data": "x" * 301},
    ],
)
def test_invalid_submissions_are_422_with_a_readable_detail(
    cloud: InProcessStack, body: dict[str, object]
) -> None:
    response = cloud.request("POST", "/tasks", body)
    assert response.status == 422
    assert isinstance(response.body["detail"], str)
    assert cloud.queue_depth() == 0


def test_over_limit_detail_names_the_limit(cloud: InProcessStack) -> None:
    response = cloud.request("POST", "/tasks", {"type": "repeat_by_position", "data": "x" * 301})
    assert "at most 300" in response.body["detail"]


@pytest.mark.parametrize("body", ["{not json", "", "[]", "null"])
def test_malformed_json_is_422(cloud: InProcessStack, body: str) -> None:
    response = cloud.request(
        "POST", "/tasks", body=body, headers={"content-type": "application/json"}
    )
    assert response.status == 422
    assert isinstance(response.body["detail"], str)


def test_two_identical_submissions_are_two_jobs_and_both_run(cloud: InProcessStack) -> None:
    first = submit(cloud, "reverse", "same")
    second = submit(cloud, "reverse", "same")
    assert first != second
    cloud.drain()
    assert result_of(cloud, first) == result_of(cloud, second) == "emas"


def redeliver(cloud: InProcessStack, task_id: str, receive_count: int) -> dict[str, object]:
    """A Lambda SQS event carrying the job's message again, as SQS redelivery does."""
    _, arn = cloud.queue_of("WorkerFunction")
    from infra.local.events import sqs_event

    message = {
        "MessageId": f"redelivery-{receive_count}",
        "ReceiptHandle": "handle",
        "Body": json.dumps({"job_id": task_id}),
        "Attributes": {"ApproximateReceiveCount": str(receive_count)},
    }
    return cloud.invoke("WorkerFunction", sqs_event([message], arn))  # type: ignore[no-any-return]


def test_redelivered_message_for_completed_job_is_acknowledged(cloud: InProcessStack) -> None:
    task_id = submit(cloud, "reverse", "abc")
    cloud.drain()
    finished = cloud.request("GET", f"/tasks/{task_id}").body["finished_at"]
    assert redeliver(cloud, task_id, receive_count=2) == {"batchItemFailures": []}
    assert result_of(cloud, task_id) == "cba"
    assert cloud.request("GET", f"/tasks/{task_id}").body["finished_at"] == finished


class Crash(BaseException):
    """Ends an invocation the way a killed Lambda does: nothing in ordo can catch it."""


def replace_runner(
    cloud: InProcessStack, monkeypatch: pytest.MonkeyPatch, kind: str, run: Callable[..., str]
) -> None:
    """The worker's registry, with ``kind``'s runner swapped: a fault injected in-process."""
    worker = cloud.module("WorkerFunction").worker
    kinds = [k if k.name != kind else dataclasses.replace(k, run=run) for k in worker.kinds]
    monkeypatch.setattr(worker, "kinds", Registry(*kinds))


def test_a_crash_mid_job_fails_that_job_on_redelivery_and_the_lane_moves_on(
    cloud: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a worker that dies (as a killed process does) after running the first job
    first = submit(cloud, "reverse", "crash")
    second = submit(cloud, "reverse", "after")
    table = cloud.module("WorkerFunction").worker.table
    real_finish = table.finish
    crashes = iter([Crash()])

    def dying(*args: Any, **kwargs: Any) -> Any:
        for crash in crashes:
            raise crash
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(table, "finish", dying)
    delivery = cloud.event_source().poll_once()
    # The invocation ends as a killed process's does: an error, its whole batch handed back
    assert delivery is not None
    assert delivery.result.outcome is Outcome.ERROR
    assert delivery.result.error == "Runtime.ExitError: tests.integration.test_pipeline.Crash"
    assert delivery.handed_back == delivery.message_ids
    assert cloud.request("GET", f"/tasks/{first}").body["status"] == "processing"
    # When the visibility timeout passes and its message comes back
    cloud.expire()
    cloud.drain()
    # Then that job ends failed, not run again (it may crash again), and the next one runs
    view = cloud.request("GET", f"/tasks/{first}").body
    assert view["status"] == "failed"
    assert view["error"] == CRASHED
    assert result_of(cloud, second) == "retfa"
    assert cloud.dead_letters() == []


@pytest.mark.parametrize("error", [ZeroDivisionError, RecursionError, MemoryError, KeyError])
def test_a_runner_error_of_any_type_fails_its_job_at_once_and_the_next_job_runs(
    cloud: InProcessStack, monkeypatch: pytest.MonkeyPatch, error: type[BaseException]
) -> None:
    poison = submit(cloud, "swap_pairs", "poison")
    after = submit(cloud, "reverse", "after")

    def broken(payload: Any, ctx: Any) -> str:
        raise error("internals the user must not see")

    replace_runner(cloud, monkeypatch, "swap_pairs", broken)
    assert cloud.poll_once() == []  # nothing handed back: the job failed, its message is done
    cloud.drain()
    view = cloud.request("GET", f"/tasks/{poison}").body
    assert view["status"] == JobStatus.FAILED
    assert view["error"] == f"the swap_pairs runner failed ({error.__name__}); not retried"
    response = cloud.request("GET", f"/tasks/{poison}/result")
    assert (response.status, response.body["error"]) == (409, view["error"])
    assert result_of(cloud, after) == "retfa"
    assert cloud.module("WorkerFunction").worker.table.get(poison).attempt == 1
    assert cloud.dead_letters() == []


class Unforeseen(BaseException):
    """Defined here, so no code in ordo can name it."""


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() of this error fails too")

    __repr__ = __str__


class UnprintableRefusal(JobFailed):
    def __str__(self) -> str:
        raise RuntimeError("str() of this refusal fails too")


def _raise(error: BaseException) -> Callable[..., str]:
    def run(payload: Any, ctx: Any) -> str:
        raise error

    return run


# Failures injected by what the runner does, not chosen from a list the worker knows.
SURPRISES: dict[str, Callable[..., str]] = {
    "an exception class nobody defined before": _raise(Unforeseen()),
    "an error whose str() raises": _raise(Unprintable()),
    "a refusal whose str() raises": _raise(UnprintableRefusal("x")),
    "a result too large for a DynamoDB item": lambda payload, ctx: "x" * 500_000,
    "a result DynamoDB cannot store": lambda payload, ctx: "\ud800",
}


@pytest.mark.parametrize("surprise", list(SURPRISES))
def test_a_runner_failure_nobody_anticipated_ends_its_job_and_the_next_job_runs(
    cloud: InProcessStack, monkeypatch: pytest.MonkeyPatch, surprise: str
) -> None:
    poison = submit(cloud, "swap_pairs", "poison")
    after = submit(cloud, "reverse", "after")
    replace_runner(cloud, monkeypatch, "swap_pairs", SURPRISES[surprise])
    cloud.drain()
    view = cloud.request("GET", f"/tasks/{poison}").body
    assert view["status"] == JobStatus.FAILED
    assert view["error"]
    assert result_of(cloud, after) == "retfa"
    for status in ("pending", "processing"):
        assert cloud.module("WorkerFunction").worker.table.count_by_status(JobStatus(status)) == 0
    assert cloud.dead_letters() == []


def throttle(client: Any, operation: str, times: int) -> list[str]:
    """Refuse the next ``times`` calls of ``operation`` with DynamoDB's ThrottlingException,
    through botocore's event hooks. In-process, moto answers from a ``before-send`` handler too,
    so ours raises (stopping the call before moto sees it) rather than returning a response."""
    from botocore.exceptions import ClientError

    seen: list[str] = []

    def refuse(**_: Any) -> None:
        seen.append(operation)
        if len(seen) <= times:
            response: Any = {
                "Error": {"Code": "ThrottlingException", "Message": "Rate of requests exceeded"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
            raise ClientError(response, operation)

    client.meta.events.register_first(f"before-send.dynamodb.{operation}", refuse)
    return seen


@pytest.mark.parametrize("operation", ["GetItem", "TransactWriteItems", "UpdateItem"])
def test_throttling_on_the_workers_calls_is_retried_in_place_and_the_job_completes_once(
    cloud: InProcessStack, operation: str
) -> None:
    task_id = submit(cloud, "reverse", "abc")
    from ordo import aws

    seen = throttle(aws.dynamodb(), operation, times=3)
    failed = cloud.poll_once()
    assert failed == []  # retried inside the invocation, not handed back
    assert len(seen) >= 4
    view = cloud.request("GET", f"/tasks/{task_id}").body
    assert view["status"] == "completed"
    assert result_of(cloud, task_id) == "cba"
    job = cloud.module("WorkerFunction").worker.table.get(task_id)
    assert job.attempt == 1


def test_an_unparseable_message_is_acknowledged_and_the_lane_moves_on(
    cloud: InProcessStack,
) -> None:
    url, _ = cloud.queue_of("WorkerFunction")
    cloud.sqs.send_message(
        QueueUrl=url, MessageBody="garbage", MessageGroupId="jobs", MessageDeduplicationId="g1"
    )
    task_id = submit(cloud, "reverse", "ok")
    cloud.drain()
    assert result_of(cloud, task_id) == "ko"
    assert cloud.queue_depth() == 0
    assert cloud.dead_letters() == []


def test_a_message_for_an_unknown_job_is_acknowledged(cloud: InProcessStack) -> None:
    url, _ = cloud.queue_of("WorkerFunction")
    body = json.dumps({"job_id": "f" * 32})
    cloud.sqs.send_message(
        QueueUrl=url, MessageBody=body, MessageGroupId="jobs", MessageDeduplicationId="u1"
    )
    cloud.drain()
    assert cloud.queue_depth() == 0
