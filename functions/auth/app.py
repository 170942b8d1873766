"""/auth: register, sign in (OAuth2 password form or JSON), rotate tokens, and who am I."""

from typing import Annotated, Any

from fastapi import Depends, Form
from mangum import Mangum

from ordo import accounts
from ordo.accounts import (
    LoginGuard,
    LoginRequest,
    RefreshRequest,
    RefreshTokens,
    RegisterRequest,
    TokenPair,
    TokenPolicy,
    UserTable,
    UserView,
)
from ordo.clock import utcnow
from ordo.http import CurrentUser, api_app
from ordo.wiring import login_guard, refresh_tokens, token_policy, user_table

app = api_app(title="auth")

Users = Annotated[UserTable, Depends(user_table)]
Tokens = Annotated[RefreshTokens, Depends(refresh_tokens)]
Guard = Annotated[LoginGuard, Depends(login_guard)]
Policy = Annotated[TokenPolicy, Depends(token_policy)]

_SIGN_IN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Wrong username or password, or the account is inactive"},
    429: {"description": "Too many failed sign-ins for this username; see Retry-After"},
}


@app.post(
    "/auth/register",
    status_code=201,
    response_model=UserView,
    responses={409: {"description": "The email or the username is taken"}},
)
def register(request: RegisterRequest, users: Users) -> UserView:
    return accounts.register(users, request, utcnow())


@app.post("/auth/login", response_model=TokenPair, responses=_SIGN_IN_ERRORS)
def login_form(
    request: Annotated[LoginRequest, Form()],
    users: Users,
    tokens: Tokens,
    guard: Guard,
    policy: Policy,
) -> TokenPair:
    """The OAuth2 password flow (``application/x-www-form-urlencoded``), as Swagger UI sends."""
    return accounts.login(users, tokens, guard, request, policy=policy, now=utcnow())


@app.post("/auth/login/json", response_model=TokenPair, responses=_SIGN_IN_ERRORS)
def login_json(
    request: LoginRequest, users: Users, tokens: Tokens, guard: Guard, policy: Policy
) -> TokenPair:
    return accounts.login(users, tokens, guard, request, policy=policy, now=utcnow())


@app.post(
    "/auth/refresh",
    response_model=TokenPair,
    responses={401: {"description": "Not a valid, unspent refresh token"}},
)
def refresh(request: RefreshRequest, users: Users, tokens: Tokens, policy: Policy) -> TokenPair:
    return accounts.refresh(users, tokens, request.refresh_token, policy, utcnow())


@app.get("/auth/me", response_model=UserView)
def me(user: CurrentUser) -> UserView:
    return UserView.of(user)


handler = Mangum(app, lifespan="off")
