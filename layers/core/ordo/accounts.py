"""Accounts: users, roles, sign-in, token rotation and the rules of who may see what."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ordo.errors import Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized
from ordo.security import (
    Claims,
    TokenType,
    decode_token,
    dummy_hash,
    hash_password,
    issue_token,
    verify_password,
)

_BAD_LOGIN = "Incorrect username or password"


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


class User(BaseModel):
    """The stored user. ``password_hash`` never leaves the domain (see ``UserView``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    email: str
    username: str
    password_hash: str
    role: Role = Role.USER
    is_active: bool = True
    deleted: bool = False
    created_at: datetime
    updated_at: datetime
    token_generation: int = 0  # a password change bumps it: every earlier token stops working

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def may_see(self, owner_id: str | None) -> bool:
        return self.is_admin or owner_id == self.id

    def may_use(self, claims: Claims) -> bool:
        """Whether a valid token of this user's still acts for them."""
        return self.is_active and not self.deleted and claims.gen == self.token_generation


class UserView(BaseModel):
    id: str
    email: str
    username: str
    role: Role
    is_active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> UserView:
        return cls.model_validate(user.model_dump(exclude={"password_hash", "deleted"}))


def _check_password(password: str) -> str:
    if not (re.search(r"[A-Z]", password) and re.search(r"[a-z]", password)):
        raise ValueError("password needs an upper-case and a lower-case letter")
    if not re.search(r"[0-9]", password):
        raise ValueError("password needs a digit")
    return password


def _check_email(email: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc


Username = Field(min_length=3, max_length=100, pattern=r"^[\w.@+-]+$")
Password = Field(min_length=8, max_length=100)


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=254)
    username: str = Username
    password: str = Password

    _email = field_validator("email")(_check_email)
    _password = field_validator("password")(_check_password)


class LoginRequest(BaseModel):
    username: str = Field(max_length=254)
    password: str = Field(max_length=100)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(max_length=4096)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret


class UserUpdate(BaseModel):
    """``PUT /users/{id}``: every field optional; ``role`` and ``is_active`` are admin-only."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=254)
    username: str | None = Field(default=None, min_length=3, max_length=100, pattern=r"^[\w.@+-]+$")
    password: str | None = Field(default=None, min_length=8, max_length=100)
    role: Role | None = None
    is_active: bool | None = None

    _email = field_validator("email")(lambda v: None if v is None else _check_email(v))
    _password = field_validator("password")(lambda v: None if v is None else _check_password(v))


class RoleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


class UserPage(BaseModel):
    items: list[UserView]
    next_cursor: str | None


# --- errors -----------------------------------------------------------------------------------


class UserNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("User not found")


class EmailTaken(Conflict):
    def __init__(self) -> None:
        super().__init__("Email already registered")


class UsernameTaken(Conflict):
    def __init__(self) -> None:
        super().__init__("Username already taken")


# --- ports ------------------------------------------------------------------------------------


class UserTable(Protocol):
    def create(self, user: User) -> None:
        """Raises ``EmailTaken`` / ``UsernameTaken``; uniqueness holds under concurrency."""
        ...

    def get(self, user_id: str) -> User | None: ...

    def find_by_username(self, username: str) -> User | None: ...

    def save(self, before: User, after: User) -> User:
        """Replace ``before`` with ``after``; raises ``Conflict`` if it changed meanwhile."""
        ...

    def page(self, limit: int, cursor: str | None) -> tuple[list[User], str | None]: ...


class RefreshTokens(Protocol):
    def remember(self, claims: Claims) -> None: ...

    def consume(self, jti: str) -> bool:
        """Forget the token; False if it was unknown or already used."""
        ...


class LoginGuard(Protocol):
    def retry_after(self, username: str, now: datetime) -> int:
        """Seconds until this username may try again (0: now)."""
        ...

    def failed(self, username: str, now: datetime) -> None: ...

    def succeeded(self, username: str) -> None: ...


@dataclass(frozen=True)
class TokenPolicy:
    secret: str
    access_lifetime: timedelta = timedelta(minutes=15)
    refresh_lifetime: timedelta = timedelta(days=7)


# --- use cases --------------------------------------------------------------------------------


def new_user_id() -> str:
    return secrets.token_hex(16)


def register(users: UserTable, request: RegisterRequest, now: datetime) -> UserView:
    user = User(
        id=new_user_id(),
        email=request.email,
        username=request.username,
        password_hash=hash_password(request.password),
        created_at=now,
        updated_at=now,
    )
    users.create(user)
    return UserView.of(user)


def ensure_admin(users: UserTable, request: RegisterRequest, now: datetime) -> tuple[User, bool]:
    """Create this admin, or make the existing user of that name an active admin with this
    password. Returns the user and whether it was created."""
    existing = users.find_by_username(request.username)
    password_hash = hash_password(request.password)
    if existing is None:
        admin = User(
            id=new_user_id(),
            email=request.email,
            username=request.username,
            password_hash=password_hash,
            role=Role.ADMIN,
            created_at=now,
            updated_at=now,
        )
        users.create(admin)
        return admin, True
    restored = {"is_active": True, "deleted": False, "role": Role.ADMIN, "updated_at": now}
    new_password = {
        "password_hash": password_hash,
        "token_generation": existing.token_generation + 1,
    }
    admin = existing.model_copy(update=restored | new_password)
    return users.save(existing, admin), False


def _pair(user: User, tokens: RefreshTokens, policy: TokenPolicy, now: datetime) -> TokenPair:
    access, _ = issue_token(
        user.id,
        user.role,
        TokenType.ACCESS,
        now=now,
        lifetime=policy.access_lifetime,
        secret=policy.secret,
        generation=user.token_generation,
    )
    refresh, claims = issue_token(
        user.id,
        user.role,
        TokenType.REFRESH,
        now=now,
        lifetime=policy.refresh_lifetime,
        secret=policy.secret,
        generation=user.token_generation,
    )
    tokens.remember(claims)
    return TokenPair(access_token=access, refresh_token=refresh)


def login(
    users: UserTable,
    tokens: RefreshTokens,
    guard: LoginGuard,
    request: LoginRequest,
    *,
    policy: TokenPolicy,
    now: datetime,
) -> TokenPair:
    """Wrong password, unknown user and inactive user all get the same 401."""
    wait = guard.retry_after(request.username, now)
    if wait:
        raise TooManyRequests("Too many failed sign-ins; try again later", retry_after=wait)
    user = users.find_by_username(request.username)
    password_ok = verify_password(user.password_hash if user else dummy_hash(), request.password)
    if user is None or not password_ok or not user.is_active or user.deleted:
        guard.failed(request.username, now)
        raise Unauthorized(_BAD_LOGIN)
    guard.succeeded(request.username)
    return _pair(user, tokens, policy, now)


def refresh(
    users: UserTable, tokens: RefreshTokens, token: str, policy: TokenPolicy, now: datetime
) -> TokenPair:
    """Rotate: the presented refresh token is spent, whatever happens next."""
    claims = decode_token(token, TokenType.REFRESH, policy.secret, now)
    if not tokens.consume(claims.jti):
        raise Unauthorized("Refresh token already used or revoked")
    user = users.get(claims.sub)
    if user is None or not user.may_use(claims):
        raise Unauthorized("Could not validate credentials")
    return _pair(user, tokens, policy, now)


def authenticate(users: UserTable, token: str, policy: TokenPolicy, now: datetime) -> User:
    """The user behind an access token, if the token is valid and the user may still act."""
    claims = decode_token(token, TokenType.ACCESS, policy.secret, now)
    user = users.get(claims.sub)
    if user is None or not user.may_use(claims):
        raise Unauthorized("Could not validate credentials")
    return user


_USER_ID = re.compile(r"^[0-9a-f]{32}$")


def _visible(users: UserTable, viewer: User, user_id: str) -> User:
    user = users.get(user_id) if _USER_ID.fullmatch(user_id) else None
    if user is None or not viewer.may_see(user.id):
        raise UserNotFound()
    return user


def _not_self(viewer: User, user: User, action: str) -> None:
    """An admin cannot lock themself out; another admin has to do it."""
    if viewer.id == user.id:
        raise Conflict(f"You cannot {action} your own account")


def get_user(users: UserTable, viewer: User, user_id: str) -> UserView:
    return UserView.of(_visible(users, viewer, user_id))


def update_user(
    users: UserTable, viewer: User, user_id: str, changes: UserUpdate, now: datetime
) -> UserView:
    user = _visible(users, viewer, user_id)
    fields = changes.model_dump(exclude_unset=True, exclude_none=True)
    if ({"role", "is_active"} & fields.keys()) and not viewer.is_admin:
        raise Forbidden("Only an admin may change role or is_active")
    if fields.get("role", Role.ADMIN) is not Role.ADMIN or fields.get("is_active") is False:
        _not_self(viewer, user, "demote or deactivate")
    if "password" in fields:  # and sign the account out everywhere
        fields["password_hash"] = hash_password(fields.pop("password"))
        fields["token_generation"] = user.token_generation + 1
    updated = user.model_copy(update=fields | {"updated_at": now})
    return UserView.of(users.save(user, updated))


def set_role(users: UserTable, viewer: User, user_id: str, role: Role, now: datetime) -> UserView:
    require_admin(viewer)
    user = _visible(users, viewer, user_id)
    if role is not Role.ADMIN:
        _not_self(viewer, user, "demote")
    return UserView.of(users.save(user, user.model_copy(update={"role": role, "updated_at": now})))


def delete_user(users: UserTable, viewer: User, user_id: str, now: datetime) -> None:
    """Soft delete: the account can no longer sign in; its jobs stay."""
    require_admin(viewer)
    user = _visible(users, viewer, user_id)
    _not_self(viewer, user, "delete")
    users.save(
        user, user.model_copy(update={"deleted": True, "is_active": False, "updated_at": now})
    )


def list_users(users: UserTable, viewer: User, limit: int, cursor: str | None) -> UserPage:
    require_admin(viewer)
    page, next_cursor = users.page(limit, cursor)
    return UserPage(items=[UserView.of(u) for u in page], next_cursor=next_cursor)


def require_admin(viewer: User) -> None:
    if not viewer.is_admin:
        raise Forbidden("Admin role required")
