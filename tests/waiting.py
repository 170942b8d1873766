"""One way to wait for something in a test: poll a probe until it holds, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable


def eventually[T](probe: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
    """Call ``probe`` until it returns something truthy, and return that.

    After ``timeout`` seconds it returns the last (falsy) value, so the caller's ``assert`` says
    what did not happen: ``assert eventually(lambda: job(id)["status"] == "completed")``.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
