"""Opaque page cursors: a query's ``LastEvaluatedKey``, base64url JSON, checked on the way back.

A cursor comes from the client, so it is validated before DynamoDB sees it: exactly the index's
key attributes, each a string, and the partition the caller is allowed to read.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from ordo.errors import InvalidInput

_INVALID = "cursor is not valid"


def encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str, attributes: set[str], partition: tuple[str, str]) -> dict[str, Any]:
    """The key behind ``cursor``; ``partition`` is (attribute, value) the query is limited to."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(_INVALID) from exc
    if not isinstance(key, dict) or set(key) != attributes:
        raise InvalidInput(_INVALID)
    for value in key.values():
        if not (isinstance(value, dict) and set(value) == {"S"} and isinstance(value["S"], str)):
            raise InvalidInput(_INVALID)
    name, expected = partition
    if key[name]["S"] != expected:
        raise InvalidInput(_INVALID)
    return key
