"""GET /tasks/{task_id}: a task's state and its place in the lane (its owner or an admin)."""

from typing import Annotated

from fastapi import Depends
from mangum import Mangum

from ordo.http import CurrentUser, api_app
from ordo.jobs import JobTable
from ordo.tasks import TaskView, get_task
from ordo.wiring import job_table

app = api_app(title="status")


@app.get("/tasks/{task_id}", response_model=TaskView)
def task_status(
    task_id: str, user: CurrentUser, table: Annotated[JobTable, Depends(job_table)]
) -> TaskView:
    return get_task(table, user, task_id)


handler = Mangum(app, lifespan="off")
