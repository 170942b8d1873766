"""Warm Lambda processes for each function of the template.

Each function gets processes of its own (never a shared interpreter), its template
environment, its timeout and its reserved concurrency:

* at most ``ReservedConcurrentExecutions`` invocations run at once, and one more is throttled;
* a function without a reservation scales out to ``default_concurrency`` processes, and
  callers beyond that wait for one, as Lambda's account pool would absorb them;
* an invocation that outlives ``Timeout`` has its process killed, as Lambda does;
* a process whose code changed (``generation``) is replaced before its next invocation.

How a process starts is the host's ``launcher``: a plain ``python -m infra.local.runtime``
subprocess by default (``spawn_process``), or a fork of a fork server (``infra.local.zygote``),
as the local cloud does.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from infra.local.invoke import Invocation, Outcome
from infra.local.runtime import read_frame, write_frame
from infra.local.stack import ROOT, Function

log = logging.getLogger("ordo.local")


class HostClosedError(RuntimeError):
    """The local cloud is stopping; no new function process may start."""


class FunctionProcess(Protocol):
    """What a host needs of a function process: a ``subprocess.Popen``, or a forked one."""

    pid: int
    stdin: IO[bytes] | None

    def poll(self) -> int | None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


# Starts one process of the function with this environment: the process and its reply pipe.
Launcher = Callable[[Function, Mapping[str, str]], tuple[FunctionProcess, IO[bytes]]]


def process_environment(function: Function, environment: Mapping[str, str]) -> dict[str, str]:
    """The function's environment, with the repository root and its layers on PYTHONPATH."""
    return with_layers(function.layers, environment)


def with_layers(layers: Sequence[Path], environment: Mapping[str, str]) -> dict[str, str]:
    """``environment`` with the repository root and ``layers`` first on PYTHONPATH."""
    env = dict(environment)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *(str(p) for p in layers), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    return env


def runtime_arguments(function: Function) -> list[str]:
    """``infra.local.runtime``'s arguments, but for ``--reply-fd``."""
    return [
        "--code-dir",
        str(function.code_uri),
        "--handler",
        function.handler,
        "--function-name",
        function.logical_id,
    ]


def spawn_process(
    function: Function, environment: Mapping[str, str]
) -> tuple[FunctionProcess, IO[bytes]]:
    """The default launcher: a fresh ``python -m infra.local.runtime``."""
    read_fd, write_fd = os.pipe()
    popen = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "infra.local.runtime",
            *runtime_arguments(function),
            "--reply-fd",
            str(write_fd),
        ],
        stdin=subprocess.PIPE,
        pass_fds=(write_fd,),
        env=process_environment(function, environment),
        cwd=str(function.code_uri),
        start_new_session=True,  # ctrl+c reaches the local cloud, which stops us cleanly
    )
    os.close(write_fd)
    return popen, os.fdopen(read_fd, "rb")


@dataclass(eq=False)
class _Process:
    popen: FunctionProcess
    replies: IO[bytes]
    generation: Hashable
    started: float = field(default_factory=time.monotonic)
    ready: bool = False
    ended: bool = False  # its reply pipe closed: the process exited or is exiting

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.popen.kill()
        self.popen.wait()
        self.replies.close()
        if self.popen.stdin:
            with suppress(OSError):  # a request half-written to a dead process stays unsent
                self.popen.stdin.close()


