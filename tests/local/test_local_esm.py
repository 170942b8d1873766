"""The local cloud's SQS event source mapping against moto, on a small fixture template.

A scripted fake function stands in for Lambda, so these tests check the mapping's AWS rules
only: batch size, FIFO order, partial batch responses, visibility timeout, DLQ, throttles.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.local import esm, moto_fidelity
from infra.local.clock import LocalClock
from infra.local.esm import Delivery, SqsEventSource
from infra.local.invoke import Invocation, Outcome
from infra.local.motoserver import InProcessReceive
from infra.local.stack import Stack
from tests.waiting import eventually

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Lane:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
      ContentBasedDeduplication: false
      VisibilityTimeout: 30
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt LaneDeadLetters.Arn
        maxReceiveCount: 2
  LaneDeadLetters:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: worker/
      Handler: app.handler
      Runtime: python3.12
      Timeout: 5
      ReservedConcurrentExecutions: 1
      Events:
        Lane:
          Type: SQS
          Properties:
            Queue: !GetAtt Lane.Arn
            BatchSize: 3
            FunctionResponseTypes: [ReportBatchItemFailures]
"""

VT = 30  # the fixture queue's VisibilityTimeout
OK = Invocation(Outcome.OK)
ERROR = Invocation(Outcome.ERROR, error="boom")
THROTTLED = Invocation(Outcome.THROTTLED, error="TooManyRequestsException")
Answer = Invocation | Callable[[dict[str, Any]], Invocation]


def fail(*bodies: str) -> Answer:
    """A partial batch response naming the records with these bodies."""

    def answer(event: dict[str, Any]) -> Invocation:
        ids = [r["messageId"] for r in event["Records"] if r["body"] in bodies]
        return Invocation(Outcome.OK, {"batchItemFailures": [{"itemIdentifier": i} for i in ids]})

    return answer


@dataclass
class ScriptedFunction:
    """An Invoker whose answers are scripted (OK when the script runs out); it records every
    event it is given."""

    script: deque[Answer] = field(default_factory=deque)
    events: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Invocation:
        assert logical_id == "Worker"
        self.events.append(event)
        answer = self.script.popleft() if self.script else OK
        return answer if isinstance(answer, Invocation) else answer(event)

    def bodies(self, n: int = -1) -> list[str]:
        return [record["body"] for record in self.events[n]["Records"]]

    def receive_counts(self, n: int = -1) -> list[str]:
        return [r["attributes"]["ApproximateReceiveCount"] for r in self.events[n]["Records"]]


@dataclass
class FifoQueueUnderTest:
    """The fixture's FIFO queue, its mapping and the scripted function it feeds."""

    stack: Stack
    sqs: Any
    clock: LocalClock
    function: ScriptedFunction
    esm: SqsEventSource

    def send(self, *bodies: str, group: str = "lane") -> None:
        for body in bodies:
            self.sqs.send_message(
                QueueUrl=self.stack.queue_url("Lane"),
                MessageBody=body,
                MessageGroupId=group,
                MessageDeduplicationId=body,
            )

    def depth(self, queue: str = "Lane") -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.stack.queue_url(queue),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def dead_letters(self) -> list[str]:
        messages = self.sqs.receive_message(
            QueueUrl=self.stack.queue_url("LaneDeadLetters"), MaxNumberOfMessages=10
        ).get("Messages", [])
        return [message["Body"] for message in messages]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    path: Path = tmp_path_factory.mktemp("esm") / "template.yaml"
    path.write_text(TEMPLATE)
    return Stack.load(name="fixture", path=path)


class StoppedClock(LocalClock):
    """A local clock that moves only when a test advances it, so "not yet, 1 s before its
    due time" holds however slow the machine is."""

    def __init__(self) -> None:
        super().__init__()
        self._start = time.time()

    def time(self) -> float:
        return self._start + self._offset


@pytest.fixture(params=["client", "in-process"])
def lane(stack: Stack, request: pytest.FixtureRequest) -> Iterator[FifoQueueUnderTest]:
    """The mapping receiving through its SQS client, and (as the local cloud runs it) straight
    from moto's backend in this process: every rule holds either way."""
    moto_fidelity.apply()
    with mock_aws():
        sqs = boto3.client("sqs")
        stack.provision(boto3.client("dynamodb"), sqs)
        clock, function = StoppedClock(), ScriptedFunction()
        worker = stack.functions()["Worker"]
        receive = None
        if request.param == "in-process":
            receive = InProcessReceive(stack.physical["Lane"]["Arn"])
        esm = SqsEventSource.from_stack(stack, worker, sqs, function, clock, receive=receive)
        yield FifoQueueUnderTest(stack, sqs, clock, function, esm)


