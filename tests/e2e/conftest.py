"""End-to-end over HTTP: against the local cloud by default, or a deployed stack.

With ``ORDO_API_URL`` set, the suite runs unchanged against that URL (admin tests also need
``ORDO_E2E_ADMIN_USERNAME``/``ORDO_E2E_ADMIN_PASSWORD``). Otherwise a session fixture starts the
local cloud (``python -m infra.local``) on a free port with a small ``ORDO_TIME_SCALE`` and an
admin of its own, and stops it with SIGINT, as ctrl+c would.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from infra.local.stack import ACCOUNT_LIMIT_OVERRIDES

ROOT = Path(__file__).resolve().parents[2]
TIME_SCALE = "0.01"
PASSWORD = "E2e-passw0rd"  # every account the tests register
# The suite calls one route far faster than the template's throttle (50 a second) allows:
# API Gateway's account limits instead, so that no test meets a 429 it did not ask for.
NO_THROTTLE = ["--parameter-overrides", *ACCOUNT_LIMIT_OVERRIDES]
# What the e2e source serves the local cloud's aggregator.
SOURCE_POSTS = [
    {"userId": 1 + n % 2, "id": n, "title": f"post {n}", "body": f"body {n}"} for n in range(1, 8)
]


SOURCE_HITS: list[float] = []  # when the source was asked, for tests that wait on it


class _JsonServer(ThreadingHTTPServer):
    def __init__(self, answer: Callable[[], Any]) -> None:
        super().__init__(("127.0.0.1", 0), _Json)
        self.answer = answer


class _Json(BaseHTTPRequestHandler):
    server: _JsonServer

    def do_GET(self) -> None:
        body = json.dumps(self.server.answer()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def json_server(answer: Callable[[], Any]) -> Iterator[str]:
    """A real server on loopback that answers every GET with ``answer()`` as JSON: its base URL."""
    server = _JsonServer(answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# What the API shows of a user, never more (no password hash, no deleted flag).
USER_FIELDS = {"id", "email", "username", "role", "is_active", "created_at", "updated_at"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Api:
    url: str
    local: bool
    log: Path | None = None
    admin: tuple[str, str] | None = None  # username, password

    @property
    def port(self) -> int:
        """The port the URL names (a local cloud's always does)."""
        port = urlsplit(self.url).port
        assert port is not None, f"{self.url} names no port"
        return port

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, timeout=30, headers=headers)

    def sign_up(self) -> tuple[str, str]:
        """A new account; returns its username and access token."""
        username = f"e2e-{secrets.token_hex(6)}"
        with self.client() as anonymous:
            body = {"email": f"{username}@example.com", "username": username, "password": PASSWORD}
            registered = anonymous.post("/auth/register", json=body)
            assert registered.status_code == 201, registered.text
        return username, self.sign_in(username, PASSWORD)

    def sign_in(self, username: str, password: str) -> str:
        with self.client() as anonymous:
            response = anonymous.post(
                "/auth/login", data={"username": username, "password": password}
            )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

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
        username = os.environ.get("ORDO_E2E_ADMIN_USERNAME")
        password = os.environ.get("ORDO_E2E_ADMIN_PASSWORD")
        admin = (username, password) if username and password else None
        yield Api(deployed.rstrip("/"), local=False, admin=admin)
        return
    with posts_source() as source_url:
        env = {"ORDO_FETCH_SOURCE_URL": source_url}
        with local_cloud(tmp_path_factory.mktemp("local-cloud"), env) as local:
            yield local


@contextmanager
def posts_source() -> Iterator[str]:
    """A real server on loopback for the aggregator: the URL of its posts."""

    def posts() -> list[dict[str, Any]]:
        SOURCE_HITS.append(time.time())
        return SOURCE_POSTS

    with json_server(posts) as url:
        yield f"{url}/posts"


@contextmanager
def local_cloud(folder: Path, env: dict[str, str] | None = None) -> Iterator[Api]:
    """``python -m infra.local`` on a free port, with an admin of its own and ``env``; stopped
    with SIGINT, as ctrl+c would."""
    port = free_port()
    log = folder / "local-cloud.log"
    admin = ("e2e-admin", f"{secrets.token_urlsafe(12)}-Aa1")
    full_env = (
        os.environ
        | {
            "ORDO_TIME_SCALE": TIME_SCALE,
            "PYTHONPATH": str(ROOT),
            "ORDO_ADMIN_USERNAME": admin[0],
            "ORDO_ADMIN_PASSWORD": admin[1],
            # The whole suite signs in from 127.0.0.1: one address, far over a person's quota.
            "ORDO_CLIENT_ATTEMPTS": "1000000",
        }
        | (env or {})
    )
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.local", "--port", str(port), "--no-watch", *NO_THROTTLE],
            cwd=ROOT,
            env=full_env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield Api(url, local=True, log=log, admin=admin)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            raise


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the local cloud serves and its bootstrap (the token keys in SSM, the admin) has
    ended: the tests that read SSM or DynamoDB directly need it, not only the gateway's."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"local cloud exited:\n{log.read_text()}")
        try:
            health = httpx.get(f"{url}/_local/health", timeout=1)
            if health.status_code == 200 and health.json()["bootstrapped"]:
                return
            if health.status_code == 200 and health.json()["startup_error"]:
                raise AssertionError(f"local cloud failed to start:\n{log.read_text()}")
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"local cloud did not start:\n{log.read_text()}")


@pytest.fixture
def client(api: Api) -> Iterator[httpx.Client]:
    """Signed in as a new user of its own."""
    _, token = api.sign_up()
    with api.client(token) as session:
        yield session


@pytest.fixture
def anonymous(api: Api) -> Iterator[httpx.Client]:
    with api.client() as session:
        yield session


@pytest.fixture
def admin(api: Api) -> Iterator[httpx.Client]:
    if api.admin is None:
        pytest.skip("set ORDO_E2E_ADMIN_USERNAME and ORDO_E2E_ADMIN_PASSWORD")
    with api.client(api.sign_in(*api.admin)) as session:
        yield session


@pytest.fixture
def local_only(api: Api) -> None:
    if not api.local:
        pytest.skip("checks the local cloud itself")
