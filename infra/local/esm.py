"""Lambda's SQS event source mapping, played against moto for the local cloud.

What it does, as Lambda does (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html):

* polls the queue and hands at most ``BatchSize`` messages to the function in one synchronous
  invocation, one batch at a time (a FIFO lane with reserved concurrency 1);
* on success deletes the batch; with ``ReportBatchItemFailures`` deletes every record except
  those listed in ``batchItemFailures``. An empty or null response or list means total success;
  an unknown, empty or missing ``itemIdentifier``, or a response that is not an object, fails
  the whole batch (services-sqs-errorhandling, "Success and failure conditions");
* on an error or a timeout deletes nothing: the batch comes back once the queue's visibility
  timeout, counted from the receive, has passed, and SQS moves a message to the DLQ when its
  receive count exceeds the redrive policy's ``maxReceiveCount`` (moto does this on receive);
* on a throttle keeps the batch and retries the invocation with backoff, without receiving it
  again (so the receive count does not grow), until the visibility timeout has passed; then it
  lets the batch go back to the queue. AWS: "If the invocation fails due to throttling, Lambda
  gradually backs off retries ... Lambda continues to retry the message until the message's
  timestamp exceeds your queue's visibility timeout, at which point Lambda drops the message"
  (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html).

The visibility timeout is measured on the :class:`LocalClock`, so tests can advance past it.
moto's own timer is kept out of the way: a failed batch is hidden for the rest of its visibility
timeout plus a margin, and made visible again with ``ChangeMessageVisibility(0)``, message by
message in order, once it is due. (When several messages of one FIFO group become visible by
moto's timer, moto redelivers them out of order; ``ChangeMessageVisibility(0)`` does not.)

Visibility the function changed: Lambda deletes the records that succeeded and leaves the
failed ones as they are, so a failed message becomes visible when its own visibility timeout
ends. The function may have set that itself while it ran, with ``ChangeMessageVisibility`` or
``ChangeMessageVisibilityBatch`` on the receipt handles of its batch: typically
``VisibilityTimeout=0``, to hand unfinished messages back at once. SQS counts the new timeout
from that call ("the 10 seconds begin to count from the time that you make the
ChangeMessageVisibility call",
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html),
and 0 makes the message visible again at once. So a failed message whose visibility changed
during the invocation comes back the requested seconds after the change, on the
:class:`LocalClock` (at once for 0); one that nobody touched waits out the queue's visibility
timeout as above. A FIFO group still stays locked while any other message of it is in flight,
so a message handed back behind a failed one that waits out its timeout waits with it. The
changes are those moto recorded (``moto_fidelity.visibility_changes``, which needs moto in this
process, as the local cloud runs it) between the start and the end of the invocation, so the
mapping's own hide and show calls never count. A change made after the invocation has returned
is not honoured: the mapping has already hidden the message until its due time.

Learning of new messages: when moto runs in this process (the local cloud), the mapping is
given ``moto_fidelity.message_signals``, on which moto announces every message sent, made
visible again with ``ChangeMessageVisibility(0)`` or deleted (which may free its FIFO group).
Holding nothing back, ``run`` then short-polls (``WaitTimeSeconds=0``) and, if that found
nothing, waits for the queue's next announcement (at most ``LONG_POLL`` seconds, for messages
that moto's own visibility timer brings back): a message sent to an idle queue is received at
once, and no request waits inside moto. The local cloud also serves the mapping's SQS client in
its own thread (``motoserver.InProcess``: moto's app, the same request and response, no socket),
so a receive never waits for a server thread while moto serves a function's calls, and it
gives the mapping ``motoserver.InProcessReceive`` for its short polls: moto's backend answers
them directly, with the messages the API would return, without moto's request parsing and
response serialising and botocore's on the other side. Against
another endpoint there are no announcements, and ``run`` long-polls (``WaitTimeSeconds=1``)
instead; moto answers a long poll as soon as a message is sent. But moto's long poll spins a
CPU core for the whole wait while the only visible messages belong to FIFO groups still in
flight, which is the state of a lane waiting out a failed batch. So, either way, while the
mapping holds failed or throttled messages, and for a while after an empty receive from a queue
with visible messages (someone else holds a group), it short-polls with a 50 ms pause instead.
``poll_once`` short-polls unless told otherwise. It is the whole of one step, and ``run`` only
repeats it: the integration tests call it themselves, step by step, instead of running the loop.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from infra.local import moto_fidelity
from infra.local.events import sqs_event
from infra.local.invoke import Invocation, Invoker, Outcome

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from infra.local.clock import LocalClock
    from infra.local.moto_fidelity import MessageSignals, VisibilityChanges
    from infra.local.stack import Function, Stack

log = logging.getLogger("ordo.local.esm")

IDLE_WAIT = 0.05  # seconds between short polls that found nothing to deliver
LONG_POLL = 1  # WaitTimeSeconds when nothing can make moto's long poll spin; the longest
# wait for an announcement (``MessageSignals``) before a poll
BLOCKED_RECHECK = 30.0  # seconds of short polling after a long poll found the queue blocked
ERROR_WAIT = 0.5  # seconds to pause the loop after an unexpected exception
VISIBILITY_MARGIN = 30  # seconds moto keeps a failed batch hidden beyond its due time
MAX_VISIBILITY = 43_200  # SQS's 12-hour ceiling on a message's visibility timeout
THROTTLE_FIRST_RETRY = 0.05  # seconds on the local clock; doubles per throttled attempt
THROTTLE_MAX_RETRY = 1.0
RECEIVE_MAX = 10  # ReceiveMessage's MaxNumberOfMessages limit


@dataclass
class EsmStats:
    """Counters of one mapping, for tests and the bench."""

    batches: int = 0  # invocations that ran (OK, ERROR or TIMEOUT)
    deleted: int = 0  # messages deleted after a success
    failed: int = 0  # messages handed back to the queue (failed, timed out or throttled out)
    throttled: int = 0  # invocation attempts refused with THROTTLED
    errors: int = 0  # unexpected exceptions the loop logged and survived


@dataclass(frozen=True)
class Delivery:
    """One invocation of the function with a batch: what it answered, and the ids of the
    messages it handed back (failed, errored or timed out; throttled: all, held for a retry)."""

    message_ids: list[str]
    result: Invocation
    handed_back: list[str]


@dataclass
class _Batch:
    """Messages received together, in their queue order."""

    messages: list[MessageTypeDef]
    due: float  # local clock time at which SQS would make them visible again
    attempts: int = 0
    retry_at: float = 0.0
    ids: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.ids = {m.get("MessageId", "") for m in self.messages}


class SqsEventSource:
    """One SQS event source mapping: a queue feeding one function."""

    def __init__(
        self,
        sqs: SQSClient,
        invoker: Invoker,
        function: str,
        queue_url: str,
        queue_arn: str,
        *,
        clock: LocalClock,
        batch_size: int = 10,
        report_batch_item_failures: bool = False,
        visibility_timeout: int | None = None,
        visibility_changes: VisibilityChanges | None = None,
        signals: MessageSignals | None = None,
        receive: Callable[[int], list[MessageTypeDef]] | None = None,
    ) -> None:
        self.sqs = sqs
        self.invoker = invoker
        self.function = function
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.queue_name = queue_arn.rsplit(":", 1)[-1]
        self.clock = clock
        self.batch_size = batch_size
        self.report_batch_item_failures = report_batch_item_failures
        if visibility_timeout is None:
            attributes = sqs.get_queue_attributes(
                QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"]
            )["Attributes"]
            visibility_timeout = int(attributes.get("VisibilityTimeout", "30"))
        self.visibility_timeout = visibility_timeout
        self.visibility_changes = visibility_changes or moto_fidelity.visibility_changes
        self.signals = signals  # moto's announcements, when moto runs in this process
        self.in_process_receive = receive  # moto's backend, when it runs in this process
        self.stats = EsmStats()
        self._awaiting: list[_Batch] = []  # failed, hidden until their due time
        self._held: _Batch | None = None  # throttled, being retried
        self._blocked_until = 0.0  # monotonic time until which long polls are avoided
        self._lock = threading.Lock()
        self._pause = threading.Event()  # set while someone holds the mapping (``paused``)

    @classmethod
    def from_stack(
        cls,
        stack: Stack,
        function: Function,
        sqs: SQSClient,
        invoker: Invoker,
        clock: LocalClock,
        *,
        signals: MessageSignals | None = None,
        receive: Callable[[int], list[MessageTypeDef]] | None = None,
    ) -> SqsEventSource:
        """The mapping the template declares for ``function``; ``signals`` and ``receive``
        (``motoserver.InProcessReceive``) only when moto serves ``sqs`` from this process."""
        queue = function.queue_logical_id
        if queue is None:
            raise ValueError(f"{function.logical_id} has no SQS event source")
        source = cls(
            sqs,
            invoker,
            function.logical_id,
            stack.queue_url(queue),
            stack.physical[queue]["Arn"],
            clock=clock,
            batch_size=function.batch_size,
            report_batch_item_failures=function.report_batch_item_failures,
            signals=signals,
            receive=receive,
        )
        if function.timeout > source.visibility_timeout:
            # Lambda refuses such a mapping; locally we warn and carry on.
            log.warning(
                "%s: timeout %ss exceeds %s's visibility timeout %ss",
                function.logical_id,
                function.timeout,
                queue,
                source.visibility_timeout,
            )
        return source

    @property
    def awaiting_visibility(self) -> int:
        """Messages this mapping holds back: failed and not yet due, or being retried."""
        held = len(self._held.messages) if self._held else 0
        return held + sum(len(batch.messages) for batch in self._awaiting)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the mapping between two polls, as disabling it would (for tests that line up
        several messages for one receive). Not reentrant, and for one caller at a time."""
        self._pause.set()  # ``run`` stops taking the lock, which is not fair to waiters
        try:
            with self._lock:
                yield
        finally:
            self._pause.clear()

    # --- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; never raises."""
        while not stop.is_set():
            if self._pause.is_set():
                stop.wait(IDLE_WAIT)
                continue
            seen = self.signals.seen(self.queue_name) if self.signals else 0
            wait = self.receive_wait_seconds
            try:
                delivered = self.poll_once(wait)
            except Exception:
                if stop.is_set():
                    return  # moto went away first at shutdown
                self.stats.errors += 1
                log.exception("%s: event source mapping failed; carrying on", self.function)
                stop.wait(ERROR_WAIT)
                continue
            if delivered is not None:
                continue
            if self.signals is not None and not self._holding_back:
                self.signals.wait(self.queue_name, seen, LONG_POLL, stop)
            elif not wait:
                self.clock.sleep(IDLE_WAIT, stop)

    def poll_once(self, wait_seconds: int = 0) -> Delivery | None:
        """One step: release what is due, then invoke one batch. None if it invoked nothing.

        ``wait_seconds`` is the ReceiveMessage long-poll wait, 0 for a short poll.
        """
        with self._lock:
            self._release_due()
            if self._held is not None:
                if self.clock.time() < self._held.retry_at:
                    return None
                return self._deliver(self._held)
            messages = self._receive(wait_seconds)
            if not messages:
                return None
            batch = _Batch(messages, due=self.clock.time() + self.visibility_timeout)
            return self._deliver(batch)

    @property
    def receive_wait_seconds(self) -> int:
        """The ReceiveMessage wait ``run`` uses next: a long poll only when none can spin, and
        never when moto announces its messages."""
        return 0 if self.signals is not None or self._holding_back else LONG_POLL

    @property
    def _holding_back(self) -> bool:
        """Failed or throttled messages held, or the queue found blocked a moment ago."""
        return (
            self._held is not None or bool(self._awaiting) or time.monotonic() < self._blocked_until
        )

    # --- steps ---------------------------------------------------------------------------

    def _receive(self, wait_seconds: int) -> list[MessageTypeDef]:
        messages: list[MessageTypeDef] = []
        while len(messages) < self.batch_size:
            wanted = min(RECEIVE_MAX, self.batch_size - len(messages))
            wait = 0 if messages else wait_seconds
            if self.in_process_receive is not None and not wait:
                got = self.in_process_receive(wanted)
            else:
                got = self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=wanted,
                    WaitTimeSeconds=wait,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            messages.extend(got)
            if len(got) < wanted:
                break
        if not messages and (wait_seconds or self.signals) and self._visible_messages():
            # Visible yet not received: their groups are in flight elsewhere.
            self._blocked_until = time.monotonic() + BLOCKED_RECHECK
        return messages

    def _visible_messages(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", "0"))

    def _deliver(self, batch: _Batch) -> Delivery:
        batch.attempts += 1
        mark = self.visibility_changes.mark()
        result = self._invoke(batch)
        ids = [m.get("MessageId", "") for m in batch.messages]
        if result.outcome is Outcome.THROTTLED:
            self.stats.throttled += 1
            if self._held is None:
                self._held = batch
                self._hide(batch)
            delay = min(THROTTLE_FIRST_RETRY * 2 ** (batch.attempts - 1), THROTTLE_MAX_RETRY)
            batch.retry_at = self.clock.time() + delay
            return Delivery(ids, result, handed_back=ids)
        self._held = None
        self.stats.batches += 1
        failed = self._failed_ids(result, batch)
        done = [m for m in batch.messages if m.get("MessageId") not in failed]
        self._delete(done)
        if failed:
            if result.outcome is not Outcome.OK:
                log.info("%s: batch failed (%s): %s", self.function, result.outcome, result.error)
            kept = [m for m in batch.messages if m.get("MessageId") in failed]
            self._hand_back(kept, batch.due, mark)
            self.stats.failed += len(kept)  # after: a reader of the count sees them held back
        return Delivery(ids, result, handed_back=[i for i in ids if i in failed])

    def _hand_back(self, messages: list[MessageTypeDef], due: float, mark: int) -> None:
        """Failed ``messages`` go back to the queue when SQS makes them visible: at ``due`` (the
        queue's visibility timeout after the receive), or when the visibility the function
        gave them after ``mark`` ends."""
        changes = self.visibility_changes.since(
            mark, self.queue_name, (m.get("MessageId", "") for m in messages)
        )
        now = self.clock.time()
        offset = now - time.time()  # how far the local clock has been advanced
        visible: list[MessageTypeDef] = []
        runs: list[tuple[float, list[MessageTypeDef]]] = []  # in order, by due time
        for message in messages:
            change = changes.get(message.get("MessageId", ""))
            when = due if change is None else change.at + offset + change.seconds
            if when <= now:
                visible.append(message)
            elif runs and runs[-1][0] == when:
                runs[-1][1].append(message)
            else:
                runs.append((when, [message]))
        for when, run in runs:
            batch = _Batch(run, due=when)
            self._hide(batch)
            self._awaiting.append(batch)
        # Already visible if the function asked for 0; made visible again, in order, all the
        # same: moto may still count a message in flight whose own timer has fired.
        self._show(visible)

    def _invoke(self, batch: _Batch) -> Invocation:
        event = sqs_event(batch.messages, self.queue_arn)
        try:
            return self.invoker.invoke(self.function, event)
        except Exception as exc:
            log.exception("%s: invoker raised", self.function)
            return Invocation(Outcome.ERROR, error=repr(exc))

    def _failed_ids(self, result: Invocation, batch: _Batch) -> set[str]:
        """The message ids of ``batch`` that go back to the queue."""
        if result.outcome is not Outcome.OK:
            return set(batch.ids)
        if not self.report_batch_item_failures:
            return set()
        failed = _reported_failures(result.payload, batch.ids)
        if failed is None:
            log.warning("%s: invalid batchItemFailures response; batch failed", self.function)
            return set(batch.ids)
        return failed

    def _release_due(self) -> None:
        """Failed batches whose visibility timeout has passed become visible again."""
        now = self.clock.time()
        held = self._held
        if held is not None and held.due <= now:
            # Throttled for the whole visibility timeout: Lambda drops the batch.
            self._held = None
            self.stats.failed += len(held.messages)
            log.warning("%s: throttled until the visibility timeout passed", self.function)
            self._show(held.messages)
        due = [batch for batch in self._awaiting if batch.due <= now]
        if not due:
            return
        self._awaiting = [batch for batch in self._awaiting if batch.due > now]
        for batch in due:
            self._show(batch.messages)

    # --- SQS calls -----------------------------------------------------------------------

    def _delete(self, messages: list[MessageTypeDef]) -> None:
        for start in range(0, len(messages), RECEIVE_MAX):
            chunk = messages[start : start + RECEIVE_MAX]
            response = self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m.get("ReceiptHandle", "")}
                    for n, m in enumerate(chunk)
                ],
            )
            self.stats.deleted += len(response.get("Successful", []))
            for failure in response.get("Failed", []):
                log.warning("%s: delete failed: %s", self.function, failure.get("Message"))

    def _hide(self, batch: _Batch) -> None:
        """Keep moto's visibility timer from firing before ``batch`` is due on the clock."""
        remaining = max(0.0, batch.due - self.clock.time())
        now_ms = time.time() * 1000
        for message in batch.messages:
            sent_ms = float(message.get("Attributes", {}).get("SentTimestamp", now_ms))
            ceiling = MAX_VISIBILITY - math.ceil((now_ms - sent_ms) / 1000) - 1
            seconds = max(0, min(math.ceil(remaining) + VISIBILITY_MARGIN, ceiling))
            self._change_visibility(message, seconds)

    def _show(self, messages: list[MessageTypeDef]) -> None:
        """Make ``messages`` visible again now, in their order."""
        for message in messages:
            self._change_visibility(message, 0)

    def _change_visibility(self, message: MessageTypeDef, seconds: int) -> None:
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=message.get("ReceiptHandle", ""),
                VisibilityTimeout=seconds,
            )
        except Exception:  # e.g. deleted meanwhile: nothing left to show or hide
            log.warning(
                "%s: could not change visibility of %s",
                self.function,
                message.get("MessageId"),
                exc_info=True,
            )


def _reported_failures(payload: Any, ids: set[str]) -> set[str] | None:
    """The ids a ``batchItemFailures`` response names, or None when it fails the batch."""
    if payload is None:
        return set()
    if not isinstance(payload, dict):
        return None
    items = payload.get("batchItemFailures")
    if items is None:
        return set()
    if not isinstance(items, list):
        return None
    failed: set[str] = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or not identifier or identifier not in ids:
            return None
        failed.add(identifier)
    return failed
