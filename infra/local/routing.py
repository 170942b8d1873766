"""HttpApi route matching: ``/tasks/{task_id}``, greedy ``{proxy+}``, most specific route first."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    target: str

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = ""
        for part in re.split(r"(\{[^}]+\})", self.path):
            if part.startswith("{") and part.endswith("+}"):
                regex += f"(?P<{_group(part[1:-2])}>.+)"
            elif part.startswith("{"):
                regex += f"(?P<{_group(part[1:-1])}>[^/]+)"
            else:
                regex += re.escape(part)
        return re.compile(f"^{regex}$")

    @property
    def specificity(self) -> tuple[int, int, int]:
        """API Gateway prefers literal segments, then {param}, then {proxy+}."""
        greedy = int("+}" in self.path)
        params = self.path.count("{")
        return (greedy, params, -len(self.path))


def _group(name: str) -> str:
    return re.sub(r"\W", "_", name)


@dataclass(frozen=True)
class Match:
    route: Route
    path_parameters: dict[str, str]


def match(routes: list[Route], method: str, path: str) -> Match | None:
    for route in sorted(routes, key=lambda r: (r.specificity, r.method == "ANY")):
        if route.method not in (method, "ANY"):
            continue
        found = route.pattern.match(path)
        if found:
            names = re.findall(r"\{([^}+]+)\+?\}", route.path)
            return Match(route, dict(zip(names, found.groups(), strict=True)))
    return None
