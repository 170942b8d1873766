"""The local cloud, in process, running the fixture application in ``fixture/template.yaml``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import boto3
import httpx
import pytest

from infra.local.cloud import LocalCloud

FIXTURE = Path(__file__).parent / "fixture" / "template.yaml"
T = TypeVar("T")


def eventually[T](probe: Callable[[], T], timeout: float = 10, interval: float = 0.02) -> T:
    """Poll until ``probe`` returns something truthy; no fixed sleeps."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    local = LocalCloud(port=0, template=FIXTURE, env_overrides={"ORDO_FIXTURE": "from-shell"})
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def http(cloud: LocalCloud) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cloud.url, timeout=30) as client:
        yield client


def aws(cloud: LocalCloud, service: str) -> Any:
    return boto3.client(
        cast(Any, service),
        region_name="us-east-1",
        endpoint_url=cloud.aws_url,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def records(cloud: LocalCloud, kind: str) -> list[dict[str, Any]]:
    table = cloud.stack.physical["RecordsTable"]["Ref"]
    items = aws(cloud, "dynamodb").query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": kind}},
        ConsistentRead=True,
    )["Items"]
    return [{key: next(iter(value.values())) for key, value in item.items()} for item in items]
