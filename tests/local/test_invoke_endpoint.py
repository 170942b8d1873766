"""``ordo local invoke`` against a running local cloud: it waits for the cloud's bootstrap (the
token keys in SSM) before a function can read them, and says so when that never comes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from infra.local.invoke_cli import UsageError, running_local_cloud
from tests.e2e.conftest import free_port

ENDPOINT = "http://127.0.0.1:4566"


class FakeCloud(ThreadingHTTPServer):
    """A local cloud's ``/_local/health`` on loopback: ``answers`` in turn, the last one kept."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        super().__init__(("127.0.0.1", 0), _Health)
        self.answers = answers
        self.asked = 0


class _Health(BaseHTTPRequestHandler):
    server: FakeCloud

    def do_GET(self) -> None:
        answers = self.server.answers
        body = json.dumps(answers[min(self.server.asked, len(answers) - 1)]).encode()
        self.server.asked += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def health(*, bootstrapped: bool, error: str | None = None) -> dict[str, Any]:
    return {
        "status": "ok",
        "aws_endpoint": ENDPOINT,
        "bootstrapped": bootstrapped,
        "startup_error": error,
    }


def serve(answers: list[dict[str, Any]]) -> Iterator[FakeCloud]:
    cloud = FakeCloud(answers)
    threading.Thread(target=cloud.serve_forever, daemon=True).start()
    try:
        yield cloud
    finally:
        cloud.shutdown()
        cloud.server_close()


@pytest.fixture
def starting() -> Iterator[FakeCloud]:
    yield from serve([health(bootstrapped=False)] * 3 + [health(bootstrapped=True)])


def environ(cloud: FakeCloud) -> dict[str, str]:
    return {"ORDO_PORT": str(cloud.server_address[1])}


def test_the_endpoint_is_used_once_the_bootstrap_has_ended(
    starting: FakeCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a local cloud whose bootstrap ends at its fourth health check
    # When the command looks for it
    endpoint = running_local_cloud(environ(starting))
    # Then it waited for the bootstrap, and said so
    assert endpoint == ENDPOINT
    assert starting.asked == 4
    assert "waiting for the local cloud" in capsys.readouterr().err


def test_a_bootstrap_that_never_ends_is_a_clear_error(starting: FakeCloud) -> None:
    with pytest.raises(UsageError, match="has not finished starting after 0 s"):
        running_local_cloud(environ(starting), wait_s=0)


def test_a_failed_bootstrap_is_named() -> None:
    for cloud in serve([health(bootstrapped=False, error="RuntimeError: moto is gone")]):
        with pytest.raises(UsageError, match="failed to start: RuntimeError: moto is gone"):
            running_local_cloud(environ(cloud))


def test_no_local_cloud_on_the_port_is_none() -> None:
    assert running_local_cloud({"ORDO_PORT": str(free_port())}) is None
