"""DynamoDB attribute values to Python and back.

A small replacement for ``boto3.dynamodb.types``, whose import drags in boto3, s3transfer and
multiprocessing (about 50 ms of every cold start). Numbers come back as ``int`` or ``Decimal``;
floats are refused, as boto3 refuses them, because DynamoDB numbers are exact decimals.

A job's payload, and a result its kind declares JSON, are JSON text in the domain;
:func:`to_json_attribute` stores that text as the JSON value it holds, and
:func:`from_json_attribute` gives the very same text back, numbers with their own digits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any


def to_attribute(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Mapping):
        return {"M": {str(key): to_attribute(item) for key, item in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute(item) for item in value]}
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def from_attribute(attribute: Mapping[str, Any]) -> Any:
    ((kind, value),) = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        number = Decimal(value)
        return int(number) if number == number.to_integral_value() and "." not in value else number
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return {key: from_attribute(item) for key, item in value.items()}
    if kind == "L":
        return [from_attribute(item) for item in value]
    raise TypeError(f"unsupported DynamoDB attribute type {kind}")


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: to_attribute(value) for name, value in values.items()}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: from_attribute(value) for name, value in item.items()}


# DynamoDB's limits on a number (38 significant digits) and on nesting (32 levels).
_MAX_DIGITS = 38
_MAX_DEPTH = 32


def _compact(value: Any) -> str:
    """``value`` as compact JSON, each number with its own digits (never through ``float``)."""
    if isinstance(value, dict):
        members = (f"{_compact(key)}:{_compact(item)}" for key, item in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_compact(item) for item in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _storable(value: Any, depth: int = 0) -> bool:
    """Whether DynamoDB keeps ``value`` as it is: nesting, map keys, and numbers it neither
    rounds nor reformats (``1.0`` comes back as ``1``, ``1e-07`` without its exponent)."""
    if depth > _MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return all(key and _storable(item, depth + 1) for key, item in value.items())
    if isinstance(value, list):
        return all(_storable(item, depth + 1) for item in value)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    digits = str(value).lstrip("-")
    if isinstance(value, Decimal) and ("E" in digits or digits.endswith("0")):
        return False
    return len(digits.replace(".", "").lstrip("0")) <= _MAX_DIGITS


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def to_json_attribute(text: str) -> dict[str, Any]:
    """``text`` as DynamoDB stores it: a JSON object or array as a native map or list, when it
    reads back as exactly this text (compact, its numbers as DynamoDB returns them); any other
    text as a string."""
    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        return {"S": text}
    if isinstance(value, dict | list) and _storable(value) and _compact(value) == text:
        return to_attribute(value)
    return {"S": text}


def from_json_attribute(attribute: Mapping[str, Any]) -> str:
    """The text :func:`to_json_attribute` stored. A string comes back as it is: every item
    written before payloads and results were stored as JSON holds one."""
    if "S" in attribute:
        return str(attribute["S"])
    return _compact(from_attribute(attribute))