def test_the_mapping_reads_the_template(lane: FifoQueueUnderTest) -> None:
    """The ESM takes BatchSize, ReportBatchItemFailures and the queue's VisibilityTimeout."""
    assert lane.esm.batch_size == 3
    assert lane.esm.report_batch_item_failures is True
    assert lane.esm.visibility_timeout == VT


def test_batch_size_is_honoured(lane: FifoQueueUnderTest) -> None:
    """Lambda invokes with at most BatchSize records per event."""
    lane.send("a", "b", "c", "d", "e")
    assert lane.esm.poll_once()
    assert lane.function.bodies() == ["a", "b", "c"]
    assert lane.esm.poll_once()
    assert lane.function.bodies() == ["d", "e"]
    assert not lane.esm.poll_once()
    assert lane.depth() == 0
    assert lane.esm.stats.batches == 2
    assert lane.esm.stats.deleted == 5


def test_records_are_real_sqs_event_records(lane: FifoQueueUnderTest) -> None:
    """Each record carries the SQS system attributes Lambda asks for (FIFO group, count)."""
    lane.send("a")
    lane.esm.poll_once()
    (record,) = lane.function.events[0]["Records"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == lane.stack.physical["Lane"]["Arn"]
    assert record["attributes"]["MessageGroupId"] == "lane"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"


def test_fifo_order_is_kept_across_batches(lane: FifoQueueUnderTest) -> None:
    """SQS FIFO delivers one message group in send order; Lambda keeps that order."""
    bodies = [f"m{n:02}" for n in range(10)]
    lane.send(*bodies)
    while lane.esm.poll_once():
        pass
    seen = [body for n in range(len(lane.function.events)) for body in lane.function.bodies(n)]
    assert seen == bodies


def test_a_failed_group_waits_while_other_groups_flow(lane: FifoQueueUnderTest) -> None:
    """SQS FIFO: a batch may mix message groups in order; a group with messages in flight is
    held back, while other groups keep being delivered."""
    lane.send("a1", group="A")
    lane.send("b1", group="B")
    lane.send("a2", group="A")
    lane.send("b2", group="B")
    lane.function.script.append(fail("a1", "a2"))
    assert lane.esm.poll_once()
    assert lane.function.bodies() == ["a1", "b1", "a2"]
    assert lane.esm.poll_once()
    assert lane.function.bodies() == ["b2"]
    assert not lane.esm.poll_once()
    lane.clock.advance(VT)
    assert lane.esm.poll_once()
    assert lane.function.bodies() == ["a1", "a2"]


def test_partial_batch_failure_deletes_only_successes(lane: FifoQueueUnderTest) -> None:
    """ReportBatchItemFailures: Lambda deletes every record not in batchItemFailures."""
    lane.send("a", "b", "c")
    lane.function.script.append(fail("b"))
    assert lane.esm.poll_once()
    assert lane.esm.stats.deleted == 2
    assert lane.esm.stats.failed == 1
    assert lane.depth() == 1  # only "b" is left, in flight
    assert not lane.esm.poll_once()


@pytest.mark.parametrize(
    "payload",
    [
        {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"messageId": "bad key name"}]},
        {"batchItemFailures": "not a list"},
        ["not", "an", "object"],
    ],
)
def test_an_invalid_batch_response_fails_the_whole_batch(
    lane: FifoQueueUnderTest, payload: Any
) -> None:
    """An unknown, empty, null or misnamed itemIdentifier, or a response that is not a batch
    response, fails the whole batch."""
    lane.send("a", "b")
    lane.function.script.append(Invocation(Outcome.OK, payload))
    lane.esm.poll_once()
    assert lane.esm.stats.deleted == 0
    assert lane.esm.stats.failed == 2


@pytest.mark.parametrize(
    "payload", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}]
)
def test_an_empty_batch_response_is_a_success(lane: FifoQueueUnderTest, payload: Any) -> None:
    """A null or empty response, or an empty or null batchItemFailures, is total success."""
    lane.send("a", "b")
    lane.function.script.append(Invocation(Outcome.OK, payload))
    lane.esm.poll_once()
    assert lane.esm.stats.deleted == 2
    assert lane.depth() == 0


