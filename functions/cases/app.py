"""/cases: create a case and read it back as its simulated review moves on."""

import ordo.boot  # noqa: F401  (first, before FastAPI: see ordo/boot.py)

# isort: split
from typing import Annotated, Any

from fastapi import Body, Query, Response

from ordo import cases, clock
from ordo.cases import (
    MAX_PAGE,
    CaseCreated,
    CasePage,
    CaseRequest,
    CaseStatus,
    CaseView,
)
from ordo.deps import Cases, CurrentUser, Timer, Timing
from ordo.http import api_app, lambda_handler

app = api_app(title="cases")

_HIDDEN: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such case, or not one the caller may see"}
}


@app.post("/cases", status_code=201, response_model=CaseCreated)
def create_case(
    *,
    user: CurrentUser,
    table: Cases,
    timer: Timer,
    timing: Timing,
    response: Response,
    request: Annotated[CaseRequest | None, Body()] = None,
) -> CaseCreated:
    """Returns at once; the case is `submitted`, then `processing` from 10 s, `complete` from
    30 s (times multiplied by `ORDO_TIME_SCALE`)."""
    case = cases.open_case(
        table,
        timer,
        request or CaseRequest(),
        owner=user.id,
        now=clock.utcnow(),
        timeline=timing,
    )
    response.headers["Location"] = f"/cases/{case.case_id}"
    return CaseCreated(case_id=case.case_id, status=case.status, created_at=case.created_at)


@app.get("/cases", response_model=CasePage)
def list_cases(
    *,
    user: CurrentUser,
    table: Cases,
    timing: Timing,
    status: CaseStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> CasePage:
    """The caller's cases (an admin's: everyone's), newest first."""
    return cases.list_cases(
        table, user, status=status, limit=limit, cursor=cursor, now=clock.utcnow(), timeline=timing
    )


@app.get("/cases/{case_id}", response_model=CaseView, responses=_HIDDEN)
def get_case(case_id: str, user: CurrentUser, table: Cases, timing: Timing) -> CaseView:
    return cases.get_case(table, user, case_id, clock.utcnow(), timing)


handler = lambda_handler(app)