@dataclass
class FunctionHost:
    function: Function
    environment: dict[str, str]
    generation: Callable[[], Hashable] | None = None  # the current code generation
    default_concurrency: int = 4
    launcher: Launcher = spawn_process
    # Milliseconds from the latest process's start (fork or exec) to its ready frame.
    ready_ms: float | None = None
    _idle: list[_Process] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _slots: threading.BoundedSemaphore = field(init=False)
    _busy: set[_Process] = field(default_factory=set)
    _closed: bool = False

    def __post_init__(self) -> None:
        limit = self.function.reserved_concurrency or self.default_concurrency
        self._slots = threading.BoundedSemaphore(max(limit, 1))

    @property
    def name(self) -> str:
        return self.function.logical_id

    def _current_generation(self) -> Hashable:
        return self.generation() if self.generation else 0

    # --- processes ---------------------------------------------------------------------

    def _spawn(self) -> _Process:
        generation = self._current_generation()
        process, replies = self.launcher(self.function, self.environment)
        return _Process(process, replies, generation)

    def _take_process(self) -> _Process:
        generation = self._current_generation()
        with self._lock:
            while self._idle:
                process = self._idle.pop()
                if process.alive and process.generation == generation:
                    self._busy.add(process)
                    return process
                process.kill()
            if self._closed:
                raise HostClosedError(self.name)
        process = self._spawn()
        with self._lock:
            if not self._closed:
                self._busy.add(process)
                return process
        process.kill()  # closed while it started: nothing may outlive the local cloud
        raise HostClosedError(self.name)

    def _give_back(self, process: _Process, healthy: bool) -> None:
        with self._lock:
            self._busy.discard(process)
            keep = healthy and process.alive and process.generation == self._current_generation()
            if keep:
                self._idle.append(process)
        if not keep:
            process.kill()

    def warm(self) -> None:
        """Start one process and let it finish its init, so the first request is warm."""
        if not self._slots.acquire(blocking=False):
            return
        try:
            process = self._take_process()
            healthy = self._await_ready(process, deadline=time.monotonic() + 30)
            self._give_back(process, healthy)
        except HostClosedError:
            pass
        finally:
            self._slots.release()

    # --- invocation --------------------------------------------------------------------

    def invoke(self, event: dict[str, Any], *, wait: bool | None = None) -> Invocation:
        reserved = self.function.reserved_concurrency is not None
        if not self._slots.acquire(blocking=not reserved if wait is None else wait):
            return Invocation(Outcome.THROTTLED, error="Rate Exceeded.")
        try:
            return self._invoke(event, request={"event": event})
        finally:
            self._slots.release()

    def openapi(self) -> Any:
        """The function's own OpenAPI document, if it is a FastAPI app."""
        with self._slots:
            result = self._invoke({}, request={"openapi": True})
        return result.payload if result.outcome is Outcome.OK else None

    def _invoke(self, event: dict[str, Any], request: dict[str, Any]) -> Invocation:
        started = time.monotonic()
        timeout = float(self.function.timeout)
        try:
            process = self._take_process()
        except HostClosedError:
            return Invocation(Outcome.ERROR, error="Runtime.ExitError")
        deadline = started + timeout
        healthy = False
        try:
            if not self._await_ready(process, deadline=time.monotonic() + max(timeout, 10)):
                return Invocation(Outcome.ERROR, error="Runtime.InitError")
            deadline = time.monotonic() + timeout  # init time is not part of the timeout
            assert process.popen.stdin is not None
            message = {
                **request,
                "request_id": str(uuid.uuid4()),
                "timeout": timeout,
                "memory": self.function.memory,
            }
            write_frame(process.popen.stdin, message)
            reply = self._read(process, deadline)
            elapsed = (time.monotonic() - started) * 1000
            if reply is None:
                # The reply pipe closes as a killed process exits, a moment before the process
                # can be reaped: a closed pipe is an exit, never a timeout.
                timed_out = not process.ended and process.alive
                outcome = Outcome.TIMEOUT if timed_out else Outcome.ERROR
                error = f"Task timed out after {timeout:.2f} seconds" if timed_out else None
                log.warning("%s: %s", self.name, error or "runtime exited")
                return Invocation(outcome, error=error or "Runtime.ExitError", duration_ms=elapsed)
            healthy = True
            if reply.get("ok"):
                return Invocation(Outcome.OK, payload=reply.get("payload"), duration_ms=elapsed)
            return Invocation(Outcome.ERROR, error=reply.get("error"), duration_ms=elapsed)
        except (BrokenPipeError, OSError):
            return Invocation(Outcome.ERROR, error="Runtime.ExitError")
        finally:
            self._give_back(process, healthy)

    def _await_ready(self, process: _Process, deadline: float) -> bool:
        if process.ready:
            return True
        hello = self._read(process, deadline)
        process.ready = bool(hello and hello.get("ready"))
        if hello is not None:
            self.ready_ms = (time.monotonic() - process.started) * 1000
        # An init error is reported per invocation by the runtime itself.
        return hello is not None

    @staticmethod
    def _read(process: _Process, deadline: float) -> Any:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        readable, _, _ = select.select([process.replies], [], [], remaining)
        if not readable:
            return None
        try:
            return read_frame(process.replies)
        except EOFError:
            process.ended = True
            return None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            processes = [*self._idle, *self._busy]
            self._idle.clear()
            self._busy.clear()
        for process in processes:
            process.kill()

    def pids(self) -> list[int]:
        with self._lock:
            return [p.popen.pid for p in [*self._idle, *self._busy] if p.alive]

    def in_flight(self) -> int:
        with self._lock:
            return len(self._busy)


class Functions:
    """Every function of the stack, by logical id: the local cloud's ``Invoker``."""

    def __init__(self, hosts: dict[str, FunctionHost]) -> None:
        self.hosts = hosts

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Invocation:
        return self.hosts[logical_id].invoke(event)

    def close(self) -> None:
        for host in self.hosts.values():
            host.close()

    def pids(self) -> list[int]:
        return [pid for host in self.hosts.values() for pid in host.pids()]


class CodeWatcher:
    """Counts the changes to the files under the watched folders: ``generation`` counts every
    change, ``generation_under(folder)`` the ones within ``folder`` (a function's code folder,
    or the layers), so a change reloads only what it touches."""

    def __init__(self, folders: list[Path], interval: float = 0.5) -> None:
        self.folders = [folder.resolve() for folder in folders]
        self.interval = interval
        self.generation = 0
        self._changes: Counter[Path] = Counter()  # changes seen under each folder
        self._resolved: dict[Path, Path] = {}  # each folder asked about, resolved once
        self._fingerprint = self._scan()

    def _scan(self) -> tuple[tuple[str, int], ...]:
        entries = []
        for folder in self.folders:
            for path in folder.rglob("*.py"):
                try:
                    entries.append((str(path), path.stat().st_mtime_ns))
                except FileNotFoundError:
                    continue
        return tuple(sorted(entries))

    def generation_under(self, folder: Path) -> int:
        """Asked on every invocation: the folder is resolved on the first call only."""
        resolved = self._resolved.get(folder)
        if resolved is None:
            resolved = self._resolved[folder] = folder.resolve()
        return self._changes[resolved]

    def check(self) -> bool:
        fingerprint = self._scan()
        if fingerprint == self._fingerprint:
            return False
        changed = set(fingerprint) - set(self._fingerprint)
        for path, _ in changed:
            # A .pyc is trusted while source mtime (whole seconds) and size match: an edit of
            # the same size within the same second would otherwise run the old code.
            Path(importlib.util.cache_from_source(path)).unlink(missing_ok=True)
        touched = {str(path) for path, _ in set(fingerprint) ^ set(self._fingerprint)}
        self._changes.update({folder for path in touched for folder in Path(path).parents})
        self._fingerprint = fingerprint
        self.generation += 1
        log.info("code changed; its functions reload on their next invocation")
        return True

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            self.check()
