"""moto, as the tests and the local cloud run it (``infra.local.moto_fidelity``), keeps the
AWS rules ordo depends on: each patch's test shows moto without it (undone) breaking its rule,
and moto with it keeping the rule."""

import copy
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from infra.local import moto_fidelity
from infra.local.moto_fidelity import Patch, Patches
from ordo.errors import OrdoError
from ordo.jobs import Job, PendingQuotaExceeded, new_job_id
from ordo.storage.jobs import DynamoJobTable
from tests.harness import InProcessStack

OWNER = "b" * 32


def test_racing_submissions_never_pass_the_quota(anonymous_cloud: InProcessStack) -> None:
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


def test_a_cancelled_transaction_leaves_nothing_behind(anonymous_cloud: InProcessStack) -> None:
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
    anonymous_cloud: InProcessStack,
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
    anonymous_cloud: InProcessStack,
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


# --- the registry: each patch undone, then applied again ---------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def test_every_patch_names_its_rule_and_a_test_that_exists() -> None:
    for name, patch in moto_fidelity.PATCHES.items():
        path, _, test = patch.test.partition("::")
        assert patch.rule, name
        assert f"def {test}(" in (ROOT / path).read_text(), name


def test_a_patch_is_undone_to_what_the_object_held() -> None:
    class Base:
        value = "base"

    class Own(Base):
        value = "own"

    class Inherits(Base):
        pass

    patches = Patches()
    patches.add(Own, "value", "new")
    patches.add(Inherits, "value", "new")
    patches.apply()
    patches.apply()  # applied once only
    assert (Own.value, Inherits.value) == ("new", "new")
    patches.undo()
    assert (Own.value, Inherits.value) == ("own", "base")
    assert "value" not in vars(Inherits)  # inherited again, not copied
    single = Patch(Own, "value", "other")
    single.undo()  # not applied: nothing to put back
    assert Own.value == "own"


def test_undone_puts_moto_back_and_applies_the_patch_again() -> None:
    from moto.sqs.models import SQSBackend

    patched = SQSBackend.change_message_visibility
    with moto_fidelity.undone("visibility_zero", "visibility_changes", "message_signals"):
        assert "visibility_zero" not in moto_fidelity.applied()
        assert SQSBackend.change_message_visibility is not patched
    assert {"visibility_zero", "visibility_changes"} <= set(moto_fidelity.applied())
    assert SQSBackend.change_message_visibility is not patched  # a fresh wrapper


# --- sequence_numbers ------------------------------------------------------------------------


def _sequence_numbers_in_queue_order(stack: InProcessStack, count: int) -> list[int]:
    sqs, url = stack.sqs, stack.stack.queue_url("JobsQueue")
    numbers = {}
    for n in range(count):
        body = f"{uuid.uuid4()}-{n}"
        response = sqs.send_message(
            QueueUrl=url, MessageBody=body, MessageGroupId="lane", MessageDeduplicationId=body
        )
        numbers[body] = int(response["SequenceNumber"])
    ordered: list[int] = []
    while len(ordered) < count:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        assert messages, "the queue ran dry"
        for message in messages:
            ordered.append(numbers[message["Body"]])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return ordered


def test_sequence_numbers_grow_only_with_the_patch(anonymous_cloud: InProcessStack) -> None:
    """AWS: SequenceNumber grows with the message's place in its group."""
    with moto_fidelity.undone("sequence_numbers"):
        unpatched = _sequence_numbers_in_queue_order(anonymous_cloud, 20)
    assert unpatched != sorted(unpatched)  # moto draws them at random
    patched = _sequence_numbers_in_queue_order(anonymous_cloud, 20)
    assert patched == sorted(patched)


# --- visibility_zero and visibility_changes ------------------------------------------------


@pytest.fixture
def moto_sqs_clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """moto's SQS clock (epoch milliseconds), standing still until the test moves it."""
    import moto.sqs.models

    now = [int(time.time() * 1000)]
    monkeypatch.setattr(moto.sqs.models, "unix_time_millis", lambda: now[0])
    return now


def _handed_back_in_one_millisecond(stack: InProcessStack, now: list[int]) -> list[str]:
    """Three messages of one group received together; the first deleted and the other two
    handed back with ChangeMessageVisibility(0), all within one millisecond of moto's clock.
    Returns the next receive's bodies, a millisecond later."""
    sqs: Any = stack.sqs
    url = stack.stack.queue_url("JobsQueue")
    tag = uuid.uuid4().hex[:8]
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": body, "MessageBody": f"{tag}-{body}", "MessageGroupId": f"g-{tag}"}
            | {"MessageDeduplicationId": f"{tag}-{body}"}
            for body in ("first", "second", "third")
        ],
    )
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in received] == [f"{tag}-first", f"{tag}-second", f"{tag}-third"]
    first, *rest = received
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    for message in rest:
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    now[0] += 1
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for message in again:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    now[0] += 3_600_000  # whatever is left in flight comes back, and is drained
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return [message["Body"].removeprefix(f"{tag}-") for message in again]


