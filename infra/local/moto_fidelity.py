"""Corrections to moto where it differs from AWS in ways ordo depends on.

- SQS FIFO ``SequenceNumber``: AWS assigns a large number that only grows within a message
  group; moto draws 20 random digits. ordo orders queue positions by it, so it must grow.
- DynamoDB isolation: moto checks a transaction's conditions and then writes, with nothing
  stopping another thread in between, so two racing transactions can both pass (two users
  claim one name; a quota admits one job too many). Every DynamoDB call is serialised here,
  which gives the isolation DynamoDB guarantees.
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