def test_failed_messages_stay_invisible_until_the_visibility_timeout(
    lane: FifoQueueUnderTest,
) -> None:
    """A failed batch reappears only once the queue's VisibilityTimeout has passed, in FIFO
    order, with ApproximateReceiveCount 2; later messages of its group wait behind it."""
    lane.send("a", "b", "c", "d")
    lane.function.script.append(ERROR)
    assert lane.esm.poll_once()
    assert lane.function.bodies() == ["a", "b", "c"]

    lane.clock.advance(VT - 1)
    assert not lane.esm.poll_once()  # "d" waits behind its group's failed messages
    assert lane.esm.awaiting_visibility == 3

    lane.clock.advance(1)
    assert lane.esm.poll_once()
    assert lane.function.bodies() == ["a", "b", "c"]
    assert lane.function.receive_counts() == ["2", "2", "2"]
    assert lane.esm.poll_once()
    assert lane.function.bodies() == ["d"]
    assert lane.depth() == 0


def test_partial_failures_come_back_in_their_original_order(lane: FifoQueueUnderTest) -> None:
    """Only the reported records return after VisibilityTimeout, ahead of the rest of their
    group and in FIFO order (the FIFO convention: report the first failure and all after)."""
    lane.send("a", "b", "c", "d")
    lane.function.script.append(fail("b", "c"))
    assert lane.esm.poll_once()
    lane.clock.advance(VT)
    assert lane.esm.poll_once()
    assert lane.function.bodies() == ["b", "c", "d"]
    assert lane.function.receive_counts() == ["2", "2", "1"]


@pytest.mark.parametrize("outcome", [Outcome.ERROR, Outcome.TIMEOUT])
def test_an_error_or_timeout_fails_the_whole_batch(
    lane: FifoQueueUnderTest, outcome: Outcome
) -> None:
    """A function error or timeout deletes nothing, even with ReportBatchItemFailures: the
    whole batch comes back after VisibilityTimeout."""
    lane.send("a", "b", "c")
    lane.function.script.append(Invocation(outcome, error="boom"))
    lane.esm.poll_once()
    assert lane.esm.stats.deleted == 0
    assert lane.esm.stats.failed == 3
    assert lane.depth() == 3
    lane.clock.advance(VT)
    assert lane.esm.poll_once()
    assert lane.function.bodies() == ["a", "b", "c"]
    assert lane.depth() == 0


def test_a_failing_batch_moves_to_the_dlq_after_max_receive_count(lane: FifoQueueUnderTest) -> None:
    """SQS moves a message to the redrive policy's DLQ when its receive count would exceed
    maxReceiveCount (2): a batch that fails twice is not delivered a third time."""
    lane.send("a", "b")
    lane.function.script.extend([ERROR, ERROR])
    assert lane.esm.poll_once()
    lane.clock.advance(VT)
    assert lane.esm.poll_once()
    assert lane.function.receive_counts() == ["2", "2"]
    lane.clock.advance(VT)
    assert not lane.esm.poll_once()
    assert len(lane.function.events) == 2
    assert lane.depth() == 0
    assert lane.dead_letters() == ["a", "b"]


def test_a_poison_message_is_dead_lettered_and_the_lane_goes_on(lane: FifoQueueUnderTest) -> None:
    """Only the message that keeps failing reaches the DLQ; the next one of its group, held
    back until then, is delivered by the same receive."""
    lane.send("poison", "ok")
    lane.function.script.extend([fail("poison"), fail("poison")])
    assert lane.esm.poll_once()  # "ok" succeeds and is deleted
    lane.clock.advance(VT)
    assert lane.esm.poll_once()
    assert lane.function.bodies() == ["poison"]
    assert lane.function.receive_counts() == ["2"]
    lane.send("later")  # waits behind "poison"
    assert not lane.esm.poll_once()
    lane.clock.advance(VT)
    assert lane.esm.poll_once()
    assert lane.function.bodies() == ["later"]
    assert lane.function.receive_counts() == ["1"]
    assert lane.dead_letters() == ["poison"]


