"""POST /tasks: accept a text task and put it on the lane."""

from typing import Annotated

from fastapi import Depends, Response
from mangum import Mangum

from ordo.clock import utcnow
from ordo.http import api_app
from ordo.jobs import JobQueue, JobTable, TaskAccepted, TaskRequest, submit_task
from ordo.observability import MetricUnit, metrics
from ordo.settings import settings
from ordo.wiring import job_queue, job_table

app = api_app(title="submit")


@app.post("/tasks", status_code=202, response_model=TaskAccepted)
def submit(
    request: TaskRequest,
    response: Response,
    table: Annotated[JobTable, Depends(job_table)],
    queue: Annotated[JobQueue, Depends(job_queue)],
) -> TaskAccepted:
    accepted = submit_task(table, queue, request, utcnow(), settings().job_retention_days)
    response.headers["Location"] = f"/tasks/{accepted.task_id}"
    metrics.add_metric(name="JobsAccepted", unit=MetricUnit.Count, value=1)
    return accepted


handler = metrics.log_metrics(Mangum(app, lifespan="off"))
