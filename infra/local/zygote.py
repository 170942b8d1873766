"""A fork server (zygote) for the local cloud's functions (``python -m infra.local.zygote``).

One server per layer set imports the heavy modules every function shares (FastAPI, pydantic,
botocore, Powertools, ...) once, moves them out of the garbage collector's reach
(``gc.freeze()``) and forks one child per warm function process. The children share those pages
copy-on-write, so a dozen functions cost one interpreter image plus what each imports itself.

The server also imports the layer's own modules (``LAYER_PRELOAD``: none reads the environment at
import) and runs a throwaway FastAPI app through Mangum (``infra.local.zygote_warmup``), so that
the children find that code already run rather than each writing its own copy of those pages.
It never imports function code and never runs with a function's environment.

Each child sets exactly the function's environment, its ``sys.path`` (the code folder, then
``PYTHONPATH``: the repository root and the layers), its working folder, a session of its own
and the signal dispositions of a fresh interpreter, then serves as ``python -m
infra.local.runtime`` does: requests on stdin, replies on their own pipe.

A function whose environment differs from the server's in a variable the preload read (or in an
interpreter start-up variable, ``PYTHON*``) gets a plain process instead, so nothing the server
imported can carry a value the function would not have seen.

Protocol, on a ``SOCK_SEQPACKET`` socket pair: the server says hello once it has imported; each
request is one JSON message carrying the child's stdin, reply pipe, stdout and stderr
(SCM_RIGHTS), and is answered with the child's pid and a pidfd, so the local cloud watches and
kills a process that is not its own child without pid-reuse races. The server reaps its children
on SIGCHLD and exits when the socket closes.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import importlib.util
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import IO, Any, NoReturn

from infra.local import runtime
from infra.local.functions import (
    FunctionProcess,
    HostClosedError,
    process_environment,
    runtime_arguments,
    spawn_process,
    with_layers,
)
from infra.local.stack import ROOT, Function

log = logging.getLogger("ordo.local")

# Third-party modules the functions share. Missing ones are skipped.
PRELOAD = (
    "pydantic",
    "fastapi",
    "fastapi.openapi.models",
    "mangum",
    "botocore.session",
    "botocore.client",
    "boto3",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.typing",
    "cryptography.hazmat.primitives.asymmetric.ed25519",
    "cryptography.hazmat.primitives.serialization",
    "argon2",
    "jwt",
)
# The layer's modules, imported only from the server's layers. None reads the environment at
# import: ordo.observability builds Powertools' Logger and Metrics on first use, and ordo.http
# imports ordo.boot (which does read it) only in api_app. tests/local/test_zygote.py checks that
# this list is every module of the layer but ordo.boot.
LAYER_PRELOAD = (
    "ordo.observability",
    "ordo.http",
    "ordo.accounts",
    "ordo.admin",
    "ordo.aggregation",
    "ordo.aws",
    "ordo.cases",
    "ordo.catalog",
    "ordo.clock",
    "ordo.deps",
    "ordo.documents",
    "ordo.errors",
    "ordo.health",
    "ordo.jobs",
    "ordo.keyring",
    "ordo.kinds",
    "ordo.lane_admin",
    "ordo.queue",
    "ordo.recovery",
    "ordo.registry",
    "ordo.retry",
    "ordo.review",
    "ordo.security",
    "ordo.settings",
    "ordo.source",
    "ordo.storage.accounts",
    "ordo.storage.aggregation",
    "ordo.storage.attributes",
    "ordo.storage.batch",
    "ordo.storage.cases",
    "ordo.storage.catalog",
    "ordo.storage.cursors",
    "ordo.storage.jobs",
    "ordo.storage.pages",
    "ordo.storage.transactions",
    "ordo.tasks",
    "ordo.tokens",
    "ordo.validation",
    "ordo.wiring",
    "ordo.worker",
)
# botocore parses its JSON data (endpoints, each service's model: about 9 MB for DynamoDB) once
# per session. The server parses it for these services once, in one loader that every botocore
# session of ordo's data path (or the default one) in a child uses: one session's worth, shared.
BOTOCORE_SERVICES = ("dynamodb", "sqs", "ssm")
EVERYTHING = "*"  # the preload iterated the whole environment
START_TIMEOUT = 60.0  # seconds a new server may take to import
_MESSAGE = 1 << 20
_FRESH_INTERPRETER: dict[int, Callable[[int, Any], Any] | int] = {
    signal.SIGINT: signal.default_int_handler,
    signal.SIGPIPE: signal.SIG_IGN,
    signal.SIGXFSZ: signal.SIG_IGN,
}


class ForkServerError(RuntimeError):
    """The fork server is gone or refused a request."""


# --- the server process ----------------------------------------------------------------------


class _RecordingEnviron(os._Environ[str]):
    """``os.environ`` over the same variables, noting every name read while ``recording``."""

    def __init__(self, environ: os._Environ[str]) -> None:
        super().__init__(
            environ._data,  # type: ignore[attr-defined]  # shared: both views stay in step
            environ.encodekey,
            environ.decodekey,
            environ.encodevalue,
            environ.decodevalue,
        )
        self.reads: set[str] = set()
        self.recording = True

    def __getitem__(self, key: str) -> str:
        if self.recording:
            self.reads.add(key)
        return super().__getitem__(key)

    def __iter__(self) -> Any:
        if self.recording:
            self.reads.add(EVERYTHING)
        return super().__iter__()


def preload(
    modules: Sequence[str], layer_modules: Sequence[str] = (), layers: Sequence[str] = ()
) -> tuple[list[str], set[str]]:
    """Import ``modules``, and those of ``layer_modules`` whose package lies in one of
    ``layers``; the ones imported, and every environment variable they read."""
    original = os.environ
    recorder = _RecordingEnviron(original)
    os.environ = recorder  # noqa: B003 - a view of the same variables, not a new environment
    imported = []
    try:
        for name in [*modules, *(m for m in layer_modules if _in_layers(m, layers))]:
            try:
                importlib.import_module(name)
            except ImportError:
                continue
            imported.append(name)
        if "botocore.session" in imported:
            _share_botocore_data(BOTOCORE_SERVICES)
        if {"fastapi", "mangum"} <= set(imported):
            from infra.local import zygote_warmup

            zygote_warmup.run()  # recorded too: it must read no environment either
    finally:
        recorder.recording = False
        os.environ = original  # noqa: B003
    return imported, recorder.reads


def _share_botocore_data(services: Sequence[str]) -> None:
    """The children's botocore sessions get one loader, its data parsed here, in the server:
    those of ordo's data path (``ordo.aws``, its trimmed models first) if the layer has ordo,
    else those of the default one. Loaded data is shared as it is between the clients of one
    session already."""
    import botocore.loaders
    import botocore.session

    aws = sys.modules.get("ordo.aws")
    path: str | None = getattr(aws, "DATA_PATH", None)
    shared = botocore.loaders.create_loader(path)
    for name in ("endpoints", "partitions", "sdk-default-configuration"):
        shared.load_data(name)
    for service in services:
        for kind in ("service-2", "endpoint-rule-set-1"):
            shared.load_service_model(service, kind)
    create = botocore.session.create_loader

    def create_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
        return shared if search_path_string == path else create(search_path_string)

    botocore.session.create_loader = create_loader


def _in_layers(module: str, layers: Sequence[str]) -> bool:
    try:
        spec = importlib.util.find_spec(module.partition(".")[0])
    except (ImportError, ValueError):
        return False
    origin = Path(spec.origin).resolve() if spec and spec.origin else None
    return origin is not None and any(origin.is_relative_to(layer) for layer in layers)


def _base_path() -> list[str]:
    """The interpreter's own ``sys.path`` (stdlib, site-packages): without the start folder and
    the server's ``PYTHONPATH``, which each child replaces with its function's."""
    own = set(filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)))
    return [entry for entry in sys.path[1:] if entry not in own]


def serve(channel: socket.socket, layers: Sequence[str] = ()) -> None:
    started = time.monotonic()
    imported, reads = preload(PRELOAD, LAYER_PRELOAD, [str(Path(p).resolve()) for p in layers])
    base_path = _base_path()
    gc.collect()
    gc.freeze()  # what the preload built stays untouched by the children's collections
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # the wakeup byte makes the loop reap
    hello = {
        "ready": True,
        "pid": os.getpid(),
        "imported": imported,
        "reads": sorted(reads),
        "seconds": round(time.monotonic() - started, 3),
    }
    channel.send(json.dumps(hello).encode())
    while True:
        readable, _, _ = select.select([channel.fileno(), wake_read], [], [])
        if wake_read in readable:
            os.read(wake_read, 512)
            _reap()
        if channel.fileno() not in readable:
            continue
        try:
            data, fds, _, _ = socket.recv_fds(channel, _MESSAGE, 4)
        except ConnectionError:
            return
        if not data:
            return  # the local cloud is gone
        try:
            if len(fds) != 4:
                raise ForkServerError(f"expected 4 descriptors, got {len(fds)}")
            pid = _fork(json.loads(data), fds, base_path, channel, (wake_read, wake_write))
        except Exception as exc:
            channel.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
            continue
        finally:
            for fd in fds:
                os.close(fd)
        pidfd = os.pidfd_open(pid)  # before the loop can reap it: this pidfd names this child
        try:
            socket.send_fds(channel, [json.dumps({"pid": pid}).encode()], [pidfd])
        finally:
            os.close(pidfd)


def _reap() -> None:
    with suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _fork(
    request: dict[str, Any],
    fds: list[int],
    base_path: list[str],
    channel: socket.socket,
    wakeup: tuple[int, int],
) -> int:
    if threading.active_count() != 1:
        raise ForkServerError("the fork server must be single-threaded to fork")
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _child(request, fds, base_path, channel, wakeup)
    return pid


def _child(
    request: dict[str, Any],
    fds: list[int],
    base_path: list[str],
    channel: socket.socket,
    wakeup: tuple[int, int],
) -> NoReturn:
    code = 0
    try:
        stdin, reply, stdout, stderr = fds
        os.setsid()  # as start_new_session: ctrl+c reaches the local cloud, which stops us
        _fresh_signals()
        os.close(channel.detach())
        for fd in wakeup:
            os.close(fd)
        for fd, standard in ((stdin, 0), (stdout, 1), (stderr, 2)):
            os.dup2(fd, standard)
        os.set_inheritable(reply, False)
        environment: dict[str, str] = request["environment"]
        os.environ.clear()
        os.environ.update(environment)
        os.chdir(request["code_dir"])
        python_path = [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:] = [request["code_dir"], *python_path, *base_path]
        sys.argv = [str(runtime.__file__), *request["argv"]]
        importlib.invalidate_caches()
        with suppress(KeyboardInterrupt, BrokenPipeError):
            runtime.serve(request["code_dir"], request["handler"], request["function_name"], reply)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with suppress(BaseException):
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _fresh_signals() -> None:
    """The dispositions a new interpreter starts with; nothing of the server's."""
    signal.set_wakeup_fd(-1)
    for signum in signal.valid_signals():
        if signum in (signal.SIGKILL, signal.SIGSTOP):
            continue
        with suppress(OSError, ValueError):
            signal.signal(signum, _FRESH_INTERPRETER.get(signum, signal.SIG_DFL))
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket-fd", type=int, required=True)
    parser.add_argument("--layer", action="append", default=[])
    args = parser.parse_args()
    channel = socket.socket(fileno=args.socket_fd)
    with suppress(KeyboardInterrupt, BrokenPipeError, ConnectionError):
        serve(channel, args.layer)


