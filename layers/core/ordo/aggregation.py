"""Aggregation: fetch posts from an external API, keep them, serve them back.

A fetch runs on demand (``POST /fetch``, at once or as a job on the lane) or on a schedule.
Only one runs at a time, under a lock with an expiry. The source is untrusted: its items are
validated one by one, and the invalid ones are counted as ``skipped``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ordo.errors import Conflict, JobNotFound, UpstreamFailed
from ordo.jobs import JobQueue, JobStatus, JobTable, Viewer, accept, find_job, new_job
from ordo.kinds import Kind, RunContext

log = logging.getLogger("ordo.aggregation")

MAX_PAGE = 100


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
    """``POST /fetch?mode=task``."""

    message: str = "Fetch job queued in background"
    job_id: str


class FetchJobView(BaseModel):
    """``GET /fetch/status/{job_id}``."""

    job_id: str
    status: str
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
            log.warning("skipped invalid item %d: %s", index, exc.errors()[0].get("msg"))
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


def fetch_sync(
    aggregator: Aggregator, holder: str, now: datetime, cache_seconds: int
) -> FetchReport:
    """``mode=sync``: a fresh enough earlier fetch answers ``cached`` without the source."""
    last = aggregator.log.last_success()
    if last is not None and now - last < timedelta(seconds=cache_seconds):
        return FetchReport(message="Data fetched recently; using the stored data", status="cached")
    counts = fetch_now(aggregator, holder, now)
    return FetchReport(
        message="Data fetched successfully", status=FetchStatus.OK, **counts.model_dump()
    )


def fetch_on_schedule(aggregator: Aggregator, holder: str, now: datetime) -> dict[str, Any]:
    """The schedule's fetch: skipped while another holds the lock, and never raising, since an
    asynchronous retry would only fetch again later, as the schedule does anyway."""
    try:
        counts = fetch_now(aggregator, holder, now)
    except FetchLocked:
        log.info("scheduled fetch skipped: another fetch holds the lock")
        return {"status": "locked"}
    except SourceFailed as exc:
        log.error("scheduled fetch failed: %s", exc.detail)
        return {"status": "failed", "error": exc.detail}
    log.info("scheduled fetch done: %s", counts.model_dump())
    return {"status": "ok", **counts.model_dump()}


def list_posts(store: PostStore, user_id: int | None, limit: int, cursor: str | None) -> PostPage:
    return store.page(user_id, limit, cursor)


# --- the fetch job kind ----------------------------------------------------------------------


class FetchPayload(BaseModel):
    """A fetch job takes no input: it fetches the configured source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["fetch"] = "fetch"


def run_fetch(_payload: FetchPayload, ctx: RunContext) -> str:
    """Fetch under the lock, holding it as this job; a locked or failing source fails the job
    with a readable error."""
    return fetch_now(ctx.need(Aggregator), ctx.job_id, ctx.now()).model_dump_json()


FETCH: Kind[FetchPayload] = Kind(
    name="fetch",
    payload=FetchPayload,
    run=run_fetch,
    # Real network and table time, not simulated: the source's own total deadline (12 s by
    # default), then the lock and the upsert of at most ``fetch_max_items`` posts.
    max_seconds=18,
    simulated=False,
    show=json.loads,
    description="Fetch the external source and upsert its posts.",
)


def submit_fetch(
    table: JobTable,
    queue: JobQueue,
    *,
    owner: str,
    now: datetime,
    retention_days: int,
    max_pending: int,
) -> FetchQueued:
    """``mode=task``: a fetch job on the lane, in order with every other job."""
    job = new_job(FetchPayload(), owner=owner, now=now)
    accept(table, queue, job, now, max_pending=max_pending, retention_days=retention_days)
    return FetchQueued(job_id=job.job_id)


def get_fetch_job(table: JobTable, viewer: Viewer, job_id: str) -> FetchJobView:
    job = find_job(table, viewer, job_id)
    if job.kind != FETCH.name:
        raise JobNotFound()
    done = job.status is JobStatus.COMPLETED and job.result
    counts = FetchCounts.model_validate_json(job.result) if done and job.result else None
    return FetchJobView(
        job_id=job.job_id,
        status=job.status.value,
        created_at=job.created_at,
        updated_at=job.last_changed,
        error=job.error if job.status is JobStatus.FAILED else None,
        fetched=counts.fetched if counts else None,
        created=counts.created if counts else None,
        updated=counts.updated if counts else None,
        skipped=counts.skipped if counts else None,
    )
