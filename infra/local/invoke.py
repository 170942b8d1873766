"""How the local cloud's event sources call a function: the result of one invocation."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class Outcome(StrEnum):
    OK = "ok"  # the handler returned; ``payload`` is its JSON result
    ERROR = "error"  # the handler raised (Lambda: Unhandled)
    TIMEOUT = "timeout"  # the invocation outlived the function's Timeout and was killed
    THROTTLED = "throttled"  # reserved concurrency was exhausted (Lambda: TooManyRequests)


@dataclass(frozen=True)
class Invocation:
    outcome: Outcome
    payload: Any = None
    error: str | None = None
    duration_ms: float = 0.0


class Invoker(Protocol):
    def invoke(self, logical_id: str, event: dict[str, Any]) -> Invocation:
        """Run one invocation synchronously. Returns THROTTLED at once when no slot is free."""
        ...
