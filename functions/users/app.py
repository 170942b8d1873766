"""/users: the admin's view of every account, and each user's view of their own."""

import ordo.boot  # noqa: F401  (first, before FastAPI: see ordo/boot.py)

# isort: split
from typing import Annotated, Any

from fastapi import Query, Response

from ordo import accounts
from ordo.accounts import RoleUpdate, UserPage, UserUpdate, UserView
from ordo.clock import utcnow
from ordo.deps import ClientAddress, CurrentUser, Guard, SignInRules, Users
from ordo.http import api_app, lambda_handler

app = api_app(title="users")

_ADMIN_ONLY: dict[int | str, dict[str, Any]] = {403: {"description": "Admin role required"}}
_CREDENTIAL_CHANGE: dict[int | str, dict[str, Any]] = {
    403: {
        "description": "Only an admin may change role or is_active; or current_password is wrong"
    },
    422: {"description": "Invalid fields, or no current_password for your own credentials"},
    429: {"description": "Too many current_password attempts; see Retry-After"},
}
_HIDDEN: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such user, or not one the caller may see"}
}


@app.get("/users", response_model=UserPage, responses=_ADMIN_ONLY)
def list_users(
    user: CurrentUser,
    users: Users,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> UserPage:
    """Oldest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    return accounts.list_users(users, user, limit, cursor)


@app.get("/users/{user_id}", response_model=UserView, responses=_HIDDEN)
def get_user(user_id: str, user: CurrentUser, users: Users) -> UserView:
    return accounts.get_user(users, user, user_id)


@app.put(
    "/users/{user_id}",
    response_model=UserView,
    responses=_HIDDEN | _CREDENTIAL_CHANGE,
)
def update_user(
    user_id: str,
    changes: UserUpdate,
    *,
    user: CurrentUser,
    users: Users,
    guard: Guard,
    client: ClientAddress,
    limits: SignInRules,
) -> UserView:
    """Changing your own email, username or password needs ``current_password``; any such
    change signs the account out everywhere (its tokens stop working)."""
    return accounts.update_user(
        users, guard, user, user_id, changes, now=utcnow(), client=client, limits=limits
    )


@app.delete("/users/{user_id}", status_code=204, responses=_ADMIN_ONLY | _HIDDEN)
def delete_user(user_id: str, user: CurrentUser, users: Users) -> Response:
    """Soft delete: the account can no longer sign in or use its tokens; its jobs remain."""
    accounts.delete_user(users, user, user_id, utcnow())
    return Response(status_code=204)


@app.put("/users/{user_id}/role", response_model=UserView, responses=_ADMIN_ONLY | _HIDDEN)
def set_role(user_id: str, change: RoleUpdate, user: CurrentUser, users: Users) -> UserView:
    return accounts.set_role(users, user, user_id, change.role, utcnow())


handler = lambda_handler(app)