# --- the local cloud's side ------------------------------------------------------------------


class ForkedProcess:
    """A function process a fork server forked: not our child, so it is watched and killed
    through a pidfd, which names this process and never a later one with the same pid.

    Its exit status stays with the server that reaped it: ``returncode`` is ``-SIGKILL`` once a
    process we killed is gone, and -1 for one that exited by itself."""

    def __init__(self, pid: int, pidfd: int, stdin: IO[bytes]) -> None:
        self.pid = pid
        self.stdin: IO[bytes] | None = stdin
        self.returncode: int | None = None
        self._pidfd = pidfd
        self._killed = False
        self._lock = threading.Lock()

    def _check(self, timeout: float) -> int | None:
        with self._lock:
            if self.returncode is None:
                readable, _, _ = select.select([self._pidfd], [], [], timeout)
                if readable:
                    self.returncode = -signal.SIGKILL if self._killed else -1
                    os.close(self._pidfd)
            return self.returncode

    def poll(self) -> int | None:
        return self._check(0)

    def kill(self) -> None:
        with self._lock:
            if self.returncode is None:
                with suppress(ProcessLookupError):
                    signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
                self._killed = True

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self._check(0.05)) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
        return code


class ForkServer:
    """One running fork server, for one layer set; forks are serialised over its socket."""

    def __init__(
        self, layers: Sequence[Path], environment: Mapping[str, str], generation: Any = 0
    ) -> None:
        self.layers = tuple(layers)
        self.generation = generation
        self.environment = with_layers(self.layers, {**environment, "PYTHONPATH": ""})
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [
                    sys.executable,
                    "-m",
                    "infra.local.zygote",
                    "--socket-fd",
                    str(theirs.fileno()),
                    *(f"--layer={layer}" for layer in self.layers),
                ],
                pass_fds=(theirs.fileno(),),
                env=self.environment,
                cwd=str(ROOT),
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # ctrl+c reaches the local cloud, which stops us
            )
        self._channel = ours
        self._lock = threading.Lock()
        self._hello: dict[str, Any] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def hello(self, timeout: float = START_TIMEOUT) -> dict[str, Any]:
        """What the server said once it had imported; waits for it."""
        with self._lock:
            return self._await_hello(timeout)

    def _await_hello(self, timeout: float) -> dict[str, Any]:
        if self._hello is None:
            readable, _, _ = select.select([self._channel], [], [], timeout)
            data = self._channel.recv(_MESSAGE) if readable else b""
            if not data:
                raise ForkServerError(f"fork server {self.pid} did not start")
            self._hello = json.loads(data)
        return self._hello

    def conflict(self, environment: Mapping[str, str]) -> str | None:
        """A variable the function sees differently from what the preload saw, if any."""
        reads = set(self.hello()["reads"])
        if EVERYTHING in reads:
            reads |= set(environment) | set(self.environment)
        reads |= {
            name
            for name in (*environment, *self.environment)
            if name.startswith("PYTHON") and name != "PYTHONPATH"
        }
        return next(
            (n for n in sorted(reads) if environment.get(n) != self.environment.get(n)), None
        )

    def fork(
        self, function: Function, environment: Mapping[str, str]
    ) -> tuple[ForkedProcess, IO[bytes]]:
        stdin_read, stdin_write = os.pipe()
        reply_read, reply_write = os.pipe()
        request = {
            "environment": dict(environment),
            "code_dir": str(function.code_uri),
            "handler": function.handler,
            "function_name": function.logical_id,
            "argv": runtime_arguments(function),
        }
        try:
            with self._lock:
                self._await_hello(START_TIMEOUT)
                socket.send_fds(
                    self._channel,
                    [json.dumps(request).encode()],
                    [stdin_read, reply_write, 1, 2],  # stdout and stderr: as a spawned process's
                )
                data, fds, _, _ = socket.recv_fds(self._channel, _MESSAGE, 1)
            answer = json.loads(data) if data else {"error": "the fork server exited"}
            if "error" in answer or len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                raise ForkServerError(answer.get("error", "no pidfd in the answer"))
        except (OSError, ValueError, ForkServerError) as exc:
            os.close(stdin_write)
            os.close(reply_read)
            raise ForkServerError(f"fork server {self.pid}: {exc}") from exc
        finally:
            os.close(stdin_read)
            os.close(reply_write)
        process = ForkedProcess(int(answer["pid"]), fds[0], os.fdopen(stdin_write, "wb"))
        return process, os.fdopen(reply_read, "rb")

    def close(self) -> None:
        """Stop the server; its children live on until their hosts retire them."""
        with suppress(OSError):
            self._channel.shutdown(socket.SHUT_RDWR)  # the server exits; a waiting caller wakes
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with self._lock:
            self._channel.close()


