"""HttpApi route matching: ``/tasks/{task_id}``, greedy ``{proxy+}``, most specific route first.

Each route's pattern is compiled once, when the route is made; a request only matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    target: str
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    parameters: tuple[str, ...] = field(init=False, repr=False, compare=False)
    # API Gateway prefers literal segments, then {param}, then {proxy+}; a method before ANY.
    precedence: tuple[int, int, int, bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = ""
        for part in re.split(r"(\{[^}]+\})", self.path):
            if part.startswith("{") and part.endswith("+}"):
                regex += f"(?P<{_group(part[1:-2])}>.+)"
            elif part.startswith("{"):
                regex += f"(?P<{_group(part[1:-1])}>[^/]+)"
            else:
                regex += re.escape(part)
        greedy = int("+}" in self.path)
        computed = {
            "pattern": re.compile(f"^{regex}$"),
            "parameters": tuple(re.findall(r"\{([^}+]+)\+?\}", self.path)),
            "precedence": (greedy, self.path.count("{"), -len(self.path), self.method == "ANY"),
        }
        for name, value in computed.items():
            object.__setattr__(self, name, value)  # frozen: set once, here


def _group(name: str) -> str:
    return re.sub(r"\W", "_", name)


@dataclass(frozen=True)
class Match:
    route: Route
    path_parameters: dict[str, str]


class RouteTable:
    """Routes in API Gateway's order of precedence, sorted once: a request only matches."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = tuple(sorted(routes, key=lambda r: r.precedence))

    def match(self, method: str, path: str) -> Match | None:
        for route in self.routes:
            if route.method not in (method, "ANY"):
                continue
            found = route.pattern.match(path)
            if found:
                return Match(route, dict(zip(route.parameters, found.groups(), strict=True)))
        return None


def match(routes: Iterable[Route], method: str, path: str) -> Match | None:
    """One match against ``routes`` in any order (a server keeps a :class:`RouteTable`)."""
    return RouteTable(routes).match(method, path)
