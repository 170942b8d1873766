"""Wall-clock time and simulated delays, the only place ordo sleeps."""

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
