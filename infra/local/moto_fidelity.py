"""Corrections to moto where it differs from AWS in ways ordo depends on.

- SQS FIFO ``SequenceNumber``: AWS assigns a large number that only grows within a message
  group; moto draws 20 random digits. ordo orders queue positions by it, so it must grow.
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
    _applied = True
