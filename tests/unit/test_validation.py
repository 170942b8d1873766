"""The checks every request passes before FastAPI parses it (``ordo.validation``)."""

from __future__ import annotations

import json
import time

import pytest

from ordo.validation import MAX_BODY_DEPTH, json_body_problem, request_problem


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b'{"a": [1, {"b": "c"}]}',
        nested(MAX_BODY_DEPTH),
        json.dumps({"text": "[[[[{{{{" * 1000}).encode(),  # brackets in strings are text
        json.dumps({"text": '\\"[[[[' * 100}).encode(),  # escaped quotes do not end a string
        json.dumps({"emoji": "\U0001f600"}).encode(),  # a pair of surrogate escapes
        json.dumps({"ud800": "\\ud800"}).encode(),  # a backslash, then "ud800": text
        '{"caf\u00e9": "\u00fc"}'.encode(),
        b"not json at all [[[",  # left to the parser, which answers 422
    ],
)
def test_bodies_any_route_may_take_pass(body: bytes) -> None:
    assert json_body_problem(body) is None


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (nested(MAX_BODY_DEPTH + 1), "deeper than 33"),
        (nested(10_000), "deeper than 33"),
        (b"[" * 1_000_000, "deeper than 33"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "deeper than 33"),
        (json.dumps({"x": "\ud800"}).encode(), "lone surrogate"),
        (json.dumps({"\udc00": 1}).encode(), "lone surrogate"),
        (json.dumps([["\ud83d"]]).encode(), "lone surrogate"),  # half a pair
        (b'"\xff"', "not UTF-8"),
        (b'"\xed\xa0\x80"', "not UTF-8"),  # a surrogate, encoded anyway
        ('"x"'.encode("utf-16"), "not UTF-8"),
    ],
)
def test_bodies_no_route_can_take_are_named(body: bytes, problem: str) -> None:
    found = json_body_problem(body)
    assert found is not None
    assert problem in found


def test_a_large_body_is_checked_quickly() -> None:
    """10 MB (API Gateway's limit) of shallow brackets: checked in C, not a Python loop."""
    body = b"[" + b"[]," * 3_000_000 + b"[]]"
    started = time.perf_counter()
    assert json_body_problem(body) is None
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    ("path", "query", "fine"),
    [
        ("/products", b"name=caf%C3%A9&q=a+b", True),
        ("/products/caf\u00e9", b"", True),
        ("/products", b"name=%ff", False),
        ("/products", b"name=%ED%A0%80", False),
        ("/products", b"%C3=1", False),
        ("/products/\ud800", b"", False),
    ],
)
def test_paths_and_query_strings_must_be_utf8(path: str, query: bytes, fine: bool) -> None:
    assert (request_problem(path, query) is None) is fine
