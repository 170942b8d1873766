"""Nothing is ever stranded: the DLQ consumer and the reconciler through their real handlers, on
the stack made from template.yaml (moto)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from infra.local.schedule_rules import scheduled_event
from ordo.clock import utcnow
from ordo.jobs import Job, JobStatus, JobTable, new_job_id
from ordo.queue import SqsJobQueue
from ordo.recovery import NEVER_QUEUED, SUBMIT_WINDOW, WORKER_GONE
from tests.harness import InProcessStack

RULE = "arn:aws:events:us-east-1:123456789012:rule/ordo-ReconcilerFunctionReconcile"
# Well past ORDO_RECONCILE_PENDING_MINUTES (15) and any job's run.
LONG_AGO = timedelta(hours=1)


def table() -> JobTable:
    from ordo.wiring import job_table  # after the fixture has set the environment

    return job_table()


def owner_of(cloud: InProcessStack) -> str:
    return str(cloud.request("GET", "/auth/me").body["id"])


def submit(cloud: InProcessStack, text: str) -> str:
    response = cloud.request("POST", "/tasks", {"type": "reverse", "data": text})
    assert response.status == 202, response.body
    return str(response.body["task_id"])


def written_but_never_sent(cloud: InProcessStack, created_at: datetime) -> Job:
    """What a submit leaves when it is killed between writing the job and sending its message."""
    job = Job(
        job_id=new_job_id(),
        owner=owner_of(cloud),
        kind="reverse",
        data=json.dumps({"kind": "reverse", "text": "lost"}),
        created_at=created_at,
        updated_at=created_at,
    )
    table().create(job, max_pending=100)
    return job


def reconcile(cloud: InProcessStack) -> dict[str, Any]:
    event = scheduled_event(RULE, "us-east-1", "123456789012", utcnow())
    report: dict[str, Any] = cloud.invoke("ReconcilerFunction", event)
    return report


def pending_jobs_of(cloud: InProcessStack, owner: str) -> int:
    """Counted from the jobs themselves, through the status index (not the quota counter)."""
    page = table().by_status(JobStatus.PENDING, limit=1000)
    return sum(1 for summary in page.items if summary.owner == owner)


def assert_quota_matches(cloud: InProcessStack) -> None:
    owner = owner_of(cloud)
    assert table().pending_count(owner) == pending_jobs_of(cloud, owner)


# --- the reconciler --------------------------------------------------------------------------


def test_a_submit_killed_between_put_and_send_is_ended_by_the_reconciler(
    cloud: InProcessStack,
) -> None:
    # Given a job written an hour ago whose message was never sent, and a recent job waiting
    lost = written_but_never_sent(cloud, utcnow() - LONG_AGO)
    submit(cloud, "recent")
    assert table().pending_count(owner_of(cloud)) == 2
    # And the lane emptied by the worker
    cloud.drain()
    # When the scheduled reconciler runs
    report = reconcile(cloud)
    # Then the lost job is failed with the reason, and the owner's quota counts no job
    job = table().get(lost.job_id)
    assert job is not None
    assert (job.status, job.error) == (JobStatus.FAILED, NEVER_QUEUED)
    assert job.expires_at is not None
    assert (report["pending_ended"], report["job_ids"]) == (1, [lost.job_id])
    assert table().pending_count(owner_of(cloud)) == 0
    assert_quota_matches(cloud)
    # And a client sees why
    view = cloud.request("GET", f"/tasks/{lost.job_id}").body
    assert (view["status"], view["error"]) == ("failed", NEVER_QUEUED)


def test_a_later_job_already_run_proves_the_message_lost_behind_a_busy_lane(
    cloud: InProcessStack,
) -> None:
    # Given a lost job, a later job the worker has run, and a job still waiting on the lane
    lost = written_but_never_sent(cloud, utcnow() - LONG_AGO)
    submit(cloud, "ran")
    cloud.poll_once()
    waiting = submit(cloud, "waiting")
    assert cloud.queue_depth() == 1
    # When the reconciler runs
    report = reconcile(cloud)
    # Then the lost job is ended; the waiting one is not, and runs
    assert report["job_ids"] == [lost.job_id]
    assert_quota_matches(cloud)
    cloud.drain()
    assert cloud.request("GET", f"/tasks/{waiting}/result").body["result"] == "gnitiaw"


def test_an_old_pending_job_whose_message_is_on_the_lane_is_left_to_run(
    cloud: InProcessStack,
) -> None:
    # Given a job pending for an hour whose message is on the lane (a long backlog)
    old = written_but_never_sent(cloud, utcnow() - LONG_AGO)
    SqsJobQueue(cloud.sqs, cloud.stack.queue_url("JobsQueue")).send(old)
    # When the reconciler runs
    report = reconcile(cloud)
    # Then it is left alone, and reported as waiting
    assert (report["job_ids"], report["oldest_waiting"]) == ([], old.job_id)
    assert cloud.request("GET", f"/tasks/{old.job_id}").body["status"] == "pending"
    # And the worker runs it when its message comes round
    cloud.drain()
    assert cloud.request("GET", f"/tasks/{old.job_id}/result").body["result"] == "tsol"
    assert_quota_matches(cloud)


def test_a_job_whose_worker_died_mid_run_is_ended_by_the_reconciler(cloud: InProcessStack) -> None:
    # Given a job claimed an hour ago by a worker that never finished it, its message gone
    job = written_but_never_sent(cloud, utcnow() - LONG_AGO)
    table().claim(job, utcnow() - LONG_AGO + timedelta(seconds=1))
    # When the reconciler runs
    report = reconcile(cloud)
    # Then it is failed
    ended = table().get(job.job_id)
    assert ended is not None
    assert (ended.status, ended.error) == (JobStatus.FAILED, WORKER_GONE)
    assert report["processing_ended"] == 1
    assert_quota_matches(cloud)


def test_running_the_reconciler_again_ends_nothing(cloud: InProcessStack) -> None:
    written_but_never_sent(cloud, utcnow() - LONG_AGO)
    reconcile(cloud)

    again = reconcile(cloud)

    assert (again["job_ids"], again["moved_on"]) == ([], 0)


def _may_send_to_the_lane(stack: Any, function: str) -> bool:
    """Whether the function's role grants ``sqs:SendMessage`` on the lane."""
    role = stack.resources[stack.resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]]
    for policy in role["Properties"].get("Policies", []):
        statements = policy["PolicyDocument"]["Statement"]
        for statement in statements if isinstance(statements, list) else [statements]:
            actions = statement["Action"]
            resources = statement["Resource"]
            if "sqs:SendMessage" in (actions if isinstance(actions, list) else [actions]) and (
                {"Fn::GetAtt": ["JobsQueue", "Arn"]}
                in (resources if isinstance(resources, list) else [resources])
            ):
                return True
    return False