def test_a_throttled_batch_is_retried_without_a_new_receive(lane: FifoQueueUnderTest) -> None:
    """On throttling Lambda backs off and retries the batch it holds until the visibility
    timeout: the receive count does not grow."""
    lane.send("a", "b")
    lane.function.script.extend([THROTTLED, THROTTLED])
    assert lane.esm.poll_once()
    assert lane.esm.stats.throttled == 1
    assert not lane.esm.poll_once()  # backing off
    lane.clock.advance(1)
    assert lane.esm.poll_once()  # throttled again
    lane.clock.advance(1)
    assert lane.esm.poll_once()  # delivered
    assert lane.esm.stats.throttled == 2
    assert lane.esm.stats.batches == 1
    assert len(lane.function.events) == 3
    assert all(lane.function.receive_counts(n) == ["1", "1"] for n in range(3))
    assert lane.depth() == 0


def test_a_batch_throttled_past_the_visibility_timeout_returns_to_the_queue(
    lane: FifoQueueUnderTest,
) -> None:
    """Throttled until the visibility timeout, Lambda drops the batch: SQS delivers it again,
    in order, with its receive count grown."""
    lane.send("a", "b")
    lane.function.script.extend([THROTTLED, THROTTLED])
    assert lane.esm.poll_once()
    lane.clock.advance(VT - 1)
    assert lane.esm.poll_once()  # still throttled
    assert lane.depth() == 2
    lane.clock.advance(1)
    assert lane.esm.poll_once()
    assert lane.function.bodies() == ["a", "b"]
    assert lane.function.receive_counts() == ["2", "2"]
    assert lane.esm.stats.failed == 2
    assert lane.depth() == 0


