"""The base items behind a page of a ``KEYS_ONLY`` index, read with ``BatchGetItem``.

``gsi1`` and ``gsi2`` hold only keys, so that no password hash, token state or clinical note is
ever copied into an index. A listing queries the index for one page of keys, then reads those
items from the table here: strongly consistent, in the index's order. A key whose item is gone
(expired, or deleted after the index was read) is left out, and the page is one shorter.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ordo.errors import Unavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

READ_BATCH = 100  # BatchGetItem's limit on keys per call
ATTEMPTS = 6


def _identity(key: dict[str, Any]) -> tuple[str, str]:
    return key["pk"]["S"], key["sk"]["S"]


def base_items(
    client: DynamoDBClient,
    table: str,
    index_items: Iterable[dict[str, Any]],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[dict[str, Any]]:
    """The table's items for ``index_items`` (anything carrying ``pk`` and ``sk``), in that
    order, without the ones that no longer exist. Keys that DynamoDB leaves unprocessed are
    asked again with backoff; ``Unavailable`` (503) if some still are after ``ATTEMPTS``."""
    order = list(dict.fromkeys(_identity(item) for item in index_items))
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for start in range(0, len(order), READ_BATCH):
        keys = [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in order[start : start + READ_BATCH]]
        pending: Any = {table: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(ATTEMPTS):
            response = client.batch_get_item(RequestItems=pending)
            for item in response.get("Responses", {}).get(table, []):
                found[_identity(item)] = item
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                break
            sleep(random.uniform(0, 0.05 * 2**attempt))
        else:
            raise Unavailable("The table is busy; please retry")
    return [found[key] for key in order if key in found]
