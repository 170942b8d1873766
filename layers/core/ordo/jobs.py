"""Jobs: the record every kind of work shares, its state machine, and the generic use cases.

A job is accepted as ``pending``, claimed by the worker as ``processing`` and ends ``completed``
or ``failed``. Storage enforces every transition with a condition, so a redelivered message
can neither run a finished job again nor move a job backwards. What a job *does* is its kind's
business (:mod:`ordo.kinds`); this module never branches on the kind.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from ordo.errors import Conflict, JobNotFound, TooManyRequests, Unavailable
from ordo.security import Viewer, visible

if TYPE_CHECKING:
    from ordo.kinds import Registry

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


class Job(BaseModel):
    """The stored state of one job of any kind, on the one lane."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    owner: str = Field(description="The id of the user who submitted it.")
    kind: str = Field(description="A registered job kind, e.g. reverse, invoice, fetch.")
    data: str = Field(description="The kind's payload model, as JSON.")
    status: JobStatus = JobStatus.PENDING
    progress: int = Field(default=0, ge=0, le=100)
    created_at: datetime
    updated_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: str | None = None
    # While processing: set only when an attempt was interrupted by infrastructure, and will be
    # run again. A processing job redelivered without it was cut off by a crash or a timeout.
    error: str | None = None
    attempt: int = 0
    queue_seq: int | None = None
    expires_at: int | None = Field(default=None, description="TTL, set when the job finishes.")
    retry_of: str | None = None
    retried_as: str | None = None
    dead_letter_body: str | None = None

    @property
    def last_changed(self) -> datetime:
        moments = [self.created_at, self.updated_at, self.started_at, self.finished_at]
        return max(moment for moment in moments if moment is not None)

    @property
    def interrupted(self) -> bool:
        """Processing, and its last attempt was stopped by infrastructure, not by a crash."""
        return self.status is JobStatus.PROCESSING and self.error is not None

    def claimed(self, now: datetime) -> Job:
        """This job as a claim at ``now`` leaves it: processing, at its next attempt."""
        return self.model_copy(
            update={
                "status": JobStatus.PROCESSING,
                "attempt": self.attempt + 1,
                "started_at": now,
                "updated_at": now,
                "error": None,
                "queue_seq": None,
            }
        )


class JobSummary(BaseModel):
    """A job without its payload and result: what the status index holds, for lane views."""

    job_id: str
    owner: str
    kind: str
    status: JobStatus
    error: str | None = None
    attempt: int = 0
    created_at: datetime
    updated_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    retry_of: str | None = None
    retried_as: str | None = None


class JobPage(BaseModel):
    items: list[JobSummary]
    next_cursor: str | None


class OwnerJobPage(BaseModel):
    """One owner's jobs, whole (payload, progress and result included)."""

    items: list[Job]
    next_cursor: str | None


class PendingQuotaExceeded(TooManyRequests):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"You already have {limit} jobs waiting, the most allowed; "
            "submit more once some have started"
        )


class NotRetryable(Conflict):
    """Only a failed job can be retried, and only once."""


class SingletonMoved(Conflict):
    """A kind's singleton marker no longer names the job the caller saw: another request
    created the kind's active job first."""


