"""Corrections to moto where it differs from AWS in ways ordo depends on.

- SQS FIFO ``SequenceNumber``: AWS assigns a large number that only grows within a message
  group; moto draws 20 random digits. ordo orders queue positions by it, so it must grow.
- DynamoDB isolation: moto checks a transaction's conditions and then writes, with nothing
  stopping another thread in between, so two racing transactions can both pass (two users
  claim one name; a quota admits one job too many). Every DynamoDB call is serialised here,
  which gives the isolation DynamoDB guarantees.
- DynamoDB transaction cost: moto deep-copies every table a transaction touches, so it slows
  down as the table grows. Only the touched items are kept, and put back on a cancellation.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

_applied = False


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
    _roll_back_touched_items_only()
    _serialise_dynamodb()
    _applied = True


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
