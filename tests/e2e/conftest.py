"""End-to-end over HTTP: against the local cloud by default, or a deployed stack.

With ``ORDO_API_URL`` set, the suite runs unchanged against that URL. Otherwise a session
fixture starts the local cloud (``python -m infra.local``) on a free port with a small
``ORDO_TIME_SCALE`` and stops it with SIGINT, as ctrl+c would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
TIME_SCALE = "0.01"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Api:
    url: str
    local: bool
    log: Path | None = None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def wait_for(self, client: httpx.Client, task_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            view: dict[str, Any] = client.get(f"/tasks/{task_id}").json()
            if view["status"] in ("completed", "failed"):
                return view
            time.sleep(0.05)
        raise AssertionError(f"task {task_id} did not finish in {timeout} s")


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    deployed = os.environ.get("ORDO_API_URL")
    if deployed:
        yield Api(deployed.rstrip("/"), local=False)
        return
    port = free_port()
    log = tmp_path_factory.mktemp("local-cloud") / "local-cloud.log"
    env = os.environ | {"ORDO_TIME_SCALE": TIME_SCALE, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.local", "--port", str(port), "--no-watch"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield Api(url, local=True, log=log)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            raise


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"local cloud exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/_local/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"local cloud did not start:\n{log.read_text()}")


@pytest.fixture
def client(api: Api) -> Iterator[httpx.Client]:
    with api.client() as session:
        yield session


@pytest.fixture
def local_only(api: Api) -> None:
    if not api.local:
        pytest.skip("checks the local cloud itself")
