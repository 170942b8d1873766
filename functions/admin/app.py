"""/admin: the lane at a glance, every user's jobs by status, and the retry of a failed job."""

import ordo.boot  # noqa: F401  (first, before FastAPI: see ordo/boot.py)

# isort: split
from typing import Annotated, Any

from fastapi import Query, Response

from ordo import lane_admin
from ordo.clock import utcnow
from ordo.deps import CurrentUser, DeadLetters, Jobs, Limits, Queue
from ordo.http import api_app, lambda_handler
from ordo.lane_admin import AdminJobPage, JobsQuery, LaneView, RetryAccepted
from ordo.observability import MetricUnit, metrics

app = api_app(title="admin")

_ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not signed in"},
    403: {"description": "Admin role required"},
}


@app.get("/admin/lane", response_model=LaneView, responses=_ADMIN_ONLY)
def lane(user: CurrentUser, table: Jobs, dead_letters: DeadLetters) -> LaneView:
    """Counts by status, the oldest wait, the running job and the dead letters."""
    return lane_admin.lane_view(table, dead_letters, user, utcnow())


@app.get(
    "/admin/jobs",
    response_model=AdminJobPage,
    responses=_ADMIN_ONLY
    | {422: {"description": "A missing or unknown status, a bad limit, or a bad cursor"}},
)
def jobs(user: CurrentUser, table: Jobs, query: Annotated[JobsQuery, Query()]) -> AdminJobPage:
    """Every user's jobs in one status, newest first (by when they entered it); pass
    `next_cursor` back as `cursor` for the next page."""
    return lane_admin.list_jobs(table, user, query)


@app.post(
    "/admin/jobs/{job_id}/retry",
    status_code=202,
    response_model=RetryAccepted,
    responses=_ADMIN_ONLY
    | {
        404: {"description": "No such job"},
        409: {"description": "The job is not failed, or was already retried"},
        503: {"description": "The lane could not be reached; the new job was marked failed"},
    },
)
def retry(
    job_id: str, *, user: CurrentUser, response: Response, table: Jobs, queue: Queue, limits: Limits
) -> RetryAccepted:
    """Queue a new job with the failed job's kind, payload and owner at the end of the lane;
    the two are linked by `retry_of` and `retried_as`. Follow it with `GET /status/{job_id}`."""
    accepted = lane_admin.retry_job(
        table,
        queue,
        user,
        job_id,
        now=utcnow(),
        retention_days=limits.retention_days,
    )
    response.headers["Location"] = f"/status/{accepted.job_id}"
    metrics.add_metric(name="JobsRetried", unit=MetricUnit.Count, value=1)
    return accepted


handler = lambda_handler(app)
