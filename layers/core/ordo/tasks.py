"""The text tasks: what each computes, how long it takes, and how much input it accepts.

Semantics operate on Unicode code points (Python ``str`` indexing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class TaskType(StrEnum):
    REVERSE = "reverse"
    SWAP_PAIRS = "swap_pairs"
    REPEAT_BY_POSITION = "repeat_by_position"


def reverse(text: str) -> str:
    return text[::-1]


def swap_pairs(text: str) -> str:
    """Swap characters 1<->2, 3<->4, ...; an odd last character stays where it is."""
    chars = list(text)
    chars[0:-1:2], chars[1::2] = chars[1::2], chars[0:-1:2]
    return "".join(chars)


def repeat_by_position(text: str) -> str:
    """The character at 1-based position i, repeated i times."""
    return "".join(char * position for position, char in enumerate(text, start=1))


@dataclass(frozen=True, slots=True)
class TaskSpec:
    run: Callable[[str], str]
    delay_seconds: float
    max_chars: int


# Limits keep input plus result of every accepted task well inside one DynamoDB item
# (400 KB), even at 4 bytes per code point:
#   reverse, swap_pairs: 20,000 chars in + 20,000 out -> at most 160 KB
#   repeat_by_position:  300 chars in + 300*301/2 = 45,150 out -> at most 182 KB
TASKS: dict[TaskType, TaskSpec] = {
    TaskType.REVERSE: TaskSpec(reverse, delay_seconds=2, max_chars=20_000),
    TaskType.SWAP_PAIRS: TaskSpec(swap_pairs, delay_seconds=5, max_chars=20_000),
    TaskType.REPEAT_BY_POSITION: TaskSpec(repeat_by_position, delay_seconds=7, max_chars=300),
}
