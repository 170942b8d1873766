"""The local cloud's clock: wall time plus an offset that tests can advance.

Schedules, TTL and the SQS visibility timeout all read this clock, so a test can jump ahead
(``POST /_local/clock/advance``) instead of waiting. moto's own timers and a function's Timeout
run on real time. Each thread's sleeps on this clock are counted (:meth:`sleeps_begun`), so a
test can tell that a loop has gone round since it advanced the clock, instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class LocalClock:
    def __init__(self) -> None:
        self._offset = 0.0
        self._changed = threading.Condition()
        self._sleeps: dict[str, int] = {}  # by thread name: sleeps begun

    def time(self) -> float:
        """Epoch seconds on this clock."""
        return time.time() + self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        with self._changed:
            self._offset += seconds
            self._changed.notify_all()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> None:
        """Sleep until this clock has moved ``seconds`` on, waking early if it is advanced."""
        self.sleep_until(self.time() + seconds, stop)

    def sleep_until(self, deadline: float, stop: threading.Event | None = None) -> None:
        """Sleep until this clock reads ``deadline``: at once if an advance already passed it."""
        with self._changed:
            name = threading.current_thread().name
            self._sleeps[name] = self._sleeps.get(name, 0) + 1
            while (remaining := deadline - self.time()) > 0:
                if stop is not None and stop.is_set():
                    return
                self._changed.wait(timeout=min(remaining, 0.05))

    def sleeps_begun(self, thread_name: str) -> int:
        """How many sleeps the thread named ``thread_name`` has begun on this clock. Two more
        than before an advance: a loop that sleeps once a round has gone round since."""
        with self._changed:
            return self._sleeps.get(thread_name, 0)
