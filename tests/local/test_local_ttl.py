"""The local cloud's DynamoDB TTL sweeper against moto, on a small fixture template."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.local.clock import LocalClock
from infra.local.stack import Stack
from infra.local.ttl import TtlSweeper, TtlTable
from tests.waiting import eventually

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Records:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
      TimeToLiveSpecification:
        AttributeName: expires_at
        Enabled: true
  Keep:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: id, AttributeType: S}
      KeySchema:
        - {AttributeName: id, KeyType: HASH}
      TimeToLiveSpecification:
        AttributeName: expires_at
        Enabled: false
"""


@dataclass
class Tables:
    stack: Stack
    dynamodb: Any
    clock: LocalClock
    sweeper: TtlSweeper

    @property
    def records(self) -> str:
        return self.stack.physical["Records"]["Ref"]

    def put(self, sk: str, ttl: dict[str, Any] | None) -> None:
        item: dict[str, Any] = {"pk": {"S": "job"}, "sk": {"S": sk}}
        if ttl is not None:
            item["expires_at"] = ttl
        self.dynamodb.put_item(TableName=self.records, Item=item)

    def left(self) -> list[str]:
        items = self.dynamodb.scan(TableName=self.records)["Items"]
        return sorted(item["sk"]["S"] for item in items)

    def at(self, seconds_from_now: float) -> dict[str, str]:
        return {"N": str(int(self.clock.time() + seconds_from_now))}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    path: Path = tmp_path_factory.mktemp("ttl") / "template.yaml"
    path.write_text(TEMPLATE)
    return Stack.load(name="fixture", path=path)


@pytest.fixture
def tables(stack: Stack) -> Iterator[Tables]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        stack.provision(dynamodb, boto3.client("sqs"))
        clock = LocalClock()
        yield Tables(stack, dynamodb, clock, TtlSweeper.from_stack(stack, dynamodb, clock))


def test_only_tables_with_ttl_enabled_are_swept(tables: Tables) -> None:
    """TTL applies to a table whose TimeToLiveSpecification is Enabled, on its AttributeName."""
    assert tables.sweeper.tables == [TtlTable(tables.records, "expires_at")]


def test_sweep_deletes_expired_items_only(tables: Tables) -> None:
    """An item expires when its TTL attribute is a Number of epoch seconds below now; missing
    or non-Number attributes, and expiry times over five years old, are ignored."""
    tables.put("expired", tables.at(-10))
    tables.put("expired-decimal", {"N": f"{tables.clock.time() - 0.5:.3f}"})
    tables.put("future", tables.at(3600))
    tables.put("string", {"S": str(int(tables.clock.time()) - 10)})
    tables.put("no-ttl", None)
    tables.put("ancient", {"N": "1000000000"})  # 2001: more than five years ago
    tables.put("milliseconds", {"N": str(int(tables.clock.time() * 1000))})  # far future

    assert tables.sweeper.sweep_once() == 2
    assert tables.left() == ["ancient", "future", "milliseconds", "no-ttl", "string"]
    assert tables.sweeper.sweep_once() == 0
    assert tables.sweeper.deleted == 2


def test_items_expire_as_the_clock_moves(tables: Tables) -> None:
    """Expiry is judged on the local clock: advancing it past an item's TTL expires it."""
    tables.put("soon", tables.at(60))
    assert tables.sweeper.sweep_once() == 0
    tables.clock.advance(61)
    assert tables.sweeper.sweep_once() == 1
    assert tables.left() == []


def test_an_item_renewed_after_the_scan_survives(tables: Tables) -> None:
    """TTL deletes an item only if it is still expired when deleted (the delete is
    conditional), so pushing expires_at forward saves it."""
    tables.put("renewed", tables.at(-10))

    class RenewingClient:
        """Renews the item between the sweeper's Scan and its delete."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def scan(self, **kwargs: Any) -> Any:
            page = self.inner.scan(**kwargs)
            tables.put("renewed", tables.at(3600))
            return page

    renewing: Any = RenewingClient(tables.dynamodb)
    sweeper = TtlSweeper(renewing, tables.sweeper.tables, tables.clock)
    assert sweeper.sweep_once() == 0
    assert tables.left() == ["renewed"]


def test_a_missing_table_does_not_stop_the_others(tables: Tables) -> None:
    """The sweeper logs a failing table and goes on with the rest."""
    tables.put("expired", tables.at(-10))
    gone = TtlTable("no-such-table", "expires_at")
    sweeper = TtlSweeper(tables.dynamodb, [gone, *tables.sweeper.tables], tables.clock)
    assert sweeper.sweep_once() == 1


def test_run_sweeps_when_the_clock_is_advanced(tables: Tables) -> None:
    """The loop sweeps every interval of the local clock, at once when it is advanced, and
    stops when told to."""
    tables.put("later", tables.at(600))
    stop = threading.Event()
    thread = threading.Thread(target=tables.sweeper.run, args=(stop,), daemon=True)
    thread.start()
    try:
        # A first sweep is done once the loop sleeps on the clock: it kept the later item.
        assert eventually(lambda: tables.clock.sleeps_begun(thread.name) >= 1)
        assert tables.left() == ["later"]
        tables.clock.advance(601)
        assert eventually(lambda: tables.left() == [], timeout=2)
    finally:
        stop.set()
        thread.join(timeout=2)
    assert not thread.is_alive()
