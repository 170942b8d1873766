"""No input gets a 5xx: text that is not UTF-8, huge decimals, forged cursors, deep JSON.

Each request goes through the real handler (API Gateway v2 event, Mangum, FastAPI) on moto.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from ordo.validation import MAX_BODY_DEPTH, MAX_JSON_DEPTH
from tests.harness import InProcessStack

LONE = {"high": "\ud800", "low": "\udc00"}
HOLE = "@@"  # where a body gets the hostile text: in a value, or in a key


def _fill(value: Any, text: str) -> Any:
    if isinstance(value, str):
        return value.replace(HOLE, text)
    if isinstance(value, dict):
        return {_fill(k, text): _fill(v, text) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, text) for v in value]
    return value


def _refused(response: Any, words: str) -> str | None:
    """None if ``response`` is the 422 naming ``words``; else what it was instead."""
    if response.status == 422 and words in response.body["detail"]:
        return None
    return f"{response.status} {response.body}"


def _all_refused(cases: dict[str, Any], words: str) -> None:
    """Every case (name -> response) is a 422 naming ``words``: one test, one cold start."""
    wrong = {
        name: answer for name, response in cases.items() if (answer := _refused(response, words))
    }
    assert not wrong, wrong


# --- text that is not Unicode --------------------------------------------------------------

BODIES = [
    ("POST", "/tasks", {"type": "reverse", "data": "a@@b"}),
    ("POST", "/tasks", {"type": "reverse", "data": "ab", "@@": 1}),
    ("POST", "/upload", {"type": "invoice", "content": {"x": "@@"}}),
    ("POST", "/upload", {"type": "invoice", "content": {}, "metaData": {"@@": 1}}),
    ("POST", "/upload", {"type": "invoice", "content": {"a": [{"@@": None}]}}),
    ("POST", "/cases", {"notes": "n@@"}),
    ("POST", "/cases", {"notes": "n", "@@": "x"}),
    ("POST", "/jobs", {"kind": "reverse", "text": "@@"}),
    ("POST", "/process", {"job_id": "@@", "document": "invoice"}),
    ("POST", "/auth/register", {"email": "a@example.com", "username": "u@@", "password": "P-1"}),
    ("POST", "/auth/login/json", {"username": "u@@", "password": "x"}),
    ("POST", "/auth/login/json", {"username": "u", "password": "x", "@@": 1}),
    ("POST", "/auth/refresh", {"refresh_token": "@@"}),
    ("POST", "/products", {"name": "n@@", "price": "1", "sku": "s"}),
    ("PUT", "/products/p1", {"description": "@@"}),
    ("PUT", "/users/u1", {"email": "@@@example.com"}),
    ("PUT", "/users/u1", {"username": "u@@", "current_password": "x"}),
    ("PUT", "/users/{me}/role", {"@@": "admin"}),
]


@pytest.mark.parametrize("lone", LONE.values(), ids=LONE.keys())
def test_a_lone_surrogate_anywhere_in_a_json_body_is_a_422(
    anonymous_cloud: InProcessStack, lone: str
) -> None:
    """Refused at the door, before the route's own checks (and before sign-in is checked)."""
    # json.dumps escapes the lone surrogate as ``\\ud800``: valid JSON, but not valid Unicode.
    cases = {
        f"{method} {path} {body}": anonymous_cloud.request(method, path, _fill(body, lone))
        for method, path, body in BODIES
    }
    _all_refused(cases, "valid Unicode")


def test_a_surrogate_pair_and_an_escaped_backslash_are_fine(cloud: InProcessStack) -> None:
    body = '{"type": "reverse", "data": "\\ud83d\\ude00 \\\\ud800"}'  # an emoji, then \ud800
    response = cloud.request(
        "POST", "/tasks", body=body, headers={"content-type": "application/json"}
    )
    assert response.status == 202, response.body


NOT_UTF8 = {
    "application/json": b'{"type": "reverse", "data": "\xff"}',
    "application/json; charset=utf-8": b'{"type": "reverse", "data": "\xed\xa0\x80"}',  # CESU
    "": b'{"type": "reverse", "data": "\xc3"}',  # no content type: FastAPI reads JSON anyway
    "application/problem+json": '{"type": "reverse", "data": "x"}'.encode("utf-16"),
}


def test_a_json_body_that_is_not_utf8_is_a_422(anonymous_cloud: InProcessStack) -> None:
    cases = {
        kind: anonymous_cloud.request(
            "POST", "/tasks", body=body, headers={"content-type": kind} if kind else {}
        )
        for kind, body in NOT_UTF8.items()
    }
    _all_refused(cases, "not UTF-8")


