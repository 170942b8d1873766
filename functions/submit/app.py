"""POST /tasks and POST /jobs: accept a job from a signed-in user and put it on the lane."""

import ordo.boot  # noqa: F401  (first, before FastAPI: see ordo/boot.py)

# isort: split
from typing import Annotated, Any

from fastapi import Body, Response

from ordo.clock import utcnow
from ordo.deps import CurrentUser, Jobs, Limits, Queue
from ordo.http import api_app, lambda_handler
from ordo.jobs import JobAccepted, submit_job
from ordo.observability import MetricUnit, metrics
from ordo.registry import KINDS
from ordo.tasks import TaskAccepted, TaskRequest, submit_task

app = api_app(title="submit")

_QUOTA: dict[int | str, dict[str, Any]] = {
    429: {"description": "The user already has the most pending jobs allowed"}
}


@app.post("/tasks", status_code=202, response_model=TaskAccepted, responses=_QUOTA)
def submit(
    request: TaskRequest,
    *,
    user: CurrentUser,
    response: Response,
    table: Jobs,
    queue: Queue,
    limits: Limits,
) -> TaskAccepted:
    accepted = submit_task(
        table,
        queue,
        request,
        owner=user.id,
        now=utcnow(),
        retention_days=limits.retention_days,
        max_pending=limits.max_pending,
    )
    response.headers["Location"] = f"/tasks/{accepted.task_id}"
    metrics.add_metric(name="JobsAccepted", unit=MetricUnit.Count, value=1)  # accepted only
    return accepted


@app.post(
    "/jobs",
    status_code=202,
    response_model=JobAccepted,
    responses=_QUOTA | {413: {"description": "Over the kind's size limit"}},
)
def submit_any(
    request: Annotated[KINDS.request_type(), Body()],  # type: ignore[valid-type]
    *,
    user: CurrentUser,
    response: Response,
    table: Jobs,
    queue: Queue,
    limits: Limits,
) -> JobAccepted:
    """A job of any registered kind: `{"kind": "reverse", "text": "abc"}`,
    `{"kind": "invoice", "content": {...}}`, `{"kind": "fetch"}`. Follow it with
    `GET /status/{job_id}`."""
    accepted = submit_job(
        table,
        queue,
        KINDS,
        request,
        owner=user.id,
        now=utcnow(),
        retention_days=limits.retention_days,
        max_pending=limits.max_pending,
    )
    response.headers["Location"] = f"/status/{accepted.job_id}"
    metrics.add_metric(name="JobsAccepted", unit=MetricUnit.Count, value=1)
    return accepted


handler = lambda_handler(app)
