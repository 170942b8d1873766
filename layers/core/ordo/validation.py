"""Checks shared by request models: text DynamoDB can store, and JSON of bounded shape.

DynamoDB strings are UTF-8, so a lone surrogate (which JSON's ``\\ud800`` escape can carry into
a Python ``str``) cannot be stored; it is refused when the request arrives, with a 422.
"""

from __future__ import annotations

from typing import Any

MAX_JSON_DEPTH = 32


def is_storable_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def require_storable_text(text: str, field: str) -> str:
    if not is_storable_text(text):
        raise ValueError(f"{field} contains a lone surrogate; text must be valid Unicode")
    return text


def check_json(value: Any, field: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``value`` (parsed JSON) nests at most ``max_depth`` deep and its text is storable.

    Iterative, so no input can exhaust the interpreter's recursion limit here.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise ValueError(f"{field} nests deeper than {max_depth} levels")
            children = item.values() if isinstance(item, dict) else item
            if isinstance(item, dict):
                for key in item:
                    require_storable_text(str(key), field)
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            require_storable_text(item, field)
    return value
