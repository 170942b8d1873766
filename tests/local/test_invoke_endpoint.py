"""``ordo local invoke`` against a running local cloud: it waits for the cloud's bootstrap (the
token keys in SSM) before a function can read them, and says so when that never comes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from bench.common import free_port
from infra.local.invoke_cli import UsageError, running_local_cloud
from tests.e2e.conftest import json_server

ENDPOINT = "http://127.0.0.1:4566"


@dataclass
class FakeCloud:
    """A local cloud's ``/_local/health`` on loopback: its port, and how often it was asked."""

    port: int = 0
    asked: int = 0


def health(*, bootstrapped: bool, error: str | None = None) -> dict[str, Any]:
    return {
        "status": "ok",
        "aws_endpoint": ENDPOINT,
        "bootstrapped": bootstrapped,
        "startup_error": error,
    }


@contextmanager
def serve(answers: list[dict[str, Any]]) -> Iterator[FakeCloud]:
    """``answers`` in turn, the last one kept."""
    cloud = FakeCloud()

    def answer() -> dict[str, Any]:
        cloud.asked += 1
        return answers[min(cloud.asked, len(answers)) - 1]

    with json_server(answer) as url:
        cloud.port = int(url.rsplit(":", 1)[1])
        yield cloud


@pytest.fixture
def starting() -> Iterator[FakeCloud]:
    with serve([health(bootstrapped=False)] * 3 + [health(bootstrapped=True)]) as cloud:
        yield cloud


def environ(cloud: FakeCloud) -> dict[str, str]:
    return {"ORDO_PORT": str(cloud.port)}


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
    failed = [health(bootstrapped=False, error="RuntimeError: moto is gone")]
    with (
        serve(failed) as cloud,
        pytest.raises(UsageError, match="failed to start: RuntimeError: moto is gone"),
    ):
        running_local_cloud(environ(cloud))


def test_no_local_cloud_on_the_port_is_none() -> None:
    assert running_local_cloud({"ORDO_PORT": str(free_port())}) is None
