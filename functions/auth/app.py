"""/auth: register, sign in (OAuth2 password form or JSON), rotate tokens, sign out, who am I."""

import ordo.boot  # noqa: F401  (first, before FastAPI: see ordo/boot.py)

# isort: split
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Form, Response

from ordo import accounts
from ordo.accounts import (
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
    UserView,
)
from ordo.clock import utcnow
from ordo.deps import (
    BearerToken,
    ClientAddress,
    CurrentUser,
    Guard,
    Signing,
    SignInRules,
    Tokens,
    Users,
)
from ordo.http import api_app, lambda_handler

app = api_app(title="auth")

_SIGN_IN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Wrong username or password, or the account is inactive"},
    429: {"description": "Too many sign-in attempts for this username or address; see Retry-After"},
}


@app.post(
    "/auth/register",
    status_code=201,
    response_model=UserView,
    responses={
        409: {"description": "The email or the username is taken"},
        429: {"description": "Too many attempts from this address; see Retry-After"},
    },
)
def register(
    request: RegisterRequest, users: Users, guard: Guard, client: ClientAddress, limits: SignInRules
) -> UserView:
    return accounts.register(users, guard, request, now=utcnow(), client=client, limits=limits)


def _sign_in(
    *,
    users: Users,
    tokens: Tokens,
    guard: Guard,
    policy: Signing,
    client: ClientAddress,
    limits: SignInRules,
) -> Callable[[LoginRequest], TokenPair]:
    def sign_in(request: LoginRequest) -> TokenPair:
        return accounts.login(
            users, tokens, guard, request, policy=policy, now=utcnow(), client=client, limits=limits
        )

    return sign_in


SignIn = Annotated[Callable[[LoginRequest], TokenPair], Depends(_sign_in)]


@app.post("/auth/login", response_model=TokenPair, responses=_SIGN_IN_ERRORS)
def login_form(request: Annotated[LoginRequest, Form()], sign_in: SignIn) -> TokenPair:
    """The OAuth2 password flow (``application/x-www-form-urlencoded``), as Swagger UI sends."""
    return sign_in(request)


@app.post("/auth/login/json", response_model=TokenPair, responses=_SIGN_IN_ERRORS)
def login_json(request: LoginRequest, sign_in: SignIn) -> TokenPair:
    return sign_in(request)


@app.post(
    "/auth/refresh",
    response_model=TokenPair,
    responses={401: {"description": "Not a valid, unspent refresh token"}},
)
def refresh(request: RefreshRequest, users: Users, tokens: Tokens, policy: Signing) -> TokenPair:
    return accounts.refresh(users, tokens, request.refresh_token, policy, utcnow())


@app.post(
    "/auth/logout",
    status_code=204,
    responses={401: {"description": "Neither the refresh token nor the bearer token is valid"}},
)
def logout(
    tokens: Tokens, policy: Signing, bearer: BearerToken, request: LogoutRequest | None = None
) -> Response:
    """Revoke the session (refresh-token family) of the refresh token in the body and/or of the
    bearer access token. Its access tokens run out on their own, within their lifetime."""
    refresh_token = request.refresh_token if request else None
    accounts.logout(
        tokens, policy.verifier, utcnow(), refresh_token=refresh_token, access_token=bearer
    )
    return Response(status_code=204)


@app.get("/auth/me", response_model=UserView)
def me(user: CurrentUser) -> UserView:
    return UserView.of(user)


handler = lambda_handler(app)
