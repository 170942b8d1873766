"""A function process never outlives the local cloud, and never dies noisily when it stops;
``ORDO_LOCAL_PRELOAD`` runs in its init phase."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from infra.local.functions import FunctionHost, _Process
from infra.local.invoke import Outcome
from infra.local.ordo_app import shell_overrides
from infra.local.runtime import read_frame, write_frame
from tests.e2e.conftest import ROOT
from tests.local.conftest import fixture_function
from tests.waiting import eventually

ECHO = Path(__file__).parent / "fixture" / "functions" / "echo"


def _host() -> FunctionHost:
    return FunctionHost(fixture_function("Echo", ECHO), environment={"PATH": os.environ["PATH"]})


def test_runtime_exits_quietly_when_the_local_cloud_is_gone() -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # the local cloud stopped before the init finished
    try:
        finished = subprocess.run(
            [
                sys.executable,
                "-m",
                "infra.local.runtime",
                "--code-dir",
                str(ECHO),
                "--handler",
                "app.handler",
                "--function-name",
                "Echo",
                "--reply-fd",
                str(write_fd),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            pass_fds=(write_fd,),
            env=os.environ | {"PYTHONPATH": str(ROOT)},
            timeout=30,
            check=False,
        )
    finally:
        os.close(write_fd)
    assert finished.returncode == 0
    assert finished.stderr == b""


def test_a_host_closed_while_a_process_starts_kills_that_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = _host()
    started: list[_Process] = []
    spawn = host._spawn

    def spawn_then_stop() -> _Process:
        process = spawn()
        started.append(process)
        host.close()  # ctrl+c arrives while the process starts
        return process

    monkeypatch.setattr(host, "_spawn", spawn_then_stop)
    host.warm()
    assert len(started) == 1
    assert started[0].popen.poll() is not None
    assert host.pids() == []


def test_a_closed_host_starts_nothing() -> None:
    host = _host()
    host.close()
    host.warm()
    assert host.pids() == []
    result = host.invoke({})
    assert result.outcome is Outcome.ERROR
    assert result.error == "Runtime.ExitError"


def test_an_open_host_answers() -> None:
    host = _host()
    try:
        result = host.invoke({"rawPath": "/"})
        assert result.outcome is Outcome.OK
        assert result.payload["statusCode"] == 200
    finally:
        host.close()
    assert host.pids() == []


# --- ORDO_LOCAL_PRELOAD (local only) ---------------------------------------------------------

PRELOADED = Path(__file__).parent / "fixture" / "functions" / "preloaded"


def _preloaded(preload: str) -> FunctionHost:
    function = fixture_function("Preloaded", PRELOADED)
    return FunctionHost(
        function, environment={"PATH": os.environ["PATH"], "ORDO_LOCAL_PRELOAD": preload}
    )


def test_preloaded_modules_are_imported_before_the_handler() -> None:
    """Local only: ORDO_LOCAL_PRELOAD's modules are imported in the init phase, in order, with
    the repository root on the path, before the handler module."""
    host = _preloaded(" json , tests.local.fixture.preload,")
    try:
        result = host.invoke({})
        assert result.outcome is Outcome.OK, result
        assert result.payload == {"preloaded_first": True, "imports": 1}
    finally:
        host.close()


def test_without_preload_nothing_is_imported_first() -> None:
    host = _preloaded("")
    try:
        result = host.invoke({})
        assert result.payload == {"preloaded_first": False, "imports": None}
    finally:
        host.close()


@pytest.mark.parametrize(
    ("module", "error"),
    [
        ("tests.local.fixture.preload_broken", "RuntimeError: injected preload failure"),
        ("tests.local.fixture.nowhere", "ModuleNotFoundError: No module named"),
    ],
)
def test_a_preload_that_fails_is_an_init_error(module: str, error: str) -> None:
    """Lambda reports a failed init phase as Runtime.InitError on every invocation, and never
    runs the handler; a preload that fails to import fails the init phase."""
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infra.local.runtime",
            "--code-dir",
            str(PRELOADED),
            "--handler",
            "app.handler",
            "--function-name",
            "Preloaded",
            "--reply-fd",
            str(write_fd),
        ],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=(write_fd,),
        env=os.environ | {"PYTHONPATH": str(ROOT), "ORDO_LOCAL_PRELOAD": module},
    )
    os.close(write_fd)
    assert process.stdin is not None
    try:
        with os.fdopen(read_fd, "rb") as replies:
            hello = read_frame(replies)
            assert hello["ready"] is False
            assert f"ORDO_LOCAL_PRELOAD {module}: {error}" in hello["error"]
            for _ in range(2):
                request = {"event": {}, "request_id": "r", "timeout": 5}
                write_frame(process.stdin, request)
                reply = read_frame(replies)
                assert reply["ok"] is False
                assert reply["type"] == "Runtime.InitError"
                assert reply["error"] == hello["error"]
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert b"Traceback" in stderr  # the init error's traceback goes to the function's log


def test_the_local_cloud_passes_preload_to_every_function() -> None:
    """ORDO_* variables of the starting shell reach every function, ORDO_LOCAL_PRELOAD too."""
    overrides = shell_overrides({"ORDO_LOCAL_PRELOAD": "tests.faults", "HOME": "/"})
    assert overrides == {"ORDO_LOCAL_PRELOAD": "tests.faults"}


def test_a_killed_process_is_an_exit_error_not_a_timeout() -> None:
    """Lambda reports a runtime that dies mid-invocation as Runtime.ExitError, at once; only an
    invocation that outlives its Timeout is "Task timed out"."""
    sleepy = Path(__file__).parent / "fixture" / "functions" / "sleepy"
    function = fixture_function("Sleepy", sleepy, timeout=30, reserved_concurrency=1)
    host = FunctionHost(function, environment={"PATH": os.environ["PATH"]})
    try:
        host.warm()
        (pid,) = host.pids()
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(host.invoke, {"pathParameters": {"seconds": "60"}})
            assert eventually(lambda: host.in_flight() == 1)
            os.kill(pid, signal.SIGKILL)
            result = running.result(timeout=20)
        assert result.outcome is Outcome.ERROR
        assert result.error == "Runtime.ExitError"
        assert result.duration_ms < 20_000
    finally:
        host.close()
