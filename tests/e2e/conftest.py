"""End-to-end over HTTP: against the local cloud by default, or a running stack.

With ``ORDO_API_URL`` set, the suite runs unchanged against that URL. The admin tests sign in
as ``ORDO_ADMIN_USERNAME``/``ORDO_ADMIN_PASSWORD`` (the variables that fix a local cloud's
admin), and skip without them. Delays are real unless ``ORDO_TIME_SCALE`` names the scale the
stack runs at. Tests marked ``local_only(reason=...)`` read the local cloud's internals (the
reason says which) and skip against a stack.

Otherwise a session fixture starts the local cloud (``python -m infra.local``) on a free port
with a small ``ORDO_TIME_SCALE`` and an admin of its own, and stops it with SIGINT, as ctrl+c
would.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from bench.common import free_port
from infra.local.stack import ACCOUNT_LIMIT_OVERRIDES, Stack
from tests.waiting import eventually

DEPLOYED = os.environ.get("ORDO_API_URL", "").rstrip("/")
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

# The slowest task kind's simulated run time: repeat_by_position, 7 s before the time scale.
SLOWEST_TASK_SECONDS = 7.0
# Enough for a user's whole pending quota (100) of the slowest task ahead, before the scale.
LANE_BACKLOG_SECONDS = 100 * SLOWEST_TASK_SECONDS
ADMIN_MISSING = "set ORDO_ADMIN_USERNAME and ORDO_ADMIN_PASSWORD to the stack's admin"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "local_only(reason): reads the local cloud's internals (the reason names which); "
        "skipped when ORDO_API_URL names a running stack",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not DEPLOYED:
        return
    for item in items:
        if (marker := item.get_closest_marker("local_only")) is not None:
            item.add_marker(pytest.mark.skip(reason=f"local cloud only: {marker.kwargs['reason']}"))


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


@dataclass
class Api:
    url: str
    local: bool
    log: Path | None = None
    admin: tuple[str, str] | None = None  # username, password
    time_scale: float = float(TIME_SCALE)

    def seconds(self, simulated: float) -> float:
        """A simulated duration (a task's delay, a case's timeline) at this stack's time scale."""
        return simulated * self.time_scale

    @property
    def lane_timeout(self) -> float:
        """How long a job may take to finish: a full quota of the slowest task ahead of it at
        this time scale, plus the lane's own overhead on a loaded machine."""
        return 30 + self.seconds(LANE_BACKLOG_SECONDS)

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

    def wait_for(self, client: httpx.Client, task_id: str) -> dict[str, Any]:
        """The task's view once it has finished."""
        return self.finished(client, f"/tasks/{task_id}")

    def finished(self, client: httpx.Client, path: str) -> dict[str, Any]:
        """The job view at ``path`` (``/tasks/…``, ``/status/…``, ``/fetch/status/…``) once its
        status is completed or failed."""

        def ended() -> dict[str, Any] | None:
            view: dict[str, Any] = client.get(path).json()
            return view if view["status"] in ("completed", "failed") else None

        view = eventually(ended, timeout=self.lane_timeout, interval=0.05)
        assert view is not None, f"{path} did not finish in {self.lane_timeout:g} s"
        return view


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    if DEPLOYED:
        username = os.environ.get("ORDO_ADMIN_USERNAME")
        password = os.environ.get("ORDO_ADMIN_PASSWORD")
        admin = (username, password) if username and password else None
        # Real delays unless the stack's scale is given: nothing it serves tells it.
        scale = float(os.environ.get("ORDO_TIME_SCALE", "1"))
        yield Api(DEPLOYED, local=False, admin=admin, time_scale=scale)
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

    def bootstrapped() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"local cloud exited:\n{log.read_text()}")
        try:
            health = httpx.get(f"{url}/_local/health", timeout=1)
        except httpx.TransportError:
            return False
        if health.status_code == 200 and health.json()["startup_error"]:
            raise AssertionError(f"local cloud failed to start:\n{log.read_text()}")
        return health.status_code == 200 and bool(health.json()["bootstrapped"])

    assert eventually(bootstrapped, timeout=60, interval=0.1), (
        f"local cloud did not start:\n{log.read_text()}"
    )


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
        pytest.skip(ADMIN_MISSING)
    with api.client(api.sign_in(*api.admin)) as session:
        yield session


def fetch_source_url() -> str:
    """The source a running stack fetches: ``ORDO_FETCH_SOURCE_URL``, else the template's."""
    default = Stack.load().parameters["FetchSourceUrl"]
    return os.environ.get("ORDO_FETCH_SOURCE_URL", default)


def busy_lane(api: Api, wait: float = 25 * SLOWEST_TASK_SECONDS * float(TIME_SCALE)) -> None:
    """Queue slow tasks until the next task will wait ``wait`` seconds or more (25 tasks ahead
    at the local cloud's scale, one at real delays).

    The worker drains the lane while this fills it, about as fast as one client submits, so
    four submit at once and the backlog is checked rather than assumed.
    """
    ahead = math.ceil(wait / api.seconds(SLOWEST_TASK_SECONDS))
    _, token = api.sign_up()
    task = {"type": "repeat_by_position", "data": "abc"}
    with api.client(token) as client, ThreadPoolExecutor(4) as pool:

        def submit(_: int) -> str:
            accepted = client.post("/tasks", json=task)
            assert accepted.status_code == 202, accepted.text
            return str(accepted.json()["task_id"])

        for _ in range(8):  # 96 at most: under the pending quota of 100 a user
            newest = list(pool.map(submit, range(min(12, ahead + 1))))[-1]
            if (client.get(f"/tasks/{newest}").json()["queue_position"] or 0) >= ahead:
                return
    pytest.fail(f"the worker drains the lane faster than tasks arrive: never {ahead} ahead")
