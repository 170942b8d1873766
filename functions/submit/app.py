"""POST /tasks and POST /jobs: accept a job from a signed-in user and put it on the lane."""

import ordo.boot  # noqa: F401  (first, before FastAPI: see ordo/boot.py)

# isort: split
from typing import Annotated, Any

from fastapi import Body, Depends, Response
from mangum import Mangum

from ordo.clock import utcnow
from ordo.http import CurrentUser, api_app
from ordo.jobs import JobAccepted, JobQueue, JobTable, submit_job
from ordo.observability import MetricUnit, metrics
from ordo.registry import KINDS
from ordo.settings import settings
from ordo.tasks import TaskAccepted, TaskRequest, submit_task
from ordo.wiring import job_queue, job_table

app = api_app(title="submit")

Jobs = Annotated[JobTable, Depends(job_table)]
Queue = Annotated[JobQueue, Depends(job_queue)]
_QUOTA: dict[int | str, dict[str, Any]] = {
    429: {"description": "The user already has the most pending jobs allowed"}
}


@app.post("/tasks", status_code=202, response_model=TaskAccepted, responses=_QUOTA)
def submit(
    request: TaskRequest, user: CurrentUser, response: Response, table: Jobs, queue: Queue
) -> TaskAccepted:
    config = settings()
    accepted = submit_task(
        table,
        queue,
        request,
        owner=user.id,
        now=utcnow(),
        retention_days=config.job_retention_days,
        max_pending=config.max_pending_per_user,
    )
    response.headers["Location"] = f"/tasks/{accepted.task_id}"
    metrics.add_metric(name="JobsAccepted", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()  # here, not per invocation: a rejected request has no metric
    return accepted


@app.post(
    "/jobs",
    status_code=202,
    response_model=JobAccepted,
    responses=_QUOTA | {413: {"description": "Over the kind's size limit"}},
)
def submit_any(
    request: Annotated[KINDS.request_type(), Body()],  # type: ignore[valid-type]
    user: CurrentUser,
    response: Response,
    table: Jobs,
    queue: Queue,
) -> JobAccepted:
    """A job of any registered kind: `{"kind": "reverse", "text": "abc"}`,
    `{"kind": "invoice", "content": {...}}`, `{"kind": "fetch"}`. Follow it with
    `GET /status/{job_id}`."""
    config = settings()
    accepted = submit_job(
        table,
        queue,
        KINDS,
        request,
        owner=user.id,
        now=utcnow(),
        retention_days=config.job_retention_days,
        max_pending=config.max_pending_per_user,
    )
    response.headers["Location"] = f"/status/{accepted.job_id}"
    metrics.add_metric(name="JobsAccepted", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
    return accepted


handler = Mangum(app, lifespan="off")
