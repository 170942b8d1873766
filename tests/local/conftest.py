"""The local cloud, in process, running the fixture application in ``fixture/template.yaml``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import boto3
import httpx
import pytest

from infra.local.cloud import LocalCloud
from infra.local.stack import Function

FIXTURE = Path(__file__).parent / "fixture" / "template.yaml"


def fixture_function(logical_id: str, code_uri: Path, **changes: Any) -> Function:
    """One of the fixture's functions: ``app.handler``, 5 s, 128 MB, no reserved concurrency and
    no environment of its own, unless ``changes`` say otherwise."""
    fields: dict[str, Any] = {
        "logical_id": logical_id,
        "code_uri": code_uri,
        "handler": "app.handler",
        "timeout": 5,
        "memory": 128,
        "reserved_concurrency": None,
        "environment": {},
    }
    return Function(**(fields | changes))


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
