"""Lane operations for admins: the lane at a glance, every user's jobs by status, and the retry
of a failed job at the end of the lane.

Everything here reads the status index (``JobTable.by_status``/``count_by_status``) and the
queues' attributes, never a Scan, so its cost follows the jobs asked about, not the table.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, model_validator

from ordo.accounts import User, require_admin
from ordo.jobs import (
    Job,
    JobQueue,
    JobStatus,
    JobSummary,
    JobTable,
    NotRetryable,
    QueueGauge,
    enqueue,
    find_job,
    new_job_id,
)

STATUSES = ", ".join(status.value for status in JobStatus)
FAILED_WINDOW = timedelta(hours=1)


class JobsQuery(BaseModel):
    """``GET /admin/jobs``'s query."""

    status: JobStatus = Field(description=f"One of {STATUSES}.")
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(
        default=None, max_length=2048, description="A page's `next_cursor`, for the next page."
    )

    @model_validator(mode="before")
    @classmethod
    def _status_given(cls, data: Any) -> Any:
        # The default "Field required" would not say which statuses there are.
        if isinstance(data, dict) and not data.get("status"):
            raise ValueError(f"status is required: one of {STATUSES}")
        return data


class RunningJob(BaseModel):
    job_id: str
    kind: str
    started_at: datetime


class LaneView(BaseModel):
    """``GET /admin/lane``. Counts come from the status index, which DynamoDB keeps up to date
    within about a second; ``dead_letters`` from SQS's approximate counts."""

    pending: int = Field(description="Jobs waiting in the lane.")
    processing: int = Field(description="Jobs the worker has claimed and not finished.")
    oldest_pending_age_seconds: float | None = Field(
        description="How long the oldest pending job has waited; null when none waits."
    )
    running: RunningJob | None = Field(
        description="The newest processing job: the one the worker runs now."
    )
    dead_letters: int = Field(description="Messages in the lane's dead-letter queue.")
    failed_last_hour: int = Field(description="Jobs that ended failed in the last hour.")


class AdminJob(BaseModel):
    """One job of any user, as ``GET /admin/jobs`` lists it: no payload, no result."""

    job_id: str
    owner: str = Field(description="The id of the user who submitted it.")
    kind: str
    status: JobStatus
    error: str | None
    attempts: int = Field(description="How many times the worker has started it.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime | None
    retry_of: str | None = Field(description="The failed job this one retries.")
    retried_as: str | None = Field(description="The job that retries this one.")

    @classmethod
    def of(cls, job: JobSummary) -> AdminJob:
        return cls(**job.model_dump(exclude={"attempt"}), attempts=job.attempt)


class AdminJobPage(BaseModel):
    items: list[AdminJob]
    next_cursor: str | None = Field(description="Pass back as `cursor` for the next page.")


class RetryAccepted(BaseModel):
    """``POST /admin/jobs/{job_id}/retry``: the new job, pending at the end of the lane."""

    job_id: str
    retry_of: str
    status: JobStatus
    kind: str
    owner: str
    created_at: datetime


def lane_view(table: JobTable, dead_letters: QueueGauge, viewer: User, now: datetime) -> LaneView:
    require_admin(viewer)
    oldest = table.by_status(JobStatus.PENDING, limit=1, newest_first=False).items
    # Newest, not oldest: with one worker, an older processing job is one a crash left behind
    # (the reconciler ends it), while the newest is the one being run.
    newest = table.by_status(JobStatus.PROCESSING, limit=1, newest_first=True).items
    running = next(
        (
            RunningJob(job_id=job.job_id, kind=job.kind, started_at=job.started_at)
            for job in newest
            if job.started_at
        ),
        None,
    )
    return LaneView(
        pending=table.count_by_status(JobStatus.PENDING),
        processing=table.count_by_status(JobStatus.PROCESSING),
        oldest_pending_age_seconds=(
            max((now - oldest[0].created_at).total_seconds(), 0.0) if oldest else None
        ),
        running=running,
        dead_letters=dead_letters.depth(),
        failed_last_hour=table.count_by_status(JobStatus.FAILED, since=now - FAILED_WINDOW),
    )


def list_jobs(table: JobTable, viewer: User, query: JobsQuery) -> AdminJobPage:
    """Every user's jobs in one status, newest first (by when they entered it)."""
    require_admin(viewer)
    page = table.by_status(query.status, limit=query.limit, cursor=query.cursor, newest_first=True)
    return AdminJobPage(
        items=[AdminJob.of(job) for job in page.items], next_cursor=page.next_cursor
    )


def retry_job(
    table: JobTable,
    queue: JobQueue,
    viewer: User,
    job_id: str,
    *,
    now: datetime,
    retention_days: int,
) -> RetryAccepted:
    """Queue a new job with a failed job's kind, payload and owner, behind every job already
    waiting, and link the two both ways.

    The payload is not validated again: a kind that no longer exists, or a payload it no longer
    accepts, fails the new job in the worker with a readable error.
    """
    require_admin(viewer)
    failed = find_job(table, viewer, job_id)
    # Checked here to say why; table.retry checks again, atomically, for concurrent retries.
    if failed.status is not JobStatus.FAILED:
        raise NotRetryable(
            f"Job {job_id} is {failed.status.value}; only a failed job can be retried"
        )
    if failed.retried_as:
        raise NotRetryable(f"Job {job_id} was already retried as {failed.retried_as}")
    retry = Job(
        job_id=new_job_id(),
        owner=failed.owner,
        kind=failed.kind,
        data=failed.data,
        created_at=now,
        updated_at=now,
        retry_of=failed.job_id,
    )
    table.retry(failed, retry)
    enqueue(table, queue, retry, now, retention_days)
    return RetryAccepted(
        job_id=retry.job_id,
        retry_of=failed.job_id,
        status=retry.status,
        kind=retry.kind,
        owner=retry.owner,
        created_at=now,
    )
