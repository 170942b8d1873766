"""/fetch and /data: aggregate an external API on demand (at once or as a job), on a schedule
(EventBridge), and serve the stored posts back."""

import ordo.boot  # noqa: F401  (first, before FastAPI: see ordo/boot.py)

# isort: split
import secrets
from typing import Annotated, Any, Literal

from fastapi import Query, Response

from ordo import aggregation
from ordo.accounts import require_admin
from ordo.aggregation import (
    MAX_PAGE,
    FetchJobView,
    FetchQueued,
    FetchReport,
    PostPage,
)
from ordo.clock import utcnow
from ordo.deps import CurrentUser, Fetcher, Jobs, Limits, Posts, Queue
from ordo.http import api_app, lambda_handler
from ordo.wiring import aggregator

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
    fetcher: Fetcher,
    table: Jobs,
    queue: Queue,
    limits: Limits,
    mode: Literal["sync", "task"] = "sync",
) -> FetchReport | FetchQueued:
    """`sync` (admins) fetches now, or answers `cached` after a recent fetch. `task` queues a
    fetch job on the lane (202), unless one is already pending or running (200, that job's
    id, whoever queued it) or a fetch just succeeded (200, a job that ended `cached`)."""
    if mode == "task":
        outcome = aggregation.submit_fetch(
            table,
            queue,
            fetcher,
            owner=user.id,
            now=utcnow(),
            retention_days=limits.retention_days,
            max_pending=limits.max_pending,
        )
        response.status_code = 202 if outcome.queued else 200
        return outcome.answer
    require_admin(user)
    holder = f"sync-{secrets.token_hex(8)}"
    return aggregation.fetch_sync(fetcher, holder, utcnow())


@app.get("/fetch/status/{job_id}", response_model=FetchJobView)
def fetch_status(job_id: str, _user: CurrentUser, table: Jobs) -> FetchJobView:
    """Any signed-in user may follow any fetch job: `mode=task` shares the active one."""
    return aggregation.get_fetch_job(table, job_id)


@app.get("/data", response_model=PostPage)
def data(
    store: Posts,
    user_id: Annotated[int | None, Query(ge=1, le=2**53)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> PostPage:
    """Public. Ordered by id; `user_id` filters through an index."""
    return aggregation.list_posts(store, user_id, limit, cursor)


def scheduled(event: dict[str, Any]) -> dict[str, Any]:
    """EventBridge's "Scheduled Event"."""
    holder = f"schedule-{event.get('id', secrets.token_hex(8))}"
    outcome = aggregation.fetch_on_schedule(aggregator(), holder, utcnow())
    return outcome.model_dump(mode="json", exclude_none=True)


handler = lambda_handler(app, schedule=scheduled)
