"""`make dev`'s process: starts, answers, and stops on ctrl+c (SIGINT) leaving nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.conftest import ROOT, free_port
from tests.local.conftest import eventually


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def test_ctrl_c_stops_everything_cleanly(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "dev.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.local", "--port", str(port), "--no-watch"],
            cwd=ROOT,
            env=os.environ | {"PYTHONPATH": str(ROOT), "ORDO_TIME_SCALE": "0"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/_local/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        assert eventually(up, timeout=60), log.read_text()
        assert httpx.post(f"{url}/tasks", json={"type": "reverse", "data": "x"}).status_code == 202
        children = eventually(
            lambda: [
                pid for pids in httpx.get(f"{url}/_local/functions").json().values() for pid in pids
            ]
        )
        assert children
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
    output_text = log.read_text()
    assert "Traceback" not in output_text
    assert f"API         {url}" in output_text
    assert not [pid for pid in children if alive(pid)]


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "infra.local", "--port", str(port), "--no-watch"],
            cwd=ROOT,
            env=os.environ | {"PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "ORDO_PORT" in result.stderr
    assert "Traceback" not in result.stderr
