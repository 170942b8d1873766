"""moto, as the tests and the local cloud run it (``infra.local.moto_fidelity``), keeps the
isolation DynamoDB guarantees to racing transactions."""

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from ordo.errors import OrdoError
from ordo.jobs import Job, PendingQuotaExceeded, new_job_id
from ordo.storage.dynamodb import DynamoJobTable
from tests.harness import Cloud

OWNER = "b" * 32


def test_racing_submissions_never_pass_the_quota(anonymous_cloud: Cloud) -> None:
    table = DynamoJobTable(
        anonymous_cloud.dynamodb, anonymous_cloud.stack.physical["JobsTable"]["Ref"]
    )
    threads = 20
    barrier = threading.Barrier(threads)

    def submit(_: int) -> str:
        job = Job(
            job_id=new_job_id(),
            owner=OWNER,
            kind="reverse",
            data="abc",
            created_at=datetime.now(UTC),
        )
        barrier.wait(timeout=30)
        try:
            table.create(job, 5)
        except PendingQuotaExceeded:
            return "refused"
        except OrdoError as exc:
            return f"error: {exc.detail}"
        return "accepted"

    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(submit, range(threads)))

    assert sorted(outcomes) == ["accepted"] * 5 + ["refused"] * 15
    assert table.pending_count(OWNER) == 5


def test_a_cancelled_transaction_leaves_nothing_behind(anonymous_cloud: Cloud) -> None:
    """All or nothing: a registration whose email is taken writes neither the user nor the
    username claim, though moto writes each action before it checks the next."""
    from ordo.accounts import EmailTaken
    from ordo.storage.accounts import DynamoUserTable
    from tests.fakes_accounts import make_user

    table_name = anonymous_cloud.stack.physical["JobsTable"]["Ref"]
    users = DynamoUserTable(anonymous_cloud.dynamodb, table_name)
    first = make_user("first")
    users.create(first)
    twin = make_user("second").model_copy(update={"email": first.email})
    with pytest.raises(EmailTaken):
        users.create(twin)

    items = anonymous_cloud.dynamodb.scan(TableName=table_name)["Items"]
    keys = sorted(item["pk"]["S"] for item in items)
    assert keys == sorted([f"USER#{first.id}", "USERNAME#first", f"EMAIL#{first.email}"])
    assert users.get(first.id) == first


def test_a_put_before_a_failed_condition_is_undone(
    anonymous_cloud: Cloud,
) -> None:
    table = DynamoJobTable(
        anonymous_cloud.dynamodb, anonymous_cloud.stack.physical["JobsTable"]["Ref"]
    )
    job = Job(
        job_id=new_job_id(),
        owner=OWNER,
        kind="reverse",
        data="a",
        created_at=datetime.now(UTC),
    )
    table.create(job, 1)
    stale = Job(
        job_id=new_job_id(),
        owner=OWNER,
        kind="reverse",
        data="b",
        created_at=datetime.now(UTC),
    )
    # The quota update is the second action: the job put before it must not stay.
    with pytest.raises(PendingQuotaExceeded):
        table.create(stale, 1)
    assert table.get(stale.job_id) is None
    assert table.pending_count(OWNER) == 1


def test_fifo_sequence_numbers_grow_in_the_order_messages_join_the_queue(
    anonymous_cloud: Cloud,
) -> None:
    # AWS: a message's SequenceNumber grows with its place in the group. ordo orders queue
    # positions by it, so racing senders must never get numbers out of the queue's order.
    sqs, url = anonymous_cloud.sqs, anonymous_cloud.stack.queue_url("JobsQueue")
    senders, each = 8, 40
    barrier = threading.Barrier(senders)

    def send(sender: int) -> list[tuple[str, str]]:
        barrier.wait(timeout=30)
        sent = []
        for n in range(each):
            body = f"{sender}-{n}"
            response = sqs.send_message(
                QueueUrl=url, MessageBody=body, MessageGroupId="lane", MessageDeduplicationId=body
            )
            sent.append((body, response["SequenceNumber"]))
        return sent

    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often: a window in moto's send is hit
    try:
        with ThreadPoolExecutor(senders) as pool:
            numbers = dict(pair for batch in pool.map(send, range(senders)) for pair in batch)
    finally:
        sys.setswitchinterval(switching)
    received: list[str] = []
    while len(received) < senders * each:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        assert messages, "the queue ran dry"
        for message in messages:
            received.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    in_queue_order = [int(numbers[body]) for body in received]
    assert in_queue_order == sorted(in_queue_order)