def test_every_function_that_sends_to_the_lane_ends_within_the_submit_window(
    cloud: InProcessStack,
) -> None:
    """The reconciler's proof that a message was lost assumes it is sent within SUBMIT_WINDOW
    of the job's creation, which the timeout of every function allowed to send bounds."""
    senders = {
        lid: fn.timeout
        for lid, fn in cloud.stack.functions().items()
        if _may_send_to_the_lane(cloud.stack, lid)
    }
    assert {"SubmitFunction", "DocumentsFunction", "FetchFunction", "AdminFunction"} <= set(senders)
    assert all(timeout < SUBMIT_WINDOW.total_seconds() for timeout in senders.values()), senders


# --- the dead-letter consumer ----------------------------------------------------------------


def fail_every_delivery(cloud: InProcessStack, times: int) -> None:
    """Receive the lane's head ``times`` times without deleting it, as a worker that keeps
    crashing would; the next receive moves it to the DLQ (the redrive policy)."""
    url, _ = cloud.queue_of("WorkerFunction")
    for _ in range(times):
        (message,) = cloud.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
        cloud.sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    assert cloud.sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_a_dead_lettered_message_ends_its_job_failed_and_releases_the_quota(
    cloud: InProcessStack,
) -> None:
    # Given a submitted job whose message SQS gave up on after 5 deliveries
    task_id = submit(cloud, "doomed")
    fail_every_delivery(cloud, 5)
    assert cloud.queue_depth("DeadLetterFunction") == 1
    # When the DLQ's event source delivers it to the consumer
    failed = cloud.poll_once("DeadLetterFunction")
    # Then it is acknowledged, and the job is failed with the reason and the message kept
    assert failed == []
    assert cloud.queue_depth("DeadLetterFunction") == 0
    job = table().get(task_id)
    assert job is not None
    assert (job.status, job.error) == (JobStatus.FAILED, "dead-lettered after 5 deliveries")
    assert job.dead_letter_body is not None
    assert json.loads(job.dead_letter_body) == {
        "job_id": task_id,
        "owner": owner_of(cloud),
        "kind": "reverse",
    }
    assert job.expires_at is not None
    assert table().pending_count(owner_of(cloud)) == 0
    assert_quota_matches(cloud)


def test_dead_letters_without_a_job_are_acknowledged_and_the_next_is_handled(
    cloud: InProcessStack,
) -> None:
    # Given on the DLQ: garbage, a pointer to no job, then a real job's message
    dlq = cloud.stack.queue_url("JobsDeadLetterQueue")
    task_id = submit(cloud, "next")
    for n, body in enumerate(
        ["garbage", json.dumps({"job_id": "f" * 32}), f'{{"job_id":"{task_id}"}}']
    ):
        cloud.sqs.send_message(
            QueueUrl=dlq, MessageBody=body, MessageGroupId="jobs", MessageDeduplicationId=f"d{n}"
        )
    # When the consumer gets the batch
    failed = cloud.poll_once("DeadLetterFunction")
    # Then nothing is left in flight, and the real job is ended
    assert failed == []
    assert cloud.queue_depth("DeadLetterFunction") == 0
    assert cloud.request("GET", f"/tasks/{task_id}").body["status"] == "failed"
    assert_quota_matches(cloud)
