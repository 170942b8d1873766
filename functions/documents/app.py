"""/upload, /status/{job_id}, /process: document jobs (invoices, contracts) on the task lane."""

import ordo.boot  # noqa: F401  (first, before FastAPI: see ordo/boot.py)

# isort: split
from typing import Annotated, Any

from fastapi import Depends
from mangum import Mangum

from ordo.clock import utcnow
from ordo.documents import (
    MAX_DOCUMENT_BYTES,
    DocumentAccepted,
    ProcessRequest,
    UploadRequest,
    check_document,
    submit_document,
)
from ordo.http import CurrentUser, api_app
from ordo.jobs import JobQueue, JobStatusView, JobTable, get_job_status
from ordo.observability import MetricUnit, metrics
from ordo.registry import KINDS
from ordo.settings import settings
from ordo.wiring import job_queue, job_table

app = api_app(title="documents")

Jobs = Annotated[JobTable, Depends(job_table)]
_HIDDEN: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such job, or not one the caller may see"}
}


@app.post(
    "/upload",
    response_model=DocumentAccepted,
    responses={
        413: {"description": f"content and metaData over {MAX_DOCUMENT_BYTES} bytes as JSON"},
        429: {"description": "The user already has the most pending jobs allowed"},
    },
)
def upload(
    request: UploadRequest,
    user: CurrentUser,
    table: Jobs,
    queue: Annotated[JobQueue, Depends(job_queue)],
) -> DocumentAccepted:
    """Queue an invoice or a contract on the lane; follow it with `GET /status/{job_id}`."""
    config = settings()
    accepted = submit_document(
        table,
        queue,
        request,
        owner=user.id,
        now=utcnow(),
        retention_days=config.job_retention_days,
        max_pending=config.max_pending_per_user,
    )
    metrics.add_metric(name="JobsAccepted", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
    return accepted


@app.get("/status/{job_id}", response_model=JobStatusView, responses=_HIDDEN)
def job_status(job_id: str, user: CurrentUser, table: Jobs) -> JobStatusView:
    """Any job: a document or a text task."""
    return get_job_status(table, user, job_id, KINDS)


@app.post(
    "/process",
    response_model=JobStatusView,
    responses=_HIDDEN | {422: {"description": "The job is not a document of that type"}},
)
def process(request: ProcessRequest, user: CurrentUser, table: Jobs) -> JobStatusView:
    """The job's status, once it is confirmed to be a document of the given type."""
    return check_document(table, user, request, KINDS)


handler = Mangum(app, lifespan="off")