def test_messages_handed_back_with_visibility_0_come_back_in_order(
    anonymous_cloud: InProcessStack, moto_sqs_clock: list[int]
) -> None:
    """AWS: ChangeMessageVisibility(0) makes the message visible at once; its FIFO group is
    free once no other message of it is in flight, and delivers in order."""
    with moto_fidelity.undone("visibility_zero"):
        unpatched = _handed_back_in_one_millisecond(anonymous_cloud, moto_sqs_clock)
    assert unpatched != ["second", "third"]  # moto skips "second", still "in flight"
    assert _handed_back_in_one_millisecond(anonymous_cloud, moto_sqs_clock) == [
        "second",
        "third",
    ]


def test_visibility_changes_are_recorded(anonymous_cloud: InProcessStack) -> None:
    """What the local event source mapping needs to honour a function's visibility change."""
    sqs, url = anonymous_cloud.sqs, anonymous_cloud.stack.queue_url("JobsQueue")
    queue_name = url.rsplit("/", 1)[1]
    sqs.send_message(
        QueueUrl=url, MessageBody="m", MessageGroupId="v", MessageDeduplicationId=str(uuid.uuid4())
    )
    [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    changes = moto_fidelity.visibility_changes
    mark = changes.mark()
    with moto_fidelity.undone("visibility_changes"):
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=5
        )
    assert changes.since(mark, queue_name, [message["MessageId"]]) == {}
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=7
    )
    recorded = changes.since(mark, queue_name, [message["MessageId"]])
    assert recorded[message["MessageId"]].seconds == 7
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


# --- transaction_rollback and dynamodb_isolation -------------------------------------------


def _key(name: str) -> dict[str, Any]:
    return {"pk": {"S": f"FIDELITY#{name}"}, "sk": {"S": "-"}}


def _cancelled_put(stack: InProcessStack, name: str) -> None:
    """A transaction that puts ``name`` and is then cancelled by a failed ConditionCheck."""
    table = stack.stack.physical["JobsTable"]["Ref"]
    with pytest.raises(stack.dynamodb.exceptions.TransactionCanceledException):
        stack.dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": _key(name)}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": _key("missing"),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    assert "Item" not in stack.dynamodb.get_item(TableName=table, Key=_key(name))


def test_a_transaction_copies_no_table(
    anonymous_cloud: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction's cost follows its items, not its tables' size; a cancelled one still
    leaves nothing behind."""
    from moto.dynamodb.models.table import Table

    copied: list[Any] = []
    deepcopy = copy.deepcopy

    def counting(value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table):
            copied.append(value)
        return deepcopy(value, memo)

    monkeypatch.setattr(copy, "deepcopy", counting)
    with moto_fidelity.undone("dynamodb_isolation", "transaction_rollback"):
        _cancelled_put(anonymous_cloud, "unpatched")
    assert copied  # moto copied the whole table
    copied.clear()
    _cancelled_put(anonymous_cloud, "patched")
    assert copied == []


def _write_during_a_cancelled_transaction(stack: InProcessStack, *, isolated: bool) -> int:
    """A transaction adds 1 to a counter and is cancelled; while it is paused between the two,
    another client adds 1 to the same counter. Returns the counter afterwards."""
    from moto.dynamodb import models as dynamodb_models

    models: Any = dynamodb_models  # its get_filter_expression, imported by name, is paused
    dynamodb: Any = stack.dynamodb
    table = stack.stack.physical["JobsTable"]["Ref"]
    counter = _key("counter")
    dynamodb.put_item(TableName=table, Item=counter | {"n": {"N": "0"}})
    paused, resume = threading.Event(), threading.Event()
    original = models.get_filter_expression

    def pausing(expression: Any, *args: Any) -> Any:
        if expression == "attribute_exists(#paused)":
            paused.set()
            resume.wait(timeout=30)
        return original(expression, *args)

    add_one: dict[str, Any] = {
        "UpdateExpression": "ADD n :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }

    def transaction() -> None:
        with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
            dynamodb.transact_write_items(
                TransactItems=[
                    {"Update": {"TableName": table, "Key": counter} | add_one},
                    {
                        "ConditionCheck": {
                            "TableName": table,
                            "Key": _key("missing"),
                            "ConditionExpression": "attribute_exists(#paused)",
                            "ExpressionAttributeNames": {"#paused": "paused"},
                        }
                    },
                ]
            )

    models.get_filter_expression = pausing
    try:
        with ThreadPoolExecutor(2) as pool:
            cancelled = pool.submit(transaction)
            assert paused.wait(timeout=30)
            written = pool.submit(
                lambda: dynamodb.update_item(TableName=table, Key=counter, **add_one)
            )
            # Without isolation the write lands at once; with it, it waits for the transaction.
            done = threading.Event()
            written.add_done_callback(lambda _: done.set())
            assert done.wait(timeout=30 if not isolated else 0.5) is not isolated
            resume.set()
            cancelled.result(timeout=30)
            written.result(timeout=30)
    finally:
        models.get_filter_expression = original
    item = dynamodb.get_item(TableName=table, Key=counter, ConsistentRead=True)["Item"]
    return int(item["n"]["N"])


def test_a_write_during_a_cancelled_transaction_is_not_lost(
    anonymous_cloud: InProcessStack,
) -> None:
    """AWS: transactions are isolated; a write made while a transaction runs is never undone
    by the transaction's cancellation."""
    with moto_fidelity.undone("dynamodb_isolation"):
        assert _write_during_a_cancelled_transaction(anonymous_cloud, isolated=False) == 0
    assert _write_during_a_cancelled_transaction(anonymous_cloud, isolated=True) == 1
