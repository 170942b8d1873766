"""A job kind that fails on purpose, for fault-injection tests through the real lane.

Each action is a real failure, not a simulation of one: a real division by zero, a real
recursion past the interpreter's limit, a real allocation that cannot be met, a loop that never
yields, a regular expression that holds the GIL for good.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ordo.kinds import Kind, RunContext

Action = Literal["ok", "raise", "loop", "sleep", "hog"]
Error = Literal["ZeroDivisionError", "RecursionError", "MemoryError", "KeyError", "SystemExit"]


class FaultPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["fault"] = "fault"
    action: Action = "ok"
    error: Error = "ZeroDivisionError"
    seconds: float = Field(default=0, ge=0, le=10_000, description="simulated, for sleep")
    label: str = Field(default="", max_length=100)


def _recurse(depth: int) -> int:
    return _recurse(depth + 1) + 1


def _fail(error: Error, label: str) -> object:
    if error == "ZeroDivisionError":
        return len(label) // 0
    if error == "RecursionError":
        return _recurse(0)
    if error == "MemoryError":
        return bytearray(1 << 62)
    if error == "KeyError":
        return dict[str, int]()[label]
    raise SystemExit(3)


def run_fault(payload: FaultPayload, ctx: RunContext) -> str:
    if payload.action == "raise":
        _fail(payload.error, payload.label)
    elif payload.action == "loop":
        while True:
            pass
    elif payload.action == "sleep":
        ctx.sleep(payload.seconds)
    elif payload.action == "hog":  # catastrophic backtracking: C code that never lets go
        re.match(r"(a+)+$", "a" * 64 + "!")
    return payload.label


FAULT: Kind[FaultPayload] = Kind(
    name="fault",
    payload=FaultPayload,
    run=run_fault,
    max_seconds=300,  # 3 s at the e2e suite's ORDO_TIME_SCALE of 0.01
    description="Fails on purpose (tests only).",
)
