"""HttpApi route matching: each route's pattern is compiled once, when the route is made."""

from __future__ import annotations

import re
from typing import Any

import pytest

from infra.local.routing import Route, RouteTable, match

ROUTES = [
    Route("GET", "/tasks/{task_id}", "Status"),
    Route("GET", "/tasks/mine", "Mine"),
    Route("ANY", "/echo/{proxy+}", "Echo"),
    Route("POST", "/tasks", "Submit"),
]


def test_a_route_holds_its_compiled_pattern() -> None:
    route = Route("GET", "/items/{item_id}/parts/{part-id}", "Items")
    assert isinstance(route.pattern, re.Pattern)
    assert "pattern" in vars(route)  # kept on the route, not a property that compiles again
    assert route.parameters == ("item_id", "part-id")
    assert route == Route("GET", "/items/{item_id}/parts/{part-id}", "Items")


def test_matching_compiles_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_compiling(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"compiled a pattern while matching: {args}")

    routes = RouteTable(ROUTES)  # made (and compiled, and sorted) before compiling is refused
    monkeypatch.setattr(re, "compile", no_compiling)
    monkeypatch.setattr(re, "_compile", no_compiling)
    found = routes.match("GET", "/tasks/abc")
    assert found is not None
    assert (found.route.target, found.path_parameters) == ("Status", {"task_id": "abc"})
    assert routes.match("GET", "/nowhere") is None


def test_the_most_specific_route_wins() -> None:
    """API Gateway: literal segments before {param}, {param} before {proxy+}; ANY matches any
    method, after a route of the method itself."""
    found = match(ROUTES, "GET", "/tasks/mine")
    assert found is not None
    assert found.route.target == "Mine"
    found = match(ROUTES, "DELETE", "/echo/a/b")
    assert found is not None
    assert (found.route.target, found.path_parameters) == ("Echo", {"proxy": "a/b"})
    assert match(ROUTES, "DELETE", "/tasks") is None
