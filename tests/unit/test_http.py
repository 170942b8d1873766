"""The shared app factory and entry point: one access-log line per request, whatever the
outcome, carrying the invocation's context."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local.context import LambdaContext
from infra.local.events import http_event
from ordo.errors import NotFound, Unavailable
from ordo.http import api_app, lambda_handler
from ordo.observability import logger

app = api_app("probe")


@app.get("/fine")
async def fine() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/missing")
def missing() -> None:
    raise NotFound("nothing here")


@app.get("/crash")
def crash() -> None:
    raise RuntimeError("boom")


@app.get("/throttled")
def throttled() -> None:
    from botocore.exceptions import ClientError

    raise ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
        "GetItem",
    )


@app.get("/unreachable")
def unreachable() -> None:
    from botocore.exceptions import EndpointConnectionError

    raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")


@app.get("/conflicted")
def conflicted() -> None:
    raise Unavailable("Too many simultaneous changes; please retry")


@app.get("/denied")
def denied() -> None:
    from botocore.exceptions import ClientError

    raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetItem")


handler = lambda_handler(app)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def access_log() -> Iterator[list[logging.LogRecord]]:
    collect = _Collect()
    underlying = logging.getLogger(logger.name)
    level = underlying.level
    underlying.addHandler(collect)
    underlying.setLevel(logging.INFO)
    try:
        yield collect.records
    finally:
        underlying.removeHandler(collect)
        underlying.setLevel(level)


def _call(path: str, request_id: str = "req-1") -> dict[str, Any]:
    event = http_event("GET", path, route=path)
    context = LambdaContext("Probe", timeout_seconds=3, aws_request_id=request_id)
    return handler(event, context)


@pytest.mark.parametrize(("path", "status"), [("/fine", 200), ("/missing", 404), ("/crash", 500)])
def test_each_request_logs_one_line_with_its_status(
    access_log: list[logging.LogRecord], path: str, status: int
) -> None:
    response = _call(path)
    assert response["statusCode"] == status
    lines = [r for r in access_log if r.getMessage() == "request"]
    assert len(lines) == 1
    line = lines[0].__dict__
    assert (line["method"], line["path"], line["status"]) == ("GET", path, status)
    assert line["duration_ms"] >= 0


def test_each_line_carries_the_invocation_and_its_request_id_and_no_earlier_ones(
    access_log: list[logging.LogRecord],
) -> None:
    _call("/fine")
    first = logger.get_current_keys()
    logger.append_keys(left_over="from the last request")
    _call("/missing", request_id="req-2")
    keys = logger.get_current_keys()
    assert (first["function_name"], first["function_request_id"]) == ("Probe", "req-1")
    assert (keys["function_request_id"], keys["correlation_id"]) == ("req-2", "req-2")
    assert "left_over" not in keys


def test_an_unhandled_error_is_still_a_json_500_with_detail() -> None:
    response = _call("/crash")
    assert response["statusCode"] == 500
    assert response["body"] == '{"detail":"Internal server error"}'


@pytest.mark.parametrize("path", ["/throttled", "/unreachable", "/conflicted"])
def test_a_dependency_that_is_busy_or_unreachable_is_a_503_to_retry(path: str) -> None:
    response = _call(path)
    assert response["statusCode"] == 503
    assert response["headers"]["retry-after"] == "1"
    assert "please retry" in response["body"]
    assert '"detail"' in response["body"]


def test_an_aws_error_that_retrying_cannot_fix_stays_a_500() -> None:
    assert _call("/denied")["statusCode"] == 500
