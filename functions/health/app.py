"""GET /health: public. ``?deep=true`` also reaches the table and the queue (503 if one fails)."""

import ordo.boot  # noqa: F401  (first, before FastAPI: see ordo/boot.py)

# isort: split
from fastapi.responses import JSONResponse

from ordo import health
from ordo.clock import utcnow
from ordo.deps import Probes
from ordo.http import api_app, lambda_handler

app = api_app(title="health")


@app.get(
    "/health",
    response_model=health.Health,
    response_model_exclude_none=True,
    responses={503: {"model": health.Health, "description": "A dependency is unreachable"}},
)
def get_health(probes: Probes, deep: bool = False) -> JSONResponse:
    report = (
        health.check(probes, utcnow())
        if deep
        else health.Health(status="healthy", timestamp=utcnow())
    )
    return JSONResponse(
        report.model_dump(mode="json", exclude_none=True),
        status_code=200 if report.healthy else 503,
        headers={} if report.healthy else {"Retry-After": "1"},
    )


handler = lambda_handler(app)
