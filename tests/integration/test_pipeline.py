"""The task pipeline end to end on moto: real handlers, real v2 and SQS events."""

import json
import random

import pytest

from ordo.jobs import JobStatus
from ordo.tasks import TASKS, TaskType
from tests.harness import Cloud


def submit(cloud: Cloud, task_type: str, data: str) -> str:
    response = cloud.request("POST", "/tasks", {"type": task_type, "data": data})
    assert response.status == 202, response.body
    return str(response.body["task_id"])


def result_of(cloud: Cloud, task_id: str) -> str:
    response = cloud.request("GET", f"/tasks/{task_id}/result")
    assert response.status == 200, response.body
    return str(response.body["result"])


def finished_order(cloud: Cloud, ids: list[str]) -> list[str]:
    views = [cloud.request("GET", f"/tasks/{task_id}").body for task_id in ids]
    return [view["task_id"] for view in sorted(views, key=lambda v: v["finished_at"])]


def test_submit_returns_202_with_location(cloud: Cloud) -> None:
    response = cloud.request("POST", "/tasks", {"type": "swap_pairs", "data": "abcdef"})
    assert response.status == 202
    assert set(response.body) == {"task_id", "type", "status", "created_at"}
    assert response.body["status"] == "pending"
    assert response.headers["location"] == f"/tasks/{response.body['task_id']}"


def test_fifty_mixed_tasks_run_in_acceptance_order_with_correct_results(cloud: Cloud) -> None:
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
        assert result_of(cloud, task_id) == TASKS[kind].run(data)
    assert finished_order(cloud, ids) == ids


def test_status_moves_through_the_states(cloud: Cloud) -> None:
    task_id = submit(cloud, "reverse", "abc")
    view = cloud.request("GET", f"/tasks/{task_id}").body
    assert view["status"] == "pending"
    assert view["started_at"] is None
    cloud.drain()
    view = cloud.request("GET", f"/tasks/{task_id}").body
    assert view["status"] == "completed"
    assert view["queue_position"] is None
    assert view["created_at"] <= view["started_at"] <= view["finished_at"]


def test_result_before_completion_is_409_with_status(cloud: Cloud) -> None:
    task_id = submit(cloud, "reverse", "abc")
    response = cloud.request("GET", f"/tasks/{task_id}/result")
    assert response.status == 409
    assert response.body["status"] == "pending"
    assert response.body["detail"]


def test_result_can_be_read_many_times(cloud: Cloud) -> None:
    task_id = submit(cloud, "repeat_by_position", "abc")
    cloud.drain()
    assert [result_of(cloud, task_id) for _ in range(3)] == ["abbccc"] * 3


@pytest.mark.parametrize("path", ["/tasks/{id}", "/tasks/{id}/result"])
@pytest.mark.parametrize("task_id", ["0" * 32, "nope", "a.b-c", "A" * 32, "%00"])
def test_unknown_or_malformed_id_is_404(cloud: Cloud, path: str, task_id: str) -> None:
    response = cloud.request("GET", path.format(id=task_id))
    assert (response.status, response.body) == (404, {"detail": "Task not found"})


def test_path_traversal_is_404_with_detail(cloud: Cloud) -> None:
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
    cloud: Cloud, body: dict[str, object]
) -> None:
    response = cloud.request("POST", "/tasks", body)
    assert response.status == 422
    assert isinstance(response.body["detail"], str)
    assert cloud.queue_depth() == 0


def test_over_limit_detail_names_the_limit(cloud: Cloud) -> None:
    response = cloud.request("POST", "/tasks", {"type": "repeat_by_position", "data": "x" * 301})
    assert "at most 300" in response.body["detail"]


@pytest.mark.parametrize("body", ["{not json", "", "[]", "null"])
def test_malformed_json_is_422(cloud: Cloud, body: str) -> None:
    response = cloud.request(
        "POST", "/tasks", body=body, headers={"content-type": "application/json"}
    )
    assert response.status == 422
    assert isinstance(response.body["detail"], str)


def test_two_identical_submissions_are_two_jobs_and_both_run(cloud: Cloud) -> None:
    first = submit(cloud, "reverse", "same")
    second = submit(cloud, "reverse", "same")
    assert first != second
    cloud.drain()
    assert result_of(cloud, first) == result_of(cloud, second) == "emas"


def redeliver(cloud: Cloud, task_id: str, receive_count: int) -> dict[str, object]:
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


