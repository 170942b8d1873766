"""GET /tasks/{task_id}/result: a completed task's result, as often as asked (its owner or an
admin)."""

import ordo.boot  # noqa: F401  (first, before FastAPI: see ordo/boot.py)

# isort: split
from typing import Annotated

from fastapi import Depends
from mangum import Mangum

from ordo.http import CurrentUser, api_app
from ordo.jobs import JobTable
from ordo.tasks import TaskResult, get_result
from ordo.wiring import job_table

app = api_app(title="result")


@app.get(
    "/tasks/{task_id}/result",
    response_model=TaskResult,
    responses={409: {"description": "The task is pending, processing or failed"}},
)
def task_result(
    task_id: str, user: CurrentUser, table: Annotated[JobTable, Depends(job_table)]
) -> TaskResult:
    return get_result(table, user, task_id)


handler = Mangum(app, lifespan="off")