class ForkServers:
    """A ``FunctionHost`` launcher: forks each function process from the fork server of its
    layer set. A server starts on first use (or ``prestart``), is replaced when
    ``layer_generation`` changes, and again, with a warning, if it died. A function that cannot
    be forked faithfully, or when no server will start, gets a plain process."""

    def __init__(
        self,
        environment: Mapping[str, str],
        layer_generation: Callable[[], Any] | None = None,
    ) -> None:
        self.environment = dict(environment)
        self.layer_generation = layer_generation or (lambda: 0)
        self._servers: dict[tuple[Path, ...], ForkServer] = {}
        self._plain: set[str] = set()  # functions already logged as started plainly
        self._lock = threading.Lock()
        self._closed = False

    def prestart(self, functions: Iterable[Function]) -> None:
        """Start the servers now, so their imports overlap the rest of the start-up."""
        for layers in {tuple(f.layers) for f in functions}:
            self.server(layers)

    def server(self, layers: tuple[Path, ...]) -> ForkServer:
        with self._lock:
            if self._closed:
                raise HostClosedError("fork servers are closed")
            generation = self.layer_generation()
            server = self._servers.get(layers)
            if server is not None and server.generation != generation:
                log.info("layer code changed; replacing fork server %s", server.pid)
                server.close()
                server = None
            elif server is not None and not server.alive:
                log.warning(
                    "fork server %s exited (%s); starting a new one",
                    server.pid,
                    server.process.returncode,
                )
                server.close()
                server = None
            if server is None:
                server = ForkServer(layers, self.environment, generation)
                self._servers[layers] = server
            return server

    def __call__(
        self, function: Function, environment: Mapping[str, str]
    ) -> tuple[FunctionProcess, IO[bytes]]:
        env = process_environment(function, environment)
        problem = "no fork server would start"
        for _ in range(2):
            server = self.server(tuple(function.layers))
            try:
                if name := server.conflict(env):
                    problem = f"its {name} differs from the fork server's"
                    break
                return server.fork(function, env)
            except ForkServerError as exc:
                problem = str(exc)
                log.warning("%s: %s", function.logical_id, exc)
                with self._lock:
                    server.process.kill()  # the next call starts a new one
                    server.process.wait()
        if function.logical_id not in self._plain:
            self._plain.add(function.logical_id)
            log.warning("%s runs in plain processes: %s", function.logical_id, problem)
        return spawn_process(function, environment)

    def pid_of(self, function: Function) -> int | None:
        with self._lock:
            server = self._servers.get(tuple(function.layers))
            return server.pid if server is not None and server.alive else None

    def pids(self) -> list[int]:
        with self._lock:
            return [s.pid for s in self._servers.values() if s.alive]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            servers = list(self._servers.values())
            self._servers.clear()
        for server in servers:
            server.close()


if __name__ == "__main__":
    main()
