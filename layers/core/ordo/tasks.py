"""The text tasks: what each computes, how long it takes, how much input it accepts, and the
``/tasks`` use cases.

Semantics operate on Unicode code points (Python ``str`` indexing).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ordo.errors import ResultNotReady, TaskNotFound
from ordo.jobs import (
    Job,
    JobQueue,
    JobStatus,
    JobTable,
    accept,
    is_job_id,
    new_job,
    queue_position,
)
from ordo.kinds import Kind, RunContext
from ordo.security import Viewer, visible
from ordo.validation import require_storable_text


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


# --- payloads and kinds -------------------------------------------------------------------


class TextPayload(BaseModel):
    """A text task's input. Each task's limit keeps input plus result of every accepted task
    well inside one DynamoDB item (400 KB), even at 4 bytes per code point:

    * reverse, swap_pairs: 20,000 chars in + 20,000 out -> at most 160 KB
    * repeat_by_position: 300 chars in + 300*301/2 = 45,150 out -> at most 182 KB
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    MAX_CHARS: ClassVar[int]
    DELAY_SECONDS: ClassVar[float]

    kind: str
    text: str = Field(description="The text to transform. Empty text is valid.")

    @field_validator("text")
    @classmethod
    def _storable(cls, text: str) -> str:
        return require_storable_text(text, "text")

    @model_validator(mode="after")
    def _within_limit(self) -> TextPayload:
        check_length(self.kind, self.text)
        return self


class ReversePayload(TextPayload):
    MAX_CHARS = 20_000
    DELAY_SECONDS = 2.0
    kind: Literal["reverse"] = "reverse"


class SwapPairsPayload(TextPayload):
    MAX_CHARS = 20_000
    DELAY_SECONDS = 5.0
    kind: Literal["swap_pairs"] = "swap_pairs"


class RepeatByPositionPayload(TextPayload):
    MAX_CHARS = 300
    DELAY_SECONDS = 7.0
    kind: Literal["repeat_by_position"] = "repeat_by_position"


PAYLOADS: dict[str, type[TextPayload]] = {
    TaskType.REVERSE: ReversePayload,
    TaskType.SWAP_PAIRS: SwapPairsPayload,
    TaskType.REPEAT_BY_POSITION: RepeatByPositionPayload,
}


def check_length(kind: str, text: str) -> None:
    limit = PAYLOADS[kind].MAX_CHARS
    if len(text) > limit:
        raise ValueError(f"data is {len(text)} characters; {kind} accepts at most {limit}")


TRANSFORMS: dict[str, Callable[[str], str]] = {
    TaskType.REVERSE: reverse,
    TaskType.SWAP_PAIRS: swap_pairs,
    TaskType.REPEAT_BY_POSITION: repeat_by_position,
}


def run_text_task(payload: TextPayload, ctx: RunContext) -> str:
    ctx.sleep(payload.DELAY_SECONDS)
    return TRANSFORMS[payload.kind](payload.text)


def _text_kind(task: TaskType, max_seconds: float) -> Kind[TextPayload]:
    payload = PAYLOADS[task]
    return Kind(
        name=task.value,
        payload=payload,
        run=run_text_task,
        max_seconds=max_seconds,
        description=f"{(TRANSFORMS[task].__doc__ or task.value).strip()} "
        f"({payload.DELAY_SECONDS:g} s)",
    )


# The maximum is the simulated delay plus room for the transform itself.
REVERSE = _text_kind(TaskType.REVERSE, max_seconds=5)
SWAP_PAIRS = _text_kind(TaskType.SWAP_PAIRS, max_seconds=8)
REPEAT_BY_POSITION = _text_kind(TaskType.REPEAT_BY_POSITION, max_seconds=10)


# --- the /tasks API -----------------------------------------------------------------------


class TaskRequest(BaseModel):
    """``POST /tasks`` body."""

    model_config = ConfigDict(extra="forbid")

    type: TaskType
    data: str = Field(description="The text to transform. Empty text is valid.")

    @field_validator("data")
    @classmethod
    def _storable(cls, data: str) -> str:
        return require_storable_text(data, "data")

    @model_validator(mode="after")
    def _within_limit(self) -> TaskRequest:
        check_length(self.type, self.data)
        return self

    def payload(self) -> TextPayload:
        return PAYLOADS[self.type].model_validate({"text": self.data})


class TaskAccepted(BaseModel):
    task_id: str
    type: TaskType
    status: JobStatus
    created_at: datetime


class TaskView(BaseModel):
    task_id: str
    type: TaskType
    status: JobStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    queue_position: int | None = Field(
        description="Jobs ahead of this pending task (0 = next); null once it has started."
    )
    error: str | None


class TaskResult(BaseModel):
    task_id: str
    type: TaskType
    status: Literal[JobStatus.COMPLETED]
    result: str


def submit_task(
    table: JobTable,
    queue: JobQueue,
    request: TaskRequest,
    *,
    owner: str,
    now: datetime,
    retention_days: int,
    max_pending: int,
) -> TaskAccepted:
    """Accept a text task onto the lane (see ``ordo.jobs.accept``)."""
    job = new_job(request.payload(), owner=owner, now=now)
    accept(table, queue, job, now, max_pending=max_pending, retention_days=retention_days)
    return TaskAccepted(task_id=job.job_id, type=request.type, status=job.status, created_at=now)


def _find(table: JobTable, viewer: Viewer, task_id: str) -> tuple[Job, TaskType]:
    """A text task the viewer may see (as ``ordo.jobs.find_job``), with its type."""
    job = visible(viewer, table.get(task_id) if is_job_id(task_id) else None, TaskNotFound)
    if job.kind not in TaskType:
        raise TaskNotFound()
    return job, TaskType(job.kind)


def get_task(table: JobTable, viewer: Viewer, task_id: str) -> TaskView:
    job, task_type = _find(table, viewer, task_id)
    return TaskView(
        task_id=job.job_id,
        type=task_type,
        status=job.status,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        queue_position=queue_position(table, job),
        error=job.error if job.status is JobStatus.FAILED else None,
    )


def get_result(table: JobTable, viewer: Viewer, task_id: str) -> TaskResult:
    job, task_type = _find(table, viewer, task_id)
    if job.status is JobStatus.FAILED:
        raise ResultNotReady("Task failed", status=job.status.value, error=job.error)
    if job.status is not JobStatus.COMPLETED or job.result is None:
        raise ResultNotReady(f"Task is {job.status.value}; no result yet", status=job.status.value)
    return TaskResult(
        task_id=job.job_id, type=task_type, status=JobStatus.COMPLETED, result=job.result
    )
