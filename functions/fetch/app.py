"""/fetch and /data: aggregate an external API on demand (at once or as a job), on a schedule
(EventBridge), and serve the stored posts back."""

import ordo.boot  # first, before FastAPI: see ordo/boot.py

# isort: split
import secrets
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Response
from mangum import Mangum

from ordo import aggregation
from ordo.accounts import require_admin
from ordo.aggregation import (
    MAX_PAGE,
    Aggregator,
    FetchJobView,
    FetchQueued,
    FetchReport,
    PostPage,
    PostStore,
)
from ordo.clock import utcnow
from ordo.http import CurrentUser, api_app
from ordo.jobs import JobQueue, JobTable
from ordo.observability import MetricUnit, metrics
from ordo.settings import settings
from ordo.wiring import aggregator, job_queue, job_table, post_store

app = api_app(title="fetch")


@app.post(
    "/fetch",
    response_model=FetchReport | FetchQueued,
    responses={
        200: {
            "description": "mode=sync: the report. mode=task: the fetch job already active, or "
            "one that ended `cached` at once within the cache window",
        },
        202: {"model": FetchQueued, "description": "mode=task: a new fetch job on the lane"},
        403: {"description": "mode=sync needs an admin"},
        409: {"description": "Another fetch holds the lock"},
        502: {"description": "The source failed; the stored data is unchanged"},
    },
)
def fetch(
    *,
    user: CurrentUser,
    response: Response,
    fetcher: Annotated[Aggregator, Depends(aggregator)],
    table: Annotated[JobTable, Depends(job_table)],
    queue: Annotated[JobQueue, Depends(job_queue)],
    mode: Literal["sync", "task"] = "sync",
) -> FetchReport | FetchQueued:
    """`sync` (admins) fetches now, or answers `cached` after a recent fetch. `task` queues a
    fetch job on the lane (202), unless one is already pending or running (200, that job's
    id, whoever queued it) or a fetch just succeeded (200, a job that ended `cached`)."""
    config = settings()
    if mode == "task":
        outcome = aggregation.submit_fetch(
            table,
            queue,
            fetcher,
            owner=user.id,
            now=utcnow(),
            retention_days=config.job_retention_days,
            max_pending=config.max_pending_per_user,
        )
        response.status_code = 202 if outcome.queued else 200
        return outcome.answer
    require_admin(user)
    holder = f"sync-{secrets.token_hex(8)}"
    return aggregation.fetch_sync(fetcher, holder, utcnow())


@app.get("/fetch/status/{job_id}", response_model=FetchJobView)
def fetch_status(
    job_id: str, _user: CurrentUser, table: Annotated[JobTable, Depends(job_table)]
) -> FetchJobView:
    """Any signed-in user may follow any fetch job: `mode=task` shares the active one."""
    return aggregation.get_fetch_job(table, job_id)


@app.get("/data", response_model=PostPage)
def data(
    store: Annotated[PostStore, Depends(post_store)],
    user_id: Annotated[int | None, Query(ge=1, le=2**53)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> PostPage:
    """Public. Ordered by id; `user_id` filters through an index."""
    return aggregation.list_posts(store, user_id, limit, cursor)


_http = Mangum(app, lifespan="off")


def scheduled(event: dict[str, Any]) -> dict[str, Any]:
    """EventBridge's "Scheduled Event"."""
    holder = f"schedule-{event.get('id', secrets.token_hex(8))}"
    outcome = aggregation.fetch_on_schedule(aggregator(), holder, utcnow())
    if outcome["status"] == "failed":
        metrics.add_metric(name="FetchFailures", unit=MetricUnit.Count, value=1)
        metrics.flush_metrics()
    return outcome


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ordo.boot.settle()  # the schedule's events pass through no HTTP middleware
    if event.get("detail-type") == "Scheduled Event":
        return scheduled(event)
    result: dict[str, Any] = _http(event, context)
    return result
