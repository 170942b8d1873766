"""Corrections to moto where it differs from AWS in ways ordo depends on.

- SQS FIFO ``SequenceNumber``: AWS assigns a large number that only grows within a message
  group; moto draws 20 random digits. ordo orders queue positions by it, so it must grow.
- DynamoDB isolation: moto checks a transaction's conditions and then writes, with nothing
  stopping another thread in between, so two racing transactions can both pass (two users
  claim one name; a quota admits one job too many). Every DynamoDB call is serialised here,
  which gives the isolation DynamoDB guarantees.
- DynamoDB transaction cost: moto deep-copies every table a transaction touches, so it slows
  down as the table grows. Only the touched items are kept, and put back on a cancellation.
- SQS ``ChangeMessageVisibility`` to 0: AWS makes the message visible at once, so its FIFO
  group is free as soon as no other message of the group is in flight. moto leaves the message
  among its in-flight ("pending") messages when the call lands in the same microsecond as its
  new visibility time, and then redelivers the group out of order; such a message is taken out
  of the pending set here.
- Every visibility change that succeeds (``ChangeMessageVisibility`` and each entry of
  ``ChangeMessageVisibilityBatch``, which moto answers through the former) is recorded in
  :data:`visibility_changes`, so the local event source mapping can honour a change that the
  function it invoked made to a message of its batch (see ``infra.local.esm``).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_applied = False


@dataclass(frozen=True)
class VisibilityChange:
    """One successful ``ChangeMessageVisibility`` of one message."""

    sequence: int  # grows with every change recorded in this process
    seconds: int  # the VisibilityTimeout asked for
    at: float  # wall-clock epoch seconds at which moto applied it


class VisibilityChanges:
    """The latest visibility change of each message, by (queue name, message id).

    Written by moto's request threads, read by the event source mappings' threads. A reader
    takes a :meth:`mark` before it invokes a function and asks for the changes made
    :meth:`since` that mark, so its own calls before and after never count. Only the newest
    ``limit`` messages are remembered: a mapping looks back no further than one invocation.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._sequence = 0
        self._changes: OrderedDict[tuple[str, str], VisibilityChange] = OrderedDict()

    def mark(self) -> int:
        """The sequence number of the latest change recorded so far."""
        with self._lock:
            return self._sequence

    def record(self, queue_name: str, message_id: str, seconds: int) -> None:
        with self._lock:
            self._sequence += 1
            key = (queue_name, message_id)
            self._changes[key] = VisibilityChange(self._sequence, seconds, time.time())
            self._changes.move_to_end(key)
            while len(self._changes) > self._limit:
                self._changes.popitem(last=False)

    def since(
        self, mark: int, queue_name: str, message_ids: Iterable[str]
    ) -> dict[str, VisibilityChange]:
        """The latest change of each of ``message_ids`` made after ``mark``, by message id."""
        with self._lock:
            found = {
                message_id: self._changes.get((queue_name, message_id))
                for message_id in message_ids
            }
        return {
            message_id: change
            for message_id, change in found.items()
            if change is not None and change.sequence > mark
        }


visibility_changes = VisibilityChanges()


def apply() -> None:
    """Patch the moto backend in this process (idempotent)."""
    global _applied  # noqa: PLW0603 - a process-wide patch, applied once
    if _applied:
        return
    from moto.sqs.models import SQSBackend

    original = SQSBackend.send_message
    counter = itertools.count(10**19)
    lock = threading.Lock()

    def send_message(self: SQSBackend, *args: Any, **kwargs: Any) -> Any:
        message = original(self, *args, **kwargs)
        if message.sequence_number is not None and not getattr(message, "ordo_ordered", False):
            with lock:
                message.sequence_number = str(next(counter))
            message.ordo_ordered = True  # type: ignore[attr-defined]
        return message

    SQSBackend.send_message = send_message  # type: ignore[method-assign]
    _record_visibility_changes()
    _roll_back_touched_items_only()
    _serialise_dynamodb()
    _applied = True


def _record_visibility_changes() -> None:
    from moto.sqs.models import SQSBackend

    original = SQSBackend.change_message_visibility

    def change_message_visibility(
        self: SQSBackend, queue_name: str, receipt_handle: str, visibility_timeout: int
    ) -> None:
        original(self, queue_name, receipt_handle, visibility_timeout)
        queue = self.get_queue(queue_name)
        message = next(
            (m for m in list(queue._messages) if m.had_receipt_handle(receipt_handle)), None
        )
        if message is None:  # deleted by another thread since
            return
        seconds = int(visibility_timeout)
        if seconds == 0:
            queue.pending_messages.discard(message)
        visibility_changes.record(queue_name, message.id, seconds)

    SQSBackend.change_message_visibility = change_message_visibility  # type: ignore[method-assign]


def _serialise_dynamodb() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in (
        "put_item",
        "get_item",
        "update_item",
        "delete_item",
        "query",
        "scan",
        "transact_write_items",
    ):
        original = getattr(DynamoDBBackend, name)

        def serialised(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        setattr(DynamoDBBackend, name, serialised)


def _roll_back_touched_items_only() -> None:
    """moto backs up every table a transaction touches with ``copy.deepcopy``, so a transaction
    costs time in proportion to the table's size (90 ms a job in the local cloud's lane). Keep a
    copy of the touched items instead, and put them back if the transaction is cancelled."""
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    class _TablesByReference:
        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    models.copy = _TablesByReference  # type: ignore[assignment,attr-defined]
    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        try:
            before = [_touched(self, item) for item in transact_items]
        except Exception:  # a malformed request: moto's own validation answers it
            before = []
        try:
            original(self, transact_items)
        except Exception:
            for table_name, key, attributes in reversed(before):
                if attributes is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attributes)
            raise

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _touched(backend: Any, item: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
    """(table, key, the item's attributes now, or None) for one action of a transaction."""
    op_type, op = next(iter(item.items()))
    table = backend.get_table(op["TableName"])
    if op_type == "Put":
        names = [table.hash_key_attr, table.range_key_attr]
        key = {name: op["Item"][name] for name in names if name}
    else:
        key = op["Key"]
    current = backend.get_item(op["TableName"], key)
    return op["TableName"], key, current.to_json()["Attributes"] if current else None
