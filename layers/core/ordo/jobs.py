"""Jobs: the record every kind of work shares, its state machine, and the task use cases.

A job is accepted as ``pending``, claimed by the worker as ``processing`` and ends ``completed``
or ``failed``. Storage enforces every transition with a condition, so a redelivered message
can neither run a finished job again nor move a job backwards.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ordo.documents import DocumentType, UploadRequest
from ordo.errors import (
    InvalidInput,
    JobNotFound,
    ResultNotReady,
    TaskNotFound,
    TooManyRequests,
    Unavailable,
)
from ordo.tasks import TASKS, TaskType

JOB_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")


class JobStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED)


def new_job_id() -> str:
    """128 random bits as hex: unguessable, and no counter to enumerate."""
    return secrets.token_hex(16)


def is_job_id(value: str) -> bool:
    return JOB_ID_PATTERN.fullmatch(value) is not None


class JobKind(StrEnum):
    TASK = "task"
    DOCUMENT = "document"
    FETCH = "fetch"


class Job(BaseModel):
    """The stored state of one job: a text task or a document, on the same lane."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    owner: str = Field(description="The id of the user who submitted it.")
    kind: JobKind = JobKind.TASK
    task_type: TaskType | None = None
    document_type: DocumentType | None = None
    data: str = Field(description="The input: a task's text, or a document's canonical JSON.")
    status: JobStatus = JobStatus.PENDING
    progress: int = Field(default=0, ge=0, le=100)
    created_at: datetime
    updated_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: str | None = None
    error: str | None = None
    attempt: int = 0
    queue_seq: int | None = None
    expires_at: int | None = None

    @property
    def last_changed(self) -> datetime:
        moments = [self.created_at, self.updated_at, self.started_at, self.finished_at]
        return max(moment for moment in moments if moment is not None)

    @model_validator(mode="after")
    def _typed(self) -> Job:
        if (self.kind is JobKind.TASK) != (self.task_type is not None):
            raise ValueError("a task has a task_type, and only a task")
        if (self.kind is JobKind.DOCUMENT) != (self.document_type is not None):
            raise ValueError("a document has a document_type, and only a document")
        return self


class PendingQuotaExceeded(TooManyRequests):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"You already have {limit} jobs waiting, the most allowed; "
            "submit more once some have started"
        )


class Viewer(Protocol):
    """Who is asking: a user sees their own jobs, an admin sees every job."""

    def may_see(self, owner_id: str | None) -> bool: ...


class JobTable(Protocol):
    """The storage port for jobs. Every transition is conditional and raises ``StaleTransition``
    when the job is not in the expected state.

    The table also keeps each owner's count of pending jobs, changed in the same atomic write
    as the job: ``create`` adds one, leaving ``pending`` (``claim`` or ``abandon``) takes one.
    """

    def create(self, job: Job, max_pending: int) -> None:
        """Raises ``PendingQuotaExceeded`` if the owner already has ``max_pending`` pending."""
        ...

    def pending_count(self, owner: str) -> int: ...

    def get(self, job_id: str) -> Job | None: ...

    def set_queue_seq(self, job_id: str, seq: int) -> None: ...

    def count_pending_before(self, seq: int) -> int: ...

    def set_progress(self, job: Job, progress: int, now: datetime) -> Job:
        """Record progress of ``job`` (processing at exactly this attempt); it only grows."""
        ...

    def claim(self, job: Job, now: datetime) -> Job:
        """``job`` (pending, or processing from a crashed attempt) -> processing, attempt + 1."""
        ...

    def finish(
        self, job: Job, status: JobStatus, now: datetime, result: str | None, error: str | None
    ) -> Job:
        """``job`` (processing at exactly this attempt) -> completed or failed."""
        ...

    def note_failure(self, job: Job, error: str) -> Job:
        """Record that this attempt raised; the job stays processing until its retry.

        A job found processing *without* such a note was cut off by a crash or a timeout.
        """
        ...

    def abandon(self, job_id: str, error: str, now: datetime) -> Job:
        """A job that will never finish by itself (pending or processing) -> failed."""
        ...


class JobQueue(Protocol):
    """The queue port: one FIFO lane shared by every job."""

    def send(self, job_id: str) -> int:
        """Enqueue a job; returns its sequence number in the lane."""
        ...


# --- API models -------------------------------------------------------------------------


class TaskRequest(BaseModel):
    """``POST /tasks`` body."""

    model_config = ConfigDict(extra="forbid")

    type: TaskType
    data: str = Field(description="The text to transform. Empty text is valid.")

    @model_validator(mode="after")
    def _within_limit(self) -> TaskRequest:
        limit = TASKS[self.type].max_chars
        if len(self.data) > limit:
            raise ValueError(
                f"data is {len(self.data)} characters; {self.type} accepts at most {limit}"
            )
        return self


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


class DocumentAccepted(BaseModel):
    job_id: str
    message: Literal["Document received. Processing started."] = (
        "Document received. Processing started."
    )
    timestamp: datetime


class ProcessRequest(BaseModel):
    """``POST /process`` body: which job, and the document type the caller expects it to be."""

    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(max_length=100)
    document: DocumentType


