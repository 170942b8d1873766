"""POST /tasks: accept a text task from a signed-in user and put it on the lane."""

from typing import Annotated

from fastapi import Depends, Response
from mangum import Mangum

from ordo.clock import utcnow
from ordo.http import CurrentUser, api_app
from ordo.jobs import JobQueue, JobTable, TaskAccepted, TaskRequest, submit_task
from ordo.observability import MetricUnit, metrics
from ordo.settings import settings
from ordo.wiring import job_queue, job_table

app = api_app(title="submit")


@app.post(
    "/tasks",
    status_code=202,
    response_model=TaskAccepted,
    responses={429: {"description": "The user already has the most pending jobs allowed"}},
)
def submit(
    request: TaskRequest,
    user: CurrentUser,
    response: Response,
    table: Annotated[JobTable, Depends(job_table)],
    queue: Annotated[JobQueue, Depends(job_queue)],
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


handler = Mangum(app, lifespan="off")
