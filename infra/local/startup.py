"""The local cloud's start-up: what the first request needs, and the rest in the background.

The gateway serves once moto, the tables and the queues are up. The bootstrap (the steps of the
application's ``StackSetup``: for ordo, the token signing keys in SSM and the first admin's argon2
hash) follows in a background thread. Requests that could see the bootstrap's work wait for it
instead of failing wrongly: every request to a function the set-up names (ordo's: the one that
signs tokens), and every request that carries credentials (an ``authorization`` header or
cookies). An anonymous ``GET /health`` never waits.

The warming of every function comes after the bootstrap, in a thread of its own that no request
waits for: a function that fails to warm is logged, and starts on its first request instead.

Each phase's duration is kept for ``GET /_local/startup`` and logged at INFO.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from infra.local.invoke import Invocation, Invoker, Outcome

log = logging.getLogger("ordo.local")

Step = tuple[str, Callable[[], None]]


@dataclass
class Phases:
    """How long each start-up phase took, in order; ``started_at`` is the wall-clock start."""

    started_at: float = field(default_factory=time.time)
    durations_ms: dict[str, float] = field(default_factory=dict)
    _last: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def mark(self, name: str) -> None:
        """The phase ``name`` ended now; it began when the previous one ended."""
        with self._lock:
            now = time.monotonic()
            self.durations_ms[name] = round((now - self._last) * 1000, 1)
            self._last = now

    def mark_process_start(self, name: str) -> None:
        """The phase ``name`` ran from this process's start until now (Linux: from /proc)."""
        age = process_age()
        with self._lock:
            if age is not None:
                self.durations_ms[name] = round(age * 1000, 1)
            self._last = time.monotonic()

    def record(self, name: str, seconds: float) -> None:
        """A phase that ran alongside the others."""
        with self._lock:
            self.durations_ms[name] = round(seconds * 1000, 1)

    def as_json(self) -> dict[str, Any]:
        with self._lock:
            return {"started_at": self.started_at, "phases_ms": dict(self.durations_ms)}

    def __str__(self) -> str:
        with self._lock:
            return ", ".join(f"{name} {ms:.0f} ms" for name, ms in self.durations_ms.items())


def process_age() -> float | None:
    """Seconds since this process started, or None where /proc cannot say."""
    try:
        stat = Path("/proc/self/stat").read_text()
        ticks = int(stat.rpartition(")")[2].split()[19])  # starttime, field 22
        return time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class Bootstrap:
    """Steps run once in the background; ``wait`` blocks until they ended (True if they all
    succeeded). A failed step is logged; the requests waiting on it then fail with a 500."""

    def __init__(self, steps: list[Step], phases: Phases) -> None:
        self.steps = steps
        self.phases = phases
        self.done = threading.Event()
        self.failed: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.done.is_set() and self.failed is None

    def run(self, stop: threading.Event) -> None:
        try:
            for name, step in self.steps:
                if stop.is_set():
                    self.failed = "the local cloud is stopping"
                    return
                started = time.monotonic()
                step()
                self.phases.record(name, time.monotonic() - started)
        except Exception as exc:
            log.exception("start-up failed")
            self.failed = f"{type(exc).__name__}: {exc}"
        finally:
            self.done.set()
            log.info("bootstrapped: %s", self.phases)

    def wait(self) -> bool:
        self.done.wait()
        return self.failed is None


class Warmable(Protocol):
    def warm(self) -> None: ...


class Warming:
    """Every function's first process, started once the bootstrap has ended (so that it keeps
    the cores meanwhile), ``workers`` at a time. No request waits for it; a function that fails
    to warm is logged and named in ``failed``, and the others warm all the same."""

    def __init__(
        self,
        hosts: Mapping[str, Warmable],
        after: threading.Event,
        phases: Phases,
        workers: int = 1,
    ) -> None:
        self.hosts = hosts
        self.after = after
        self.phases = phases
        self.workers = max(workers, 1)
        self.done = threading.Event()
        self.failed: dict[str, str] = {}

    def run(self, stop: threading.Event) -> None:
        try:
            while not self.after.wait(timeout=0.5):
                if stop.is_set():
                    return
            started = time.monotonic()
            with ThreadPoolExecutor(self.workers, thread_name_prefix="warm") as pool:
                for lid, host in self.hosts.items():
                    pool.submit(self._warm, lid, host, stop)
            self.phases.record("warm functions", time.monotonic() - started)
        finally:
            self.done.set()
            log.info("started: %s", self.phases)

    def _warm(self, logical_id: str, host: Warmable, stop: threading.Event) -> None:
        if stop.is_set():
            return
        try:
            host.warm()
        except Exception as exc:
            log.exception("%s: not warmed; it starts on its first request", logical_id)
            self.failed[logical_id] = f"{type(exc).__name__}: {exc}"


class GatedInvoker:
    """The gateway's invoker: requests that could see the bootstrap's work wait for it."""

    def __init__(self, invoker: Invoker, bootstrap: Bootstrap, signers: set[str]) -> None:
        self.invoker = invoker
        self.bootstrap = bootstrap
        self.signers = signers

    def needs_bootstrap(self, logical_id: str, event: dict[str, Any]) -> bool:
        headers = event.get("headers") or {}
        credentials = "authorization" in headers or bool(event.get("cookies"))
        return credentials or logical_id in self.signers

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Invocation:
        if self.needs_bootstrap(logical_id, event) and not self.bootstrap.wait():
            log.warning("%s: not invoked: %s", logical_id, self.bootstrap.failed)
            return Invocation(Outcome.ERROR, error="Local.StartupError")
        return self.invoker.invoke(logical_id, event)
