"""/upload, /status/{job_id}, /process: document jobs (invoices, contracts) on the task lane."""

import ordo.boot  # noqa: F401  (first, before FastAPI: see ordo/boot.py)

# isort: split
from typing import Any

from ordo.clock import utcnow
from ordo.deps import CurrentUser, Jobs, Limits, Queue
from ordo.documents import (
    MAX_DOCUMENT_BYTES,
    DocumentAccepted,
    ProcessRequest,
    UploadRequest,
    check_document,
    submit_document,
)
from ordo.http import api_app, lambda_handler
from ordo.jobs import JobStatusView, get_job_status
from ordo.observability import MetricUnit, metrics
from ordo.registry import KINDS

app = api_app(title="documents")

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
    request: UploadRequest, user: CurrentUser, table: Jobs, queue: Queue, limits: Limits
) -> DocumentAccepted:
    """Queue an invoice or a contract on the lane; follow it with `GET /status/{job_id}`."""
    accepted = submit_document(
        table,
        queue,
        request,
        owner=user.id,
        now=utcnow(),
        retention_days=limits.retention_days,
        max_pending=limits.max_pending,
    )
    metrics.add_metric(name="JobsAccepted", unit=MetricUnit.Count, value=1)
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


handler = lambda_handler(app)
