"""Aggregation: fetch posts from an external API, keep them, serve them back.

A fetch runs on demand (``POST /fetch``, at once or as a job on the lane) or on a schedule.
Only one runs at a time, under a lock with an expiry. The source is untrusted: its items are
validated one by one, and the invalid ones are counted as ``skipped``.

Within the cache window after a successful fetch, a fetch of any mode answers ``cached``
without asking the source. At most one fetch job is active (pending or processing) at a time:
``mode=task`` while one is active answers with that job, whoever queued it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ordo.errors import Conflict, JobNotFound, Unavailable, UpstreamFailed
from ordo.jobs import (
    Job,
    JobQueue,
    JobStatus,
    JobTable,
    SingletonMoved,
    enqueue,
    expiry,
    is_job_id,
    new_job,
)
from ordo.kinds import Kind, RunContext
from ordo.observability import MetricUnit, logger, metrics

MAX_PAGE = 100
CACHED_MESSAGE = "Data fetched recently; using the stored data"
FETCHED_MESSAGE = "Data fetched successfully"
# Rounds of "read the active fetch job, else create one" a task request makes while racing
# others; each lost round means another request just created the active job.
SUBMIT_ROUNDS = 3


class SourcePost(BaseModel):
    """One item as the source sends it (``jsonplaceholder``'s shape)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    userId: int = Field(ge=1, le=2**53)  # noqa: N815 - the source's field name
    id: int = Field(ge=1, le=2**53)
    title: str = Field(max_length=1000)
    body: str = Field(max_length=20_000)


class Post(BaseModel):
    """A stored post, as ``GET /data`` shows it."""

    model_config = ConfigDict(frozen=True)

    id: int
    user_id: int
    title: str
    body: str

    @classmethod
    def of(cls, item: SourcePost) -> Post:
        return cls(id=item.id, user_id=item.userId, title=item.title, body=item.body)


class PostPage(BaseModel):
    items: list[Post]
    next_cursor: str | None


class FetchStatus(StrEnum):
    OK = "ok"
    CACHED = "cached"
    LOCKED = "locked"


class ScheduleOutcome(StrEnum):
    OK = "ok"
    LOCKED = "locked"  # another fetch held the lock: skipped
    FAILED = "failed"  # the source gave nothing usable: the stored data is unchanged


class FetchCounts(BaseModel):
    fetched: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0


class FetchReport(FetchCounts):
    """``POST /fetch?mode=sync``."""

    message: str
    status: FetchStatus


class FetchQueued(BaseModel):
    """``POST /fetch?mode=task``: the fetch job to follow at ``/fetch/status/{job_id}``."""

    message: str = "Fetch job queued in background"
    job_id: str
    status: JobStatus = Field(
        default=JobStatus.PENDING,
        description="pending (queued now, 202); pending or processing (a fetch job already "
        "active, 200); completed (within the cache window: ended `cached` at once, 200).",
    )


class ScheduledFetch(FetchCounts):
    """What the schedule's fetch did (the counts are those of an ``ok`` one)."""

    status: ScheduleOutcome
    error: str | None = None


@dataclass(frozen=True)
class TaskFetch:
    """What ``mode=task`` did: ``queued`` is true only when a new job went on the lane."""

    answer: FetchQueued
    queued: bool


class FetchJobView(BaseModel):
    """``GET /fetch/status/{job_id}``: readable by any signed-in user, since a fetch job is
    shared (its counts are of the public ``/data``; its owner is not shown)."""

    job_id: str
    status: str
    outcome: FetchStatus | None = Field(
        description="Once completed: ok (the source was fetched) or cached (a fetch had just "
        "succeeded; the source was not asked and the counts are 0)."
    )
    created_at: datetime
    updated_at: datetime
    error: str | None
    fetched: int | None
    created: int | None
    updated: int | None
    skipped: int | None


class SourceFailed(UpstreamFailed):
    """The source could not give a usable answer; the message is shown to users."""


class FetchLocked(Conflict):
    def __init__(self) -> None:
        super().__init__("Another fetch is in progress; try again shortly", status="locked")


# --- ports ------------------------------------------------------------------------------------


class PostSource(Protocol):
    def fetch(self) -> list[Any]:
        """The source's items, not yet validated; raises ``SourceFailed``."""
        ...


class PostStore(Protocol):
    def upsert(self, posts: list[Post]) -> tuple[int, int]:
        """Store the posts; returns (created, updated). Unchanged posts are not written."""
        ...

    def page(self, user_id: int | None, limit: int, cursor: str | None) -> PostPage: ...


class FetchLock(Protocol):
    def acquire(self, holder: str, now: datetime, ttl: timedelta) -> bool: ...

    def release(self, holder: str) -> None: ...


class FetchLog(Protocol):
    def last_success(self) -> datetime | None: ...

    def record_success(self, now: datetime, counts: FetchCounts) -> None: ...


@dataclass(frozen=True)
class Aggregator:
    source: PostSource
    store: PostStore
    lock: FetchLock
    log: FetchLog
    lock_ttl: timedelta = timedelta(seconds=90)
    # After a successful fetch, how long every fetch answers ``cached`` (ORDO_FETCH_CACHE_SECONDS).
    cache_window: timedelta = timedelta(0)


# --- use cases --------------------------------------------------------------------------------


def validate(items: list[Any]) -> tuple[list[Post], int]:
    """The valid posts (the last of any repeated id wins) and how many items were skipped."""
    posts: dict[int, Post] = {}
    skipped = 0
    for index, item in enumerate(items):
        try:
            post = Post.of(SourcePost.model_validate(item))
        except ValidationError as exc:
            skipped += 1
            logger.warning("skipped invalid item", item=index, problem=exc.errors()[0].get("msg"))
            continue
        posts[post.id] = post
    return sorted(posts.values(), key=lambda p: p.id), skipped


def fetch_now(aggregator: Aggregator, holder: str, now: datetime) -> FetchCounts:
    """Fetch under the lock; ``FetchLocked`` if another fetch holds it, ``SourceFailed`` if
    the source gives nothing usable (what is stored stays as it was)."""
    if not aggregator.lock.acquire(holder, now, aggregator.lock_ttl):
        raise FetchLocked()
    try:
        items = aggregator.source.fetch()
        posts, skipped = validate(items)
        created, updated = aggregator.store.upsert(posts)
        counts = FetchCounts(fetched=len(items), created=created, updated=updated, skipped=skipped)
        aggregator.log.record_success(now, counts)
        return counts
    finally:
        aggregator.lock.release(holder)


def recently_fetched(log: FetchLog, now: datetime, window: timedelta) -> bool:
    """A fetch succeeded less than ``window`` ago: the stored data stand for the source."""
    last = log.last_success()
    return last is not None and now - last < window


def fetch_sync(aggregator: Aggregator, holder: str, now: datetime) -> FetchReport:
    """``mode=sync``: a fresh enough earlier fetch answers ``cached`` without the source."""
    if recently_fetched(aggregator.log, now, aggregator.cache_window):
        return _cached()
    return _fetched(fetch_now(aggregator, holder, now))


def fetch_on_schedule(aggregator: Aggregator, holder: str, now: datetime) -> ScheduledFetch:
    """The schedule's fetch: skipped while another holds the lock, and never raising, since an
    asynchronous retry would only fetch again later, as the schedule does anyway."""
    try:
        counts = fetch_now(aggregator, holder, now)
    except FetchLocked:
        logger.info("scheduled fetch skipped: another fetch holds the lock")
        return ScheduledFetch(status=ScheduleOutcome.LOCKED)
    except SourceFailed as exc:
        logger.error("scheduled fetch failed", error=exc.detail)
        metrics.add_metric(name="FetchFailures", unit=MetricUnit.Count, value=1)
        return ScheduledFetch(status=ScheduleOutcome.FAILED, error=exc.detail)
    logger.info("scheduled fetch done", counts=counts.model_dump())
    return ScheduledFetch(status=ScheduleOutcome.OK, **counts.model_dump())


def list_posts(store: PostStore, user_id: int | None, limit: int, cursor: str | None) -> PostPage:
    return store.page(user_id, limit, cursor)


# --- the fetch job kind ----------------------------------------------------------------------


class FetchPayload(BaseModel):
    """A fetch job takes no input: it fetches the configured source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["fetch"] = "fetch"


def run_fetch(_payload: FetchPayload, ctx: RunContext) -> str:
    """Fetch under the lock, holding it as this job; a locked or failing source fails the job
    with a readable error. Within the cache window (a fetch succeeded after this job was
    queued) it ends ``cached`` without the source."""
    aggregator = ctx.need(Aggregator)
    now = ctx.now()
    if recently_fetched(aggregator.log, now, aggregator.cache_window):
        return _cached().model_dump_json()
    return _fetched(fetch_now(aggregator, ctx.job_id, now)).model_dump_json()


def _cached() -> FetchReport:
    return FetchReport(message=CACHED_MESSAGE, status=FetchStatus.CACHED)


def _fetched(counts: FetchCounts) -> FetchReport:
    return FetchReport(message=FETCHED_MESSAGE, status=FetchStatus.OK, **counts.model_dump())


FETCH: Kind[FetchPayload] = Kind(
    name="fetch",
    payload=FetchPayload,
    run=run_fetch,
    # Real network and table time, not simulated: the source's own total deadline (12 s by
    # default), then the lock and the upsert of at most ``fetch_max_items`` posts.
    max_seconds=18,
    simulated=False,
    result_is_json=True,
    description="Fetch the external source and upsert its posts.",
)


def submit_fetch(
    table: JobTable,
    queue: JobQueue,
    aggregator: Aggregator,
    *,
    owner: str,
    now: datetime,
    retention_days: int,
    max_pending: int,
) -> TaskFetch:
    """``mode=task``: the active fetch job if there is one; else, within the cache window, a
    job that ends ``cached`` at once, off the lane; else a new fetch job on the lane.

    Race-safe without a release step: the new job and the marker naming it are written in one
    transaction, on condition that the marker still names what this request read. Two racing
    requests queue one job; the loser answers with the winner's. A job that ends (even failed,
    or ended by the reconciler) stops blocking as soon as it ends.
    """
    for _ in range(SUBMIT_ROUNDS):
        current = table.singleton(FETCH.name)
        active = _active(table, current)
        if active is not None:
            message = f"A fetch job is already {active.status.value}; follow that one"
            return TaskFetch(
                FetchQueued(message=message, job_id=active.job_id, status=active.status),
                queued=False,
            )
        if recently_fetched(aggregator.log, now, aggregator.cache_window):
            ended = _cached_job(owner, now, retention_days)
            table.record(ended, result_is_json=FETCH.result_is_json)
            return TaskFetch(
                FetchQueued(message=CACHED_MESSAGE, job_id=ended.job_id, status=ended.status),
                queued=False,
            )
        job = new_job(FetchPayload(), owner=owner, now=now)
        try:
            table.create_singleton(job, max_pending, replacing=current)
        except SingletonMoved:
            continue  # another request made the active job a moment ago: answer with it
        enqueue(table, queue, job, now, retention_days)
        return TaskFetch(FetchQueued(job_id=job.job_id), queued=True)
    raise Unavailable("Too many simultaneous fetch requests; please retry")


def _active(table: JobTable, job_id: str | None) -> Job | None:
    job = table.get(job_id) if job_id else None
    return job if job is not None and not job.status.is_final else None


def _cached_job(owner: str, now: datetime, retention_days: int) -> Job:
    job = new_job(FetchPayload(), owner=owner, now=now)
    return job.model_copy(
        update={
            "status": JobStatus.COMPLETED,
            "progress": 100,
            "finished_at": now,
            "result": _cached().model_dump_json(),
            "expires_at": expiry(now, retention_days),
        }
    )


def get_fetch_job(table: JobTable, job_id: str) -> FetchJobView:
    """Any signed-in user may read any fetch job: ``mode=task`` hands every caller the one
    shared active job, whoever queued it. Other kinds of job stay their owner's (404)."""
    job = table.get(job_id) if is_job_id(job_id) else None
    if job is None or job.kind != FETCH.name:
        raise JobNotFound()
    report = _report(job)
    return FetchJobView(
        job_id=job.job_id,
        status=job.status.value,
        outcome=report.status if report else None,
        created_at=job.created_at,
        updated_at=job.last_changed,
        error=job.error if job.status is JobStatus.FAILED else None,
        fetched=report.fetched if report else None,
        created=report.created if report else None,
        updated=report.updated if report else None,
        skipped=report.skipped if report else None,
    )


def _report(job: Job) -> FetchReport | None:
    """A completed job's result; jobs from before results carried a status were all ``ok``."""
    if job.status is not JobStatus.COMPLETED or not job.result:
        return None
    stored = json.loads(job.result)
    if stored.get("status") == FetchStatus.CACHED:
        return _cached()
    return _fetched(FetchCounts.model_validate(stored))
