"""Reading a DynamoDB table: every page of a ``Query``, one page of an index with its cursor, and
the base every table adapter shares.

botocore's ``get_paginator("query")`` does the same as :func:`query_pages`, but its first use in
a container loads the paginator model and builds the paginator's class: about 8 ms of a cold
start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ordo.storage.attributes import to_item
from ordo.storage.batch import base_items
from ordo.storage.cursors import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryOutputTypeDef


def query_pages(client: DynamoDBClient, **params: Any) -> Iterator[QueryOutputTypeDef]:
    """Each page of the query ``params`` describe, in order, until DynamoDB reports no more."""
    while True:
        page = client.query(**params)
        yield page
        if "LastEvaluatedKey" not in page:
            return
        params = params | {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def query_count(client: DynamoDBClient, **params: Any) -> int:
    """How many items the query ``params`` describe match (``Select=COUNT``), over every page."""
    return sum(page["Count"] for page in query_pages(client, Select="COUNT", **params))


@dataclass(frozen=True)
class Index:
    """A GSI that listings page through. ``keys_only``: it projects only keys, so a page's items
    are then read from the table (:func:`ordo.storage.batch.base_items`)."""

    name: str
    pk: str
    sk: str
    keys_only: bool = True


GSI1 = Index("gsi1", "gsi1pk", "gsi1sk")
GSI2 = Index("gsi2", "gsi2pk", "gsi2sk")


class DynamoTable:
    """The base of the table adapters: the client, the table, and the reads they all make."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table = table_name
        self._sleep = sleep  # between retries of unprocessed batch keys

    def _get_item(self, key: dict[str, Any]) -> dict[str, Any] | None:
        """The item at ``key``, read strongly consistently."""
        return self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get(
            "Item"
        )

    def _page(
        self,
        index: Index,
        partition: str,
        limit: int,
        cursor: str | None,
        *,
        sort: str = "",
        values: Mapping[str, Any] | None = None,
        newest_first: bool = False,
        within: Callable[[str], bool] | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of ``partition`` in ``index`` and the cursor of the next (None: the last).

        ``sort`` narrows the sort key (e.g. ``gsi1sk >= :low``, with ``values``). A cursor must
        name exactly this index's keys inside ``partition``, so it never pages through another
        partition; one whose sort key fails ``within`` (time moved the range on) ends the
        listing."""
        condition = f"{index.pk} = :partition" + (f" AND {sort}" if sort else "")
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": to_item({":partition": partition, **(values or {})}),
            "ScanIndexForward": not newest_first,
            "Limit": limit,
        }
        if cursor:
            start = decode_cursor(cursor, {"pk", "sk", index.pk, index.sk}, (index.pk, partition))
            if within is not None and not within(start[index.sk]["S"]):
                return [], None
            query["ExclusiveStartKey"] = start
        response = self._client.query(**query)
        last = response.get("LastEvaluatedKey")
        items = response.get("Items", [])
        if index.keys_only:
            items = base_items(self._client, self._table, items, sleep=self._sleep)
        return items, encode_cursor(last) if last else None