def test_redelivered_message_for_completed_job_is_acknowledged(cloud: Cloud) -> None:
    task_id = submit(cloud, "reverse", "abc")
    cloud.drain()
    finished = cloud.request("GET", f"/tasks/{task_id}").body["finished_at"]
    assert redeliver(cloud, task_id, receive_count=2) == {"batchItemFailures": []}
    assert result_of(cloud, task_id) == "cba"
    assert cloud.request("GET", f"/tasks/{task_id}").body["finished_at"] == finished


class Crash(BaseException):
    """Ends an invocation the way a killed Lambda does: nothing in ordo can catch it."""


def test_crash_mid_job_runs_it_again_and_it_finishes_once(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a worker that dies while running the first job
    first = submit(cloud, "reverse", "crash")
    second = submit(cloud, "reverse", "after")
    lane = cloud.module("WorkerFunction").lane
    real_runner = lane.runner
    crashes = iter([Crash()])

    def dying(job, scale, sleep, report):  # type: ignore[no-untyped-def]
        for crash in crashes:
            raise crash
        return real_runner(job, scale, sleep, report)

    monkeypatch.setattr(lane, "runner", dying)
    with pytest.raises(Crash):
        cloud.poll_once()
    assert cloud.request("GET", f"/tasks/{first}").body["status"] == "processing"
    # When the visibility timeout passes and the batch comes back
    cloud.expire()
    cloud.drain()
    # Then both finish, in order, and the crashed one ran to completion once more
    assert result_of(cloud, first) == "hsarc"
    assert result_of(cloud, second) == "retfa"
    assert finished_order(cloud, [second, first]) == [first, second]


def test_partial_batch_failure_retries_the_failed_record_and_every_later_one(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [submit(cloud, "reverse", f"job{n}") for n in range(4)]
    lane = cloud.module("WorkerFunction").lane
    real_runner = lane.runner
    failures = {ids[1]: 1}

    def flaky(job, scale, sleep, report):  # type: ignore[no-untyped-def]
        if failures.get(job.job_id):
            failures[job.job_id] -= 1
            raise RuntimeError("throttled")
        return real_runner(job, scale, sleep, report)

    monkeypatch.setattr(lane, "runner", flaky)
    failed = cloud.poll_once()
    assert len(failed) == 3  # the failing record and the two after it
    states = [cloud.request("GET", f"/tasks/{i}").body["status"] for i in ids]
    assert states == ["completed", "processing", "pending", "pending"]
    cloud.expire()
    cloud.drain()
    assert [result_of(cloud, i) for i in ids] == [f"{n}boj" for n in range(4)]
    assert finished_order(cloud, ids) == ids


def test_job_failing_every_attempt_ends_failed_and_reaches_the_dlq_without_blocking(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison = submit(cloud, "reverse", "poison")
    after = submit(cloud, "reverse", "after")
    lane = cloud.module("WorkerFunction").lane
    real_runner = lane.runner

    def broken(job, scale, sleep, report):  # type: ignore[no-untyped-def]
        if job.job_id == poison:
            raise RuntimeError("always")
        return real_runner(job, scale, sleep, report)

    monkeypatch.setattr(lane, "runner", broken)
    cloud.drain()
    view = cloud.request("GET", f"/tasks/{poison}").body
    assert view["status"] == JobStatus.FAILED
    assert view["error"] == "failed after 5 attempts"
    response = cloud.request("GET", f"/tasks/{poison}/result")
    assert (response.status, response.body["error"]) == (409, "failed after 5 attempts")
    assert result_of(cloud, after) == "retfa"
    (dead,) = cloud.dead_letters()
    assert json.loads(dead["Body"]) == {"job_id": poison}


def test_unparseable_message_goes_to_the_dlq_and_the_lane_moves_on(cloud: Cloud) -> None:
    url, _ = cloud.queue_of("WorkerFunction")
    cloud.sqs.send_message(
        QueueUrl=url, MessageBody="garbage", MessageGroupId="jobs", MessageDeduplicationId="g1"
    )
    task_id = submit(cloud, "reverse", "ok")
    cloud.drain()
    assert result_of(cloud, task_id) == "ko"
    (dead,) = cloud.dead_letters()
    assert dead["Body"] == "garbage"
    assert dead["MessageAttributes"]["ordo-reason"]["StringValue"] == "unparseable message"


def test_message_for_an_unknown_job_goes_to_the_dlq(cloud: Cloud) -> None:
    url, _ = cloud.queue_of("WorkerFunction")
    body = json.dumps({"job_id": "f" * 32})
    cloud.sqs.send_message(
        QueueUrl=url, MessageBody=body, MessageGroupId="jobs", MessageDeduplicationId="u1"
    )
    cloud.drain()
    (dead,) = cloud.dead_letters()
    assert dead["MessageAttributes"]["ordo-reason"]["StringValue"] == "unknown job"
