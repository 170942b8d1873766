"""GET /tasks/{task_id}: a task's state and its place in the lane (its owner or an admin);
GET /jobs: the caller's own jobs, newest first."""

import ordo.boot  # noqa: F401  (first, before FastAPI: see ordo/boot.py)

# isort: split
from typing import Annotated, Any

from fastapi import Query

from ordo.deps import CurrentUser, Jobs
from ordo.http import api_app, lambda_handler
from ordo.jobs import MAX_MY_JOBS_PAGE, MY_JOBS_PAGE, MyJobPage, list_my_jobs
from ordo.registry import KINDS
from ordo.tasks import TaskView, get_task

app = api_app(title="status")

_BAD_QUERY: dict[int | str, dict[str, Any]] = {
    422: {"description": "A limit out of range, or a cursor not from this caller's listing"}
}


@app.get("/tasks/{task_id}", response_model=TaskView)
def task_status(task_id: str, user: CurrentUser, table: Jobs) -> TaskView:
    return get_task(table, user, task_id)


@app.get("/jobs", response_model=MyJobPage, responses=_BAD_QUERY)
def my_jobs(
    user: CurrentUser,
    table: Jobs,
    limit: Annotated[int, Query(ge=1, le=MAX_MY_JOBS_PAGE)] = MY_JOBS_PAGE,
    cursor: Annotated[
        str | None,
        Query(max_length=2048, description="A page's `next_cursor`, for the next page."),
    ] = None,
) -> MyJobPage:
    """The caller's own jobs of every kind and status, newest first (an admin's too: every
    user's are under `GET /admin/jobs`). A pending job shows its `queue_position`, a completed
    one its `result`, a failed one its `error`; pass `next_cursor` back as `cursor` for the
    next page."""
    return list_my_jobs(table, user.id, KINDS, limit=limit, cursor=cursor)


handler = lambda_handler(app)