class JobTable(Protocol):
    """The storage port for jobs. Every transition is conditional and raises ``StaleTransition``
    when the job is not in the expected state.

    The table also keeps each owner's count of pending jobs, changed in the same atomic write
    as the job: ``create`` and ``retry`` add one; leaving ``pending`` (``claim`` or
    ``abandon``) takes one. So the count always equals the owner's pending jobs.
    """

    def create(self, job: Job, max_pending: int) -> None:
        """Raises ``PendingQuotaExceeded`` if the owner already has ``max_pending`` pending."""
        ...

    def create_singleton(self, job: Job, max_pending: int, replacing: str | None) -> None:
        """``create``, and make ``job`` the one its kind's marker names, in one atomic write.

        The marker must still name ``replacing`` (``None``: there is no marker yet), else
        ``SingletonMoved``. Nothing ever releases the marker: the next job replaces it once
        the job it names has ended, so a crash cannot leave it held.
        """
        ...

    def singleton(self, kind: str) -> str | None:
        """The id of the job that ``kind``'s marker names (strongly consistent), if any; that
        job may have ended since, or expired."""
        ...

    def record(self, job: Job, *, result_is_json: bool = False) -> None:
        """Store a job that ended without going on the lane (completed or failed, never
        pending): it is outside every quota and queue. ``result_is_json`` as in ``finish``."""
        ...

    def pending_count(self, owner: str) -> int: ...

    def get(self, job_id: str) -> Job | None: ...

    def set_queue_seq(self, job_id: str, seq: int) -> None: ...

    def count_pending_before(self, seq: int) -> int: ...

    def set_progress(self, job: Job, progress: int, now: datetime) -> Job:
        """Record progress of ``job`` (processing at exactly this attempt); it only grows."""
        ...

    def claim(self, job: Job, now: datetime) -> Job:
        """``job`` (pending, or processing and interrupted) -> processing, attempt + 1."""
        ...

    def claim_new(self, job_id: str, owner: str, kind: str, now: datetime) -> None:
        """A job never attempted (pending, attempt 0, of this owner and kind) -> processing,
        attempt 1, without reading it first; ``StaleTransition`` if it is anything else."""
        ...

    def finish(
        self,
        job: Job,
        status: JobStatus,
        now: datetime,
        *,
        result: str | None = None,
        result_is_json: bool = False,
        error: str | None = None,
        expires_at: int | None = None,
    ) -> Job:
        """``job`` (processing at exactly this attempt) -> completed or failed.

        ``result_is_json``: the job's kind declares its result JSON (``Kind.result_is_json``),
        so it may be stored as the JSON value it holds; any other result is stored as text."""
        ...

    def note_interrupted(self, job: Job, reason: str) -> Job:
        """Record that infrastructure stopped this attempt; it stays processing until its
        message is delivered again, and is then run again."""
        ...

    def abandon(
        self,
        job_id: str,
        error: str,
        now: datetime,
        *,
        expires_at: int | None = None,
        dead_letter_body: str | None = None,
    ) -> Job:
        """A job that will never finish by itself (pending or processing) -> failed."""
        ...

    def retry(self, failed: Job, new: Job) -> None:
        """Create ``new`` as pending (counted in its owner's quota, never refused by it) and
        link the two, in one write; ``NotRetryable`` unless ``failed`` is failed and was never
        retried."""
        ...

    def by_status(
        self,
        status: JobStatus,
        *,
        limit: int,
        cursor: str | None = None,
        newest_first: bool = True,
        before: datetime | None = None,
    ) -> JobPage:
        """Every owner's jobs in ``status``, by the time they entered it."""
        ...

    def count_by_status(self, status: JobStatus, since: datetime | None = None) -> int: ...

    def by_owner(self, owner: str, *, limit: int, cursor: str | None = None) -> OwnerJobPage:
        """``owner``'s jobs of every status, newest first (by acceptance, then by id).

        ``cursor`` is a page's ``next_cursor`` from the same owner's listing; any other cursor
        raises ``InvalidInput``. Jobs accepted before this listing existed are not in it.
        """
        ...


class JobQueue(Protocol):
    """The queue port: one FIFO lane shared by every job."""

    def send(self, job: Job) -> int:
        """Enqueue a job; returns its sequence number in the lane."""
        ...


class QueueGauge(Protocol):
    """How many messages a queue holds: waiting, in flight and delayed (SQS's approximate
    counts, up to about a minute behind)."""

    def depth(self) -> int: ...


# --- API models -------------------------------------------------------------------------


class JobAccepted(BaseModel):
    """``POST /jobs``: a job of any registered kind, accepted onto the lane."""

    job_id: str
    kind: str
    status: JobStatus
    created_at: datetime


class JobStatusView(BaseModel):
    """``/status/{job_id}``: any job, text tasks included."""

    job_id: str
    status: JobStatus
    progress: int = Field(ge=0, le=100, description="Reaches 100 only when completed.")
    result: Any = Field(
        description="The kind's result (text for a task, an object for a document or a "
        "fetch); null until completed."
    )
    error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, job: Job, kinds: Registry) -> JobStatusView:
        completed = job.status is JobStatus.COMPLETED
        kind = kinds.find(job.kind)
        result = None
        if completed and job.result is not None:
            result = kind.show(job.result) if kind else job.result
        return cls(
            job_id=job.job_id,
            status=job.status,
            progress=100 if completed else min(job.progress, 99),
            result=result,
            error=job.error if job.status is JobStatus.FAILED else None,
            created_at=job.created_at,
            updated_at=job.last_changed,
        )


class MyJobView(JobStatusView):
    """``GET /jobs``: one of the caller's jobs, as ``/status/{job_id}`` shows it, with its kind,
    its times and its place in the lane."""

    kind: str = Field(description="The job's kind, e.g. reverse, invoice, fetch.")
    started_at: datetime | None = Field(description="When its latest attempt started.")
    finished_at: datetime | None
    queue_position: int | None = Field(
        description="Jobs ahead of this pending job (0 = next); null once it has started."
    )

    @classmethod
    def of(cls, job: Job, kinds: Registry, queue_position: int | None = None) -> MyJobView:
        return cls(
            **dict(JobStatusView.of(job, kinds)),
            kind=job.kind,
            started_at=job.started_at,
            finished_at=job.finished_at,
            queue_position=queue_position,
        )


class MyJobPage(BaseModel):
    items: list[MyJobView]
    next_cursor: str | None = Field(description="Pass back as `cursor` for the next page.")