def test_a_query_string_that_is_not_utf8_is_a_422(anonymous_cloud: InProcessStack) -> None:
    cases = {
        query: anonymous_cloud.request("GET", "/products/search", query=f"q=a&{query}")
        for query in ("name=%ff", "category=%ED%A0%80", "name=%C3", "q%ff=1")
    }
    _all_refused(cases, "query string is not UTF-8")


def test_a_form_that_is_not_utf8_is_a_422(anonymous_cloud: InProcessStack) -> None:
    response = anonymous_cloud.request(
        "POST",
        "/auth/login",
        body="username=%ED%A0%80&password=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    _all_refused({"form": response}, "not UTF-8")


# --- decimals ------------------------------------------------------------------------------


TOO_LONG = [
    "min_price=1e999999",  # the one that overflowed
    "max_price=1e999999",
    "min_price=1e-999999",
    "max_price=1" + "0" * 60,
    "min_price=0.00001",
    "max_price=NaN",
]


@pytest.mark.parametrize("path", ["/products", "/products/search"])
def test_a_decimal_query_parameter_too_long_is_a_422(
    anonymous_cloud: InProcessStack, path: str
) -> None:
    cases = {
        param: anonymous_cloud.request("GET", path, query=f"q=a&{param}") for param in TOO_LONG
    }
    _all_refused(cases, "_price")


def test_a_decimal_query_parameter_within_its_digits_is_accepted(
    anonymous_cloud: InProcessStack,
) -> None:
    for param in ("min_price=5.505", "max_price=999999999999.9999", "min_price=0"):
        response = anonymous_cloud.request("GET", "/products", query=param)
        assert response.status == 200, (param, response.body)


# --- cursors -----------------------------------------------------------------------------


def _cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _key(**values: str) -> dict[str, Any]:
    return {name: {"S": value} for name, value in values.items()}


FORGED = {
    "all empty": ("", _cursor(_key(pk="", sk="", gsi1pk="POSTS", gsi1sk=""))),
    "one empty": ("", _cursor(_key(pk="POST#1", sk="", gsi1pk="POSTS", gsi1sk="x"))),
    "by user": ("user_id=1&", _cursor(_key(pk="", sk="P", gsi2pk="POSTS#USER#1", gsi2sk="1"))),
    "surrogate": ("", _cursor(_key(pk="\ud800", sk="P", gsi1pk="POSTS", gsi1sk="1"))),
    "deep": ("", base64.urlsafe_b64encode(b"[" * 1500).decode()),  # deeper than json.loads goes
}


def test_a_forged_cursor_on_the_public_data_route_is_a_422(anonymous_cloud: InProcessStack) -> None:
    cases = {
        name: anonymous_cloud.request("GET", "/data", query=f"{query}cursor={cursor}")
        for name, (query, cursor) in FORGED.items()
    }
    _all_refused(cases, "cursor")


# --- depth -------------------------------------------------------------------------------

DEEP = 10_000


TOO_DEEP = {
    "upload": ("/upload", '{"type":"invoice","content":{"a":' + "[" * DEEP + "]" * DEEP + "}}"),
    "lists": ("/tasks", "[" * DEEP + "]" * DEEP),
    "objects": ("/tasks", '{"type":"reverse","data":' + '{"a":' * DEEP + "1" + "}" * DEEP + "}"),
    "unclosed": ("/auth/login/json", "[" * 100_000),
    "one too deep": ("/cases", "[" * (MAX_BODY_DEPTH + 1) + "]" * (MAX_BODY_DEPTH + 1)),
}


def test_json_nested_too_deep_is_a_422_before_it_is_parsed(anonymous_cloud: InProcessStack) -> None:
    json_type = {"content-type": "application/json"}
    cases = {
        name: anonymous_cloud.request("POST", path, body=body, headers=json_type)
        for name, (path, body) in TOO_DEEP.items()
    }
    _all_refused(cases, f"deeper than {MAX_BODY_DEPTH} levels")


def test_brackets_inside_strings_do_not_count_as_depth(cloud: InProcessStack) -> None:
    text = "[{" * 5_000 + '\\"'  # also an escaped quote, which does not end the string
    response = cloud.request("POST", "/tasks", {"type": "reverse", "data": text})
    assert response.status == 202, response.body


def test_json_at_the_depth_limit_is_parsed(cloud: InProcessStack) -> None:
    content: Any = 1
    for _ in range(MAX_JSON_DEPTH - 1):  # content's own object is its first level
        content = [content]
    response = cloud.request("POST", "/upload", {"type": "invoice", "content": {"a": content[0]}})
    assert response.status != 422 or "deeper" not in response.body["detail"], response.body