def test_run_survives_errors_and_stops(
    lane: FifoQueueUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop logs and carries on after an exception, and ends when told to stop."""
    stop = threading.Event()
    calls: list[int] = []
    poll_once = lane.esm.poll_once

    def flaky(wait_seconds: int = 0) -> Delivery | None:
        calls.append(wait_seconds)
        if len(calls) == 1:
            raise RuntimeError("moto hiccup")
        stop.set()
        return poll_once()  # a short poll: nothing to wait for

    monkeypatch.setattr(esm, "ERROR_WAIT", 0.0)
    monkeypatch.setattr(lane.esm, "poll_once", flaky)
    lane.esm.run(stop)
    assert len(calls) == 2
    assert lane.esm.stats.errors == 1


def test_run_picks_up_each_message_sent_to_an_idle_queue(lane: FifoQueueUnderTest) -> None:
    """In a thread, the mapping delivers every message sent to its idle queue, one batch each,
    in order. (How fast: ``python -m bench.localcloud``, "mapping pickup".)"""

    def delivered(count: int) -> bool:
        return eventually(lambda: len(lane.function.events) >= count, interval=0.001)

    stop = threading.Event()
    thread = threading.Thread(target=lane.esm.run, args=(stop,), daemon=True)
    thread.start()
    try:
        for n in range(5):
            time.sleep(0.03)  # the mapping goes back to waiting on an empty queue
            lane.send(f"m{n}")
            assert delivered(n + 1), f"m{n} was never delivered"
    finally:
        stop.set()
        thread.join(timeout=5)  # a long poll may be under way
    assert not thread.is_alive()
    bodies = [lane.function.bodies(n) for n in range(len(lane.function.events))]
    assert bodies == [[f"m{n}"] for n in range(5)]


def test_long_polls_only_when_no_group_can_be_blocked(lane: FifoQueueUnderTest) -> None:
    """moto's long poll spins while visible messages wait behind in-flight FIFO groups, so the
    mapping long-polls only while it holds nothing back and nobody else blocks the queue."""
    assert lane.esm.receive_wait_seconds == 1
    lane.send("a", "b", "c", "d")
    lane.function.script.append(ERROR)
    lane.esm.poll_once()
    assert lane.esm.receive_wait_seconds == 0  # "d" is visible behind the failed batch
    lane.clock.advance(VT)
    lane.esm.poll_once()
    lane.esm.poll_once()
    assert lane.esm.receive_wait_seconds == 1

    lane.send("x", "y")
    held = lane.sqs.receive_message(QueueUrl=lane.stack.queue_url("Lane"), MaxNumberOfMessages=1)
    assert held["Messages"][0]["Body"] == "x"  # another consumer holds the group
    assert not lane.esm.poll_once(wait_seconds=1)  # the one long poll that finds it blocked
    assert lane.esm.receive_wait_seconds == 0


# --- visibility the function changes while it runs ------------------------------------------


def hand_back(lane: FifoQueueUnderTest, seconds: int, *bodies: str, fail_too: str = "") -> Answer:
    """A function that sets the visibility of the records with these bodies to ``seconds`` and
    reports them (and ``fail_too``, untouched) as failures."""

    def answer(event: dict[str, Any]) -> Invocation:
        handed = [r for r in event["Records"] if r["body"] in bodies]
        if handed:
            response = lane.sqs.change_message_visibility_batch(
                QueueUrl=lane.stack.queue_url("Lane"),
                Entries=[
                    {
                        "Id": str(n),
                        "ReceiptHandle": r["receiptHandle"],
                        "VisibilityTimeout": seconds,
                    }
                    for n, r in enumerate(handed)
                ],
            )
            assert not response.get("Failed"), response
        failed = [r["messageId"] for r in event["Records"] if r["body"] in {*bodies, fail_too}]
        return Invocation(
            Outcome.OK, {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
        )

    return answer


def test_records_handed_back_with_visibility_0_come_back_at_once(lane: FifoQueueUnderTest) -> None:
    """SQS ChangeMessageVisibility(0) makes a message visible at once and Lambda leaves failed
    records' visibility alone: the handed-back tail is delivered by the next poll, in order,
    with the clock standing still."""
    lane.send("a", "b", "c", "d")
    lane.function.script.append(hand_back(lane, 0, "b", "c"))
    assert lane.esm.poll_once()
    assert lane.esm.awaiting_visibility == 0
    assert lane.esm.stats.failed == 2
    assert lane.esm.poll_once()
    assert lane.function.bodies() == ["b", "c", "d"]
    assert lane.function.receive_counts() == ["2", "2", "1"]
    assert lane.depth() == 0


def test_records_handed_back_for_n_seconds_come_back_after_n_seconds(
    lane: FifoQueueUnderTest,
) -> None:
    """SQS ChangeMessageVisibility(N): the new timeout counts from the call, on the local clock,
    whatever the queue's VisibilityTimeout."""
    lane.send("a", "b", "c")
    lane.function.script.append(hand_back(lane, 10, "b", "c"))
    assert lane.esm.poll_once()
    assert lane.esm.awaiting_visibility == 2
    lane.clock.advance(9)
    assert not lane.esm.poll_once()
    lane.clock.advance(1)
    assert lane.esm.poll_once()
    assert lane.function.bodies() == ["b", "c"]
    assert lane.function.receive_counts() == ["2", "2"]


def test_a_group_stays_locked_behind_a_record_left_to_its_timeout(lane: FifoQueueUnderTest) -> None:
    """SQS FIFO: records handed back at once wait while an earlier record of their group is in
    flight until the queue's visibility timeout; then all return in order."""
    lane.send("a", "b", "c")
    lane.function.script.append(hand_back(lane, 0, "b", "c", fail_too="a"))
    assert lane.esm.poll_once()
    assert lane.esm.awaiting_visibility == 1
    assert not lane.esm.poll_once()
    lane.clock.advance(VT - 1)
    assert not lane.esm.poll_once()
    lane.clock.advance(1)
    assert lane.esm.poll_once()
    assert lane.function.bodies() == ["a", "b", "c"]
    assert lane.function.receive_counts() == ["2", "2", "2"]


def test_the_mappings_own_visibility_calls_are_not_the_functions(lane: FifoQueueUnderTest) -> None:
    """Only changes made during the invocation count: the mapping's own hiding of a throttled
    batch does not, so a batch failed after a throttle still waits out the visibility timeout
    counted from its receive."""
    lane.send("a", "b")
    lane.function.script.extend([THROTTLED, fail("a", "b")])
    assert lane.esm.poll_once()
    lane.clock.advance(1)
    assert lane.esm.poll_once()  # delivered; both fail untouched
    assert lane.esm.awaiting_visibility == 2
    lane.clock.advance(VT - 2)
    assert not lane.esm.poll_once()
    lane.clock.advance(1)
    assert lane.esm.poll_once()
    assert lane.function.bodies() == ["a", "b"]
    assert lane.function.receive_counts() == ["2", "2"]


def test_a_handed_back_record_past_max_receive_count_is_dead_lettered(
    lane: FifoQueueUnderTest,
) -> None:
    """SQS moves a message to the DLQ on the receive that would exceed maxReceiveCount (2),
    however it became visible."""
    lane.send("a")
    lane.function.script.extend([hand_back(lane, 0, "a"), hand_back(lane, 0, "a")])
    assert lane.esm.poll_once()
    assert lane.esm.poll_once()
    assert lane.function.receive_counts() == ["2"]
    assert not lane.esm.poll_once()
    assert lane.dead_letters() == ["a"]


# --- moto in this process announces its messages ---------------------------------------------


@dataclass
class WatchedSignals:
    """``moto_fidelity.message_signals``, telling the test when the mapping starts to wait."""

    waiting: threading.Event = field(default_factory=threading.Event)

    def seen(self, queue_name: str) -> int:
        return moto_fidelity.message_signals.seen(queue_name)

    def wait(
        self, queue_name: str, seen: int, timeout: float, stop: threading.Event | None = None
    ) -> bool:
        self.waiting.set()
        return moto_fidelity.message_signals.wait(queue_name, seen, timeout, stop)


def test_with_announcements_an_idle_mapping_waits_instead_of_polling(
    lane: FifoQueueUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Told of sends by moto, the mapping never long-polls, makes no receive while the queue is
    idle, and receives a sent message with its next call."""
    monkeypatch.setattr(esm, "LONG_POLL", 60)  # no timed wake-up can stand in for the signal
    signals = WatchedSignals()
    lane.esm.signals = signals  # type: ignore[assignment]
    waits: list[int] = []
    receive = lane.sqs.receive_message

    def counted(**kwargs: Any) -> Any:
        waits.append(kwargs["WaitTimeSeconds"])
        return receive(**kwargs)

    monkeypatch.setattr(lane.sqs, "receive_message", counted)
    in_process = lane.esm.in_process_receive
    if in_process is not None:

        def counted_in_process(count: int) -> Any:
            waits.append(0)
            return in_process(count)

        monkeypatch.setattr(lane.esm, "in_process_receive", counted_in_process)
    receives_at_invoke: list[int] = []

    def note_receives(_event: dict[str, Any]) -> Invocation:
        receives_at_invoke.append(len(waits))
        return OK

    lane.function.script.append(note_receives)
    stop = threading.Event()
    thread = threading.Thread(target=lane.esm.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert signals.waiting.wait(timeout=30)
        idle_receives = len(waits)
        lane.send("m")
        delivered = eventually(lambda: lane.function.events, timeout=30, interval=0.001)
        assert delivered, "the sent message was never delivered"
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert receives_at_invoke == [idle_receives + 1]
    assert set(waits) == {0}
    assert lane.function.bodies(0) == ["m"]


def test_with_announcements_a_blocked_queue_is_still_short_polled(lane: FifoQueueUnderTest) -> None:
    """A group held by another consumer frees without an announcement when its visibility
    timeout ends, so the mapping short-polls a queue it found blocked, as without them."""
    lane.esm.signals = moto_fidelity.message_signals
    assert lane.esm.receive_wait_seconds == 0
    lane.send("x", "y")
    held = lane.sqs.receive_message(QueueUrl=lane.stack.queue_url("Lane"), MaxNumberOfMessages=1)
    assert held["Messages"][0]["Body"] == "x"
    assert not lane.esm.poll_once()
    assert lane.esm._holding_back


def test_an_in_process_receive_answers_as_receive_message_does(stack: Stack) -> None:
    """The same message, received through the SQS API and then straight from moto's backend:
    every field and attribute alike, but the receipt handle and the receive count."""
    moto_fidelity.apply()
    with mock_aws():
        sqs = boto3.client("sqs")
        stack.provision(boto3.client("dynamodb"), sqs)
        url = stack.queue_url("Lane")
        receive = InProcessReceive(stack.physical["Lane"]["Arn"])
        assert receive(10) == []
        sqs.send_message(
            QueueUrl=url,
            MessageBody='{"job_id": "é"}',
            MessageGroupId="lane",
            MessageDeduplicationId="one",
            MessageAttributes={
                "text": {"DataType": "String", "StringValue": "value"},
                "count": {"DataType": "Number", "StringValue": "7"},
                "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
            },
            MessageSystemAttributes={
                "AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-5759e988-bd862e3f"}
            },
        )
        [through_api] = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )["Messages"]
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=through_api["ReceiptHandle"], VisibilityTimeout=0
        )
        [in_process] = receive(10)

    assert in_process["ReceiptHandle"] != through_api["ReceiptHandle"]
    assert in_process["Attributes"]["ApproximateReceiveCount"] == "2"
    for message in (through_api, in_process):
        del message["ReceiptHandle"], message["Attributes"]["ApproximateReceiveCount"]
    assert in_process == through_api