class JobStatusView(BaseModel):
    """``/status/{job_id}``: any job, text tasks included."""

    job_id: str
    status: JobStatus
    progress: int = Field(ge=0, le=100, description="Reaches 100 only when completed.")
    result: str | dict[str, Any] | None = Field(
        description="A task's text, or a document's extracted fields; null until completed."
    )
    error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, job: Job) -> JobStatusView:
        completed = job.status is JobStatus.COMPLETED
        result: str | dict[str, Any] | None = None
        if completed and job.result is not None:
            document = job.kind is JobKind.DOCUMENT
            result = json.loads(job.result) if document else job.result
        return cls(
            job_id=job.job_id,
            status=job.status,
            progress=100 if completed else min(job.progress, 99),
            result=result,
            error=job.error if job.status is JobStatus.FAILED else None,
            created_at=job.created_at,
            updated_at=job.last_changed,
        )


# --- use cases --------------------------------------------------------------------------


def expiry(now: datetime, retention_days: int) -> int | None:
    return int((now + timedelta(days=retention_days)).timestamp()) if retention_days else None


def accept(table: JobTable, queue: JobQueue, job: Job, now: datetime, max_pending: int) -> None:
    """Record the job as pending (within the owner's quota), then put it on the lane.

    The record is written first so the worker always finds it. If the enqueue fails the job is
    marked failed (it will never run, and leaves the quota) and the caller gets ``Unavailable``.
    """
    table.create(job, max_pending)
    try:
        seq = queue.send(job.job_id)
    except Exception as exc:
        table.abandon(job.job_id, "could not be queued; please submit again", now)
        raise Unavailable("The job queue is unavailable; please retry") from exc
    table.set_queue_seq(job.job_id, seq)


def submit_document(
    table: JobTable,
    queue: JobQueue,
    request: UploadRequest,
    *,
    owner: str,
    now: datetime,
    retention_days: int,
    max_pending: int,
) -> DocumentAccepted:
    """Accept an invoice or a contract onto the lane; ``PayloadTooLarge`` past the limit."""
    job = Job(
        job_id=new_job_id(),
        owner=owner,
        kind=JobKind.DOCUMENT,
        document_type=request.type,
        data=request.check_size(),
        created_at=now,
        updated_at=now,
        expires_at=expiry(now, retention_days),
    )
    accept(table, queue, job, now, max_pending)
    return DocumentAccepted(job_id=job.job_id, timestamp=now)


def get_job_status(table: JobTable, viewer: Viewer, job_id: str) -> JobStatusView:
    return JobStatusView.of(find_job(table, viewer, job_id))


def check_document(table: JobTable, viewer: Viewer, request: ProcessRequest) -> JobStatusView:
    """``/status`` for a document job, after checking it is the type the caller expects."""
    job = find_job(table, viewer, request.job_id)
    actual = job.document_type or f"{job.kind} ({job.task_type})"
    if job.document_type is not request.document:
        raise InvalidInput(f"job {job.job_id} is a {actual}, not a {request.document}")
    return JobStatusView.of(job)


def find_job(table: JobTable, viewer: Viewer, job_id: str) -> Job:
    """Someone else's job is as absent as a missing one: 404, never 403."""
    job = table.get(job_id) if is_job_id(job_id) else None
    if job is None or not viewer.may_see(job.owner):
        raise JobNotFound()
    return job


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
    """Accept a text task onto the lane (see ``accept``)."""
    job = Job(
        job_id=new_job_id(),
        owner=owner,
        task_type=request.type,
        data=request.data,
        created_at=now,
        updated_at=now,
        expires_at=expiry(now, retention_days),
    )
    accept(table, queue, job, now, max_pending)
    return TaskAccepted(task_id=job.job_id, type=request.type, status=job.status, created_at=now)


def _find(table: JobTable, viewer: Viewer, task_id: str) -> tuple[Job, TaskType]:
    """A text task the viewer may see (as ``find_job``), with its type."""
    job = table.get(task_id) if is_job_id(task_id) else None
    if job is None or not viewer.may_see(job.owner) or job.task_type is None:
        raise TaskNotFound()
    return job, job.task_type


def get_task(table: JobTable, viewer: Viewer, task_id: str) -> TaskView:
    job, task_type = _find(table, viewer, task_id)
    return TaskView(
        task_id=job.job_id,
        type=task_type,
        status=job.status,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        queue_position=_queue_position(table, job),
        error=job.error,
    )


def _queue_position(table: JobTable, job: Job) -> int | None:
    if job.status is not JobStatus.PENDING:
        return None
    if job.queue_seq is None:  # accepted a moment ago; its sequence number is being recorded
        return None
    return table.count_pending_before(job.queue_seq)


def get_result(table: JobTable, viewer: Viewer, task_id: str) -> TaskResult:
    job, task_type = _find(table, viewer, task_id)
    if job.status is JobStatus.FAILED:
        raise ResultNotReady("Task failed", status=job.status.value, error=job.error)
    if job.status is not JobStatus.COMPLETED or job.result is None:
        raise ResultNotReady(f"Task is {job.status.value}; no result yet", status=job.status.value)
    return TaskResult(
        task_id=job.job_id, type=task_type, status=JobStatus.COMPLETED, result=job.result
    )
