"""`make dev`'s process: starts, answers, and stops on ctrl+c (SIGINT) leaving nothing behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bench.common import free_port
from tests.e2e.conftest import ROOT
from tests.waiting import eventually


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
            env=_without_admin(os.environ) | {"PYTHONPATH": str(ROOT), "ORDO_TIME_SCALE": "0"},
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
        # No default password: the banner shows the one generated for this start.
        shown = eventually(lambda: re.search(r"Admin +admin / (\S+)", log.read_text()))
        assert shown, log.read_text()
        login = {"username": "admin", "password": shown[1]}
        with httpx.Client(base_url=url, timeout=30) as client:  # first calls start the functions
            token = client.post("/auth/login/json", json=login).json()["access_token"]
            task = {"type": "reverse", "data": "x"}
            assert client.post("/tasks", json=task).status_code == 401
            headers = {"authorization": f"Bearer {token}"}
            assert client.post("/tasks", json=task, headers=headers).status_code == 202
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


def _without_admin(environ: os._Environ[str] | dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if not k.startswith("ORDO_ADMIN_")}


def test_an_admin_password_that_breaks_the_rules_is_a_clear_error() -> None:
    env = os.environ | {"PYTHONPATH": str(ROOT), "ORDO_ADMIN_PASSWORD": "password"}
    result = subprocess.run(
        [sys.executable, "-m", "infra.local", "--port", str(free_port()), "--no-watch"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "ORDO_ADMIN_* is not a valid account" in result.stderr
    assert "upper-case" in result.stderr
    assert "Traceback" not in result.stderr


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


def test_ordo_local_starts_the_same_local_cloud_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    ordo = Path(sys.executable).with_name("ordo")
    port = free_port()
    log = tmp_path / "ordo-local.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(ordo), "local", "--port", str(port), "--no-watch"],
            cwd=tmp_path,  # anywhere: the client finds its checkout
            env=_without_admin(os.environ) | {"ORDO_TIME_SCALE": "0"},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        assert eventually(lambda: _answers(f"{url}/health"), timeout=60), log.read_text()
        os.killpg(process.pid, signal.SIGINT)  # ctrl+c reaches the whole foreground group
        assert process.wait(timeout=15) in (0, 130)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert "Traceback" not in log.read_text()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_a_pinned_signing_key_reaches_the_auth_function_only() -> None:
    from infra.local.cloud import LocalCloud
    from infra.local.ordo_app import OrdoSetup
    from infra.local.stack import Stack

    setup = OrdoSetup.from_env({"ORDO_JWT_SIGNING_KEY": "a private JWK", "ORDO_X": "1"})
    cloud = LocalCloud(env_overrides=dict(setup.overrides), setup=setup)
    cloud.stack = Stack.load()
    for lid, function in cloud.stack.functions().items():
        environment = cloud._environment(function)
        assert environment["ORDO_X"] == "1"
        has_key = environment.get("ORDO_JWT_SIGNING_KEY") == "a private JWK"
        assert has_key == (lid == "AuthFunction"), lid


def test_ordos_setup_adds_the_keys_and_the_admin_only_to_ordos_template() -> None:
    from infra.local.ordo_app import OrdoSetup
    from infra.local.stack import Stack
    from tests.local.conftest import FIXTURE

    def no_client(service: str) -> None:
        raise AssertionError(f"a step ran: {service}")

    setup = OrdoSetup.from_env({})
    ordo = Stack.load()
    steps = setup.after_resources(ordo, no_client, serving=True)
    assert [name for name, _ in steps] == ["signing keys", "admin"]
    direct = setup.after_resources(ordo, no_client, serving=False)
    assert [name for name, _ in direct] == ["signing keys"]  # ordo local invoke: no admin
    assert setup.after_resources(Stack.load(path=FIXTURE), no_client, serving=True) == []
    assert setup.banner_lines(ordo)[0].startswith("  Admin       admin / ")
    bad = OrdoSetup.from_env({"ORDO_ADMIN_PASSWORD": "short"})
    with pytest.raises(ValueError, match="ORDO_ADMIN_"):
        bad.after_resources(ordo, no_client, serving=True)
