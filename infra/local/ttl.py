"""DynamoDB Time to Live for the local cloud: deletes expired items of the template's tables.

A table takes part when its ``TimeToLiveSpecification`` is enabled. As in DynamoDB, an item is
expired when its TTL attribute is a top-level Number of epoch seconds below the current time
(here, the :class:`LocalClock`), and no more than five years in the past; items without the
attribute, or with any other type, are ignored
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-before-you-start.html).

Unlike DynamoDB, which deletes expired items in the background "typically within 48 hours"
(until then they still show up in reads), the local sweeper deletes them within about 5 seconds,
and at once when the clock is advanced. It finds them with a Scan, fine locally and nowhere
else. Each delete is conditional on the item still being expired, so an item whose TTL was
pushed forward between the Scan and the delete survives.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from infra.local.clock import LocalClock
    from infra.local.stack import Stack

log = logging.getLogger("ordo.local.ttl")

INTERVAL = 5.0  # seconds on the local clock between sweeps (each one scans the table)
ERROR_WAIT = 1.0  # seconds to pause after an unexpected exception
FIVE_YEARS = 5 * 365 * 86_400  # older expiry times are left alone, as DynamoDB does
_EXPIRED = "attribute_type(#ttl, :number) AND #ttl < :now AND #ttl >= :floor"


@dataclass(frozen=True)
class TtlTable:
    """A table with TTL enabled and the attribute holding its items' expiry time."""

    name: str
    attribute: str


class TtlSweeper:
    """Deletes expired items of TTL-enabled tables, on the local clock."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        tables: list[TtlTable],
        clock: LocalClock,
        interval: float = INTERVAL,
    ) -> None:
        self.dynamodb = dynamodb
        self.tables = tables
        self.clock = clock
        self.interval = interval
        self.deleted = 0  # items deleted since start
        self._keys: dict[str, list[str]] = {}

    @classmethod
    def from_stack(cls, stack: Stack, dynamodb: DynamoDBClient, clock: LocalClock) -> TtlSweeper:
        """A sweeper for every table of the template whose TTL is enabled."""
        tables: list[TtlTable] = []
        for lid, resource in stack.of_type("AWS::DynamoDB::Table").items():
            spec = stack.resolve(resource.get("Properties", {}).get("TimeToLiveSpecification"))
            if isinstance(spec, dict) and spec.get("Enabled") in (True, "true", "True"):
                tables.append(TtlTable(stack.physical[lid]["Ref"], str(spec["AttributeName"])))
        return cls(dynamodb, tables, clock)

    def run(self, stop: threading.Event) -> None:
        """Sweep every ``interval`` on the local clock until ``stop`` is set; never raises."""
        while not stop.is_set():
            started = self.clock.time()
            try:
                self.sweep_once()
            except Exception:
                log.exception("TTL sweep failed; carrying on")
                stop.wait(ERROR_WAIT)
                continue
            # From the sweep's start: an advance made during a slow sweep is not lost.
            self.clock.sleep_until(started + self.interval, stop)

    def sweep_once(self) -> int:
        """Delete every expired item now. Returns how many were deleted."""
        deleted = 0
        for table in self.tables:
            try:
                deleted += self._sweep(table)
            except Exception:
                log.exception("TTL sweep of %s failed", table.name)
        self.deleted += deleted
        return deleted

    def _sweep(self, table: TtlTable) -> int:
        keys = self._key_names(table.name)
        now = self.clock.time()
        names = {"#ttl": table.attribute} | {f"#k{n}": key for n, key in enumerate(keys)}
        values: dict[str, Any] = {
            ":number": {"S": "N"},
            ":now": {"N": f"{now:.3f}"},
            ":floor": {"N": f"{now - FIVE_YEARS:.3f}"},
        }
        scan: dict[str, Any] = {
            "TableName": table.name,
            "FilterExpression": _EXPIRED,
            "ProjectionExpression": ", ".join(f"#k{n}" for n in range(len(keys))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        deleted = 0
        while True:
            page = self.dynamodb.scan(**scan)
            for item in page.get("Items", []):
                if self._delete(table, item, keys, values):
                    deleted += 1
            if "LastEvaluatedKey" not in page:
                return deleted
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _delete(
        self, table: TtlTable, item: dict[str, Any], keys: list[str], values: dict[str, Any]
    ) -> bool:
        try:
            self.dynamodb.delete_item(
                TableName=table.name,
                Key={key: item[key] for key in keys},
                ConditionExpression=_EXPIRED,
                ExpressionAttributeNames={"#ttl": table.attribute},
                ExpressionAttributeValues=values,
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False  # changed since the scan: no longer expired
        return True

    def _key_names(self, table: str) -> list[str]:
        if table not in self._keys:
            schema = self.dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
            hash_first = sorted(schema, key=lambda key: key["KeyType"] != "HASH")
            self._keys[table] = [key["AttributeName"] for key in hash_first]
        return self._keys[table]
