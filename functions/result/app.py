"""GET /tasks/{task_id}/result: a completed task's result, as often as asked (its owner or an
admin)."""

import ordo.boot  # noqa: F401  (first, before FastAPI: see ordo/boot.py)

# isort: split
from ordo.deps import CurrentUser, Jobs
from ordo.http import api_app, lambda_handler
from ordo.tasks import TaskResult, get_result

app = api_app(title="result")


@app.get(
    "/tasks/{task_id}/result",
    response_model=TaskResult,
    responses={409: {"description": "The task is pending, processing or failed"}},
)
def task_result(task_id: str, user: CurrentUser, table: Jobs) -> TaskResult:
    return get_result(table, user, task_id)


handler = lambda_handler(app)
