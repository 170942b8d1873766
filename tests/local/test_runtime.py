"""A function process never outlives the local cloud, and never dies noisily when it stops."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.local.functions import FunctionHost, _Process
from infra.local.invoke import Outcome
from infra.local.stack import Function
from tests.e2e.conftest import ROOT

ECHO = Path(__file__).parent / "fixture" / "functions" / "echo"


def _echo() -> Function:
    return Function(
        logical_id="Echo",
        code_uri=ECHO,
        handler="app.handler",
        timeout=5,
        memory=128,
        reserved_concurrency=None,
        environment={},
    )


def _host() -> FunctionHost:
    return FunctionHost(_echo(), environment={"PATH": os.environ["PATH"]})


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