MY_JOBS_PAGE = 20
MAX_MY_JOBS_PAGE = 50  # every pending job on a page costs one more query (its queue position)
# The most JSON one page's jobs may add up to. Lambda answers with at most 6 MB, and its own
# envelope can double a body of escapes, so a page of large results is cut short instead.
PAGE_BYTES = 2_000_000


# --- use cases --------------------------------------------------------------------------


def expiry(now: datetime, retention_days: int) -> int | None:
    """The TTL of a job that finishes ``now``: retention is counted from the end, never from
    acceptance, so no backlog can expire a job that has not run."""
    return int((now + timedelta(days=retention_days)).timestamp()) if retention_days else None


def new_job(payload: BaseModel, *, owner: str, now: datetime) -> Job:
    """A pending job carrying ``payload`` (a registered kind's payload model)."""
    return Job(
        job_id=new_job_id(),
        owner=owner,
        kind=str(getattr(payload, "kind", "")),
        data=payload.model_dump_json(by_alias=True),
        created_at=now,
        updated_at=now,
    )


def accept(
    table: JobTable,
    queue: JobQueue,
    job: Job,
    now: datetime,
    *,
    max_pending: int,
    retention_days: int,
) -> None:
    """Record the job as pending (within the owner's quota), then put it on the lane.

    The record is written first so the worker always finds it. If the enqueue fails the job is
    marked failed (it will never run, and leaves the quota) and the caller gets ``Unavailable``.
    If this function dies between the two, the reconciler ends the job.
    """
    table.create(job, max_pending)
    enqueue(table, queue, job, now, retention_days)


def enqueue(table: JobTable, queue: JobQueue, job: Job, now: datetime, retention_days: int) -> None:
    """Put an accepted (pending) job on the lane, and record its place in it."""
    try:
        seq = queue.send(job)
    except Exception as exc:
        reason = "could not be queued; please submit again"
        table.abandon(job.job_id, reason, now, expires_at=expiry(now, retention_days))
        raise Unavailable("The job queue is unavailable; please retry") from exc
    table.set_queue_seq(job.job_id, seq)


def submit_job(
    table: JobTable,
    queue: JobQueue,
    kinds: Registry,
    payload: BaseModel,
    *,
    owner: str,
    now: datetime,
    retention_days: int,
    max_pending: int,
) -> JobAccepted:
    """Accept a job of any registered kind onto the lane, once its kind admits the payload."""
    kinds.get(str(getattr(payload, "kind", ""))).admit(payload)
    job = new_job(payload, owner=owner, now=now)
    accept(table, queue, job, now, max_pending=max_pending, retention_days=retention_days)
    return JobAccepted(job_id=job.job_id, kind=job.kind, status=job.status, created_at=now)


def find_job(table: JobTable, viewer: Viewer, job_id: str) -> Job:
    """Someone else's job is as absent as a missing one: 404, never 403."""
    return visible(viewer, table.get(job_id) if is_job_id(job_id) else None, JobNotFound)


def get_job_status(table: JobTable, viewer: Viewer, job_id: str, kinds: Registry) -> JobStatusView:
    return JobStatusView.of(find_job(table, viewer, job_id), kinds)


def queue_position(table: JobTable, job: Job) -> int | None:
    """How many jobs wait ahead of ``job`` in the lane; None unless it is pending."""
    if job.status is not JobStatus.PENDING:
        return None
    if job.queue_seq is None:  # accepted a moment ago; its sequence number is being recorded
        return None
    return table.count_pending_before(job.queue_seq)


def list_my_jobs(
    table: JobTable,
    owner: str,
    kinds: Registry,
    *,
    limit: int,
    cursor: str | None = None,
    max_bytes: int = PAGE_BYTES,
) -> MyJobPage:
    """The owner's own jobs, newest first, whatever the owner's role: an admin sees every
    user's jobs through ``GET /admin/jobs`` instead.

    A page ends early, with a cursor, where its jobs' JSON would pass ``max_bytes`` (never
    before its first job). Each pending job's queue position costs one query.
    """
    page = table.by_owner(owner, limit=limit, cursor=cursor)
    fits = _fitting([MyJobView.of(job, kinds) for job in page.items], max_bytes)
    if fits < len(page.items):
        # Asked again for exactly the jobs that fit, so the cursor resumes right after them.
        page = table.by_owner(owner, limit=fits, cursor=cursor)
    return MyJobPage(
        items=[MyJobView.of(job, kinds, queue_position(table, job)) for job in page.items],
        next_cursor=page.next_cursor,
    )


def _fitting(views: list[MyJobView], max_bytes: int) -> int:
    """How many of ``views``, from the first, fit in ``max_bytes`` of JSON (at least one)."""
    total = 0
    for count, view in enumerate(views):
        total += len(view.model_dump_json().encode())
        if total > max_bytes:
            return max(count, 1)
    return len(views)
