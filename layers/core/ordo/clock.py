"""Wall-clock time (``utcnow``), the ``Clock`` and ``Sleeper`` types that code takes so tests
can replace them, and ``scaled_sleep``. Not the only place ordo sleeps: retries and back-offs
(``ordo.retry``, ``ordo.storage``, ``ordo.source``) take a ``sleep`` of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
Sleeper = Callable[[float], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


def scaled_sleep(seconds: float, time_scale: float, sleep: Sleeper = time.sleep) -> None:
    """Sleep for a simulated duration, multiplied by ``ORDO_TIME_SCALE``."""
    if seconds * time_scale > 0:
        sleep(seconds * time_scale)
