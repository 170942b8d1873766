"""What routes depend on, as ``Annotated`` aliases: ``def route(user: CurrentUser, table: Jobs)``.

As ``deps.py`` in FastAPI's full-stack template (``SessionDep``, ``CurrentUser``). Each alias names
its builder in ``ordo.wiring``, which builds the adapter on first use, once per container; a
test swaps in a fake with ``app.dependency_overrides[builder]``.

Cheap to import: the types of ``ordo.cases``, ``ordo.catalog``, ``ordo.aggregation`` and
``ordo.health`` are named as strings (FastAPI reads only a dependency's ``Depends``), so a
function loads only the domain modules its own routes use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from ordo import errors, wiring
from ordo.accounts import (
    LoginGuard,
    RefreshTokens,
    SignInLimits,
    TokenPolicy,
    User,
    UserTable,
    authenticate,
)
from ordo.clock import utcnow
from ordo.jobs import JobQueue, JobTable, QueueGauge
from ordo.settings import JobLimits

if TYPE_CHECKING:
    from ordo.aggregation import Aggregator, PostStore
    from ordo.cases import CaseTable, CaseTimer, Timeline
    from ordo.catalog import ProductTable
    from ordo.health import Probe

# --- who is asking ----------------------------------------------------------------------------

_bearer = OAuth2PasswordBearer(tokenUrl="/auth/login", auto_error=False)


def authenticated_user(token: Annotated[str | None, Depends(_bearer)]) -> User:
    """The user behind the request's bearer access token, or a 401 for anything else."""
    if not token:
        raise errors.Unauthorized("Not authenticated")
    return authenticate(wiring.user_table(), token, wiring.token_verifier(), utcnow())


def client_address(request: Request) -> str:
    """The caller's address as API Gateway saw it (``requestContext.http.sourceIp``)."""
    event = request.scope.get("aws.event") or {}
    address = event.get("requestContext", {}).get("http", {}).get("sourceIp")
    if address:
        return str(address)
    return request.client.host if request.client else "unknown"


# Every non-public route takes one.
CurrentUser = Annotated[User, Depends(authenticated_user)]
# The bearer token as sent, unchecked (``None`` if there is none): for sign-out, which must
# work with whichever of its tokens is still valid.
BearerToken = Annotated[str | None, Depends(_bearer)]
# For per-address rate limits.
ClientAddress = Annotated[str, Depends(client_address)]

# --- jobs and the lane ------------------------------------------------------------------------

Jobs = Annotated[JobTable, Depends(wiring.job_table)]
Queue = Annotated[JobQueue, Depends(wiring.job_queue)]
DeadLetters = Annotated[QueueGauge, Depends(wiring.dead_letter_gauge)]
# The pending-job quota and the retention of ended jobs, for every route that accepts a job.
Limits = Annotated[JobLimits, Depends(wiring.job_limits)]

# --- accounts ---------------------------------------------------------------------------------

Users = Annotated[UserTable, Depends(wiring.user_table)]
Tokens = Annotated[RefreshTokens, Depends(wiring.refresh_tokens)]
Guard = Annotated[LoginGuard, Depends(wiring.login_guard)]
SignInRules = Annotated[SignInLimits, Depends(wiring.sign_in_limits)]
Signing = Annotated[TokenPolicy, Depends(wiring.token_policy)]

# --- the other domains: named as strings, so only their own functions import them --------------

Cases = Annotated["CaseTable", Depends(wiring.case_table)]
Timer = Annotated["CaseTimer", Depends(wiring.case_timer)]
Timing = Annotated["Timeline", Depends(wiring.timeline)]
Fetcher = Annotated["Aggregator", Depends(wiring.aggregator)]
Posts = Annotated["PostStore", Depends(wiring.post_store)]
Probes = Annotated["dict[str, Probe]", Depends(wiring.dependency_probes)]


async def _product_table() -> ProductTable:
    """``async``, as the catalog's read routes: a sync dependency would cost each request a
    worker thread (see ``functions/products/app.py``)."""
    return wiring.product_table()


Products = Annotated["ProductTable", Depends(_product_table)]
