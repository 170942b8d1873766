"""Checks shared by every request: text DynamoDB can store, and JSON of bounded shape.

DynamoDB strings are UTF-8, so a lone surrogate (which JSON's ``\\ud800`` escape can carry into
a Python ``str``) cannot be stored; it is refused when the request arrives, with a 422.

``request_problem`` and ``json_body_problem`` are what ``ordo.http`` asks of every request
before FastAPI parses it: the path and the query string must be UTF-8, and a JSON body must be
UTF-8, nest at most ``MAX_BODY_DEPTH`` deep and hold no lone surrogate. The depth is checked on
the text, before ``json.loads`` (which recurses) ever sees it.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any
from urllib.parse import unquote_to_bytes

MAX_JSON_DEPTH = 32  # a document's content, a case's notes: any JSON a request carries
MAX_BODY_DEPTH = MAX_JSON_DEPTH + 1  # the body's own object around it

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
NOT_UNICODE = "text must be valid Unicode (UTF-8, no lone surrogates)"


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


def _nests_deeper_than(text: str, max_depth: int) -> bool:
    if text.count("[") + text.count("{") <= max_depth:
        return False  # the usual body: too few brackets to be deep, whatever their order
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > max_depth


def json_body_problem(body: bytes, max_depth: int = MAX_BODY_DEPTH) -> str | None:
    """Why a JSON request body must be refused before it is parsed, or None.

    Bodies that are not JSON at all are left to the parser (a 422 from FastAPI).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return f"body is not UTF-8; {NOT_UNICODE}"
    if _nests_deeper_than(text, max_depth):
        return f"body nests deeper than {max_depth} levels"
    if _SURROGATE_ESCAPE.search(text) is None:
        return None  # UTF-8 text holds no surrogate, and no escape makes one
    try:
        value = json.loads(text)  # safe: the depth is bounded above
    except ValueError:
        return None
    try:
        check_json(value, "body", max_depth)
    except ValueError:
        return f"body contains a lone surrogate; {NOT_UNICODE}"
    return None


def request_problem(path: str, query_string: bytes) -> str | None:
    """Why a request's path or query string must be refused, or None."""
    if not is_storable_text(path):
        return f"path is not valid text; {NOT_UNICODE}"
    try:
        unquote_to_bytes(query_string.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return f"query string is not UTF-8 once percent-decoded; {NOT_UNICODE}"
    return None
