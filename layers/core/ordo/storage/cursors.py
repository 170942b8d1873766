"""Opaque page cursors: a query's ``LastEvaluatedKey``, base64url JSON, checked on the way back.

A cursor comes from the client, so it is validated before DynamoDB sees it: exactly the index's
key attributes, each a non-empty string, and the partition the caller is allowed to read.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from ordo.errors import InvalidInput
from ordo.validation import is_storable_text

_INVALID = "cursor is not valid"


def encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str, attributes: set[str], partition: tuple[str, str]) -> dict[str, Any]:
    """The key behind ``cursor``; ``partition`` is (attribute, value) the query is limited to."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, RecursionError) as exc:  # a forged cursor may nest arbitrarily deep
        raise InvalidInput(_INVALID) from exc
    if not isinstance(key, dict) or set(key) != attributes:
        raise InvalidInput(_INVALID)
    for value in key.values():
        # DynamoDB refuses an empty string as a key value, and text it cannot store as UTF-8.
        if not (
            isinstance(value, dict)
            and set(value) == {"S"}
            and isinstance(value["S"], str)
            and value["S"]
            and is_storable_text(value["S"])
        ):
            raise InvalidInput(_INVALID)
    name, expected = partition
    if key[name]["S"] != expected:
        raise InvalidInput(_INVALID)
    return key
