"""Accounts: users, roles, sign-in, token rotation and the rules of who may see what."""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ordo.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from ordo.security import dummy_hash, hash_password, verify_password, visible
from ordo.tokens import INVALID as INVALID_TOKEN
from ordo.tokens import (
    Claims,
    SigningKey,
    TokenType,
    TokenVerifier,
    issue_token,
    new_token_id,
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

    @property
    def owner(self) -> str:
        """An account is its own: its user and the admins see it."""
        return self.id

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


# Email addresses: ordo's own rule (email-validator's import alone cost every API function's cold
# start ~25 ms, through FastAPI). A dot-atom local part of ASCII ``atext`` or any other printable
# non-ASCII character, an ``@``, then a domain of two or more labels which, in their IDNA ASCII
# form (A-labels, ``xn--...``), are letters, digits and inner hyphens. No quoted local parts, IP
# literals or special-use names (``localhost``, ``.test``...). The stdlib's IDNA codec is IDNA
# 2003 (email-validator used the ``idna`` package, IDNA 2008): where the two disagree, on
# ``ß``, ``ς`` and the zero-width joiners, the address is refused rather than sent elsewhere.
_ATEXT = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-"
)
_A_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_IDNA_DEVIATIONS = frozenset("\u00df\u03c2\u200c\u200d")
_SPECIAL_USE = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})
EMAIL_RULE = "an address like name@example.com"


def _starts_with_a_combining_mark(text: str) -> bool:
    """A leading mark (category M) would combine with whatever is written before the text."""
    return unicodedata.category(text[:1] or "a").startswith("M")


class _Refused(ValueError):
    """Why an address is refused: the end of ``email must be ...: <why>``."""


def _check_local_part(local: str) -> None:
    if not local or len(local) > 64:
        raise _Refused("the part before the @ must be 1 to 64 characters")
    if any(not (c in _ATEXT or c == "." or (c > "\x7f" and c.isprintable())) for c in local):
        raise _Refused("the part before the @ has a character an address cannot have")
    if _starts_with_a_combining_mark(local):
        raise _Refused("the part before the @ cannot start with a combining mark")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise _Refused("the part before the @ cannot start or end with a dot, or have two in a row")


def _check_a_label(label: str) -> None:
    if not _A_LABEL.fullmatch(label):
        raise _Refused(
            "the domain must be labels of letters, digits and hyphens (1 to 63), between dots"
        )
    if label[2:4] == "--" and not label.startswith("xn--"):
        raise _Refused(f"the domain label {label} cannot have '--' as its 3rd and 4th characters")


def _bidi(char: str) -> str:
    return unicodedata.bidirectional(char)


def _right_to_left(labels: Sequence[str]) -> bool:
    return any(_bidi(c) in ("R", "AL", "AN") for label in labels for c in label)


def _a_label(label: str) -> str:
    """The IDNA ASCII form of a label (``bücher`` is ``xn--bcher-kva``), by the stdlib's codec
    (nameprep, then punycode)."""
    if label.isascii():
        return label
    try:
        return label.encode("idna").decode("ascii")
    except UnicodeError:
        raise _Refused(f"the domain label {label} is not a valid internationalised name") from None


def _u_label(label: str) -> str:
    """The Unicode form of an A-label (``xn--bcher-kva`` is ``bücher``); refused if it is not
    valid punycode, or does not encode back to itself."""
    if not label.startswith("xn--"):
        return label
    try:
        return label.encode("ascii").decode("idna")
    except UnicodeError:
        raise _Refused(f"the domain label {label} is not valid IDNA") from None


def _a_labels(domain: str) -> list[str]:
    """The domain's labels in IDNA ASCII form (A-labels), checked."""
    if len(domain) > 253:
        raise _Refused("the domain must be at most 253 characters")
    if deviations := sorted(_IDNA_DEVIATIONS.intersection(domain)):
        shown = ", ".join(f"U+{ord(c):04X}" for c in deviations)
        raise _Refused(f"the domain has {shown}, which IDNA versions read as different domains")
    labels = domain.replace("\u3002", ".").split(".")  # the ideographic full stop is a dot too
    if len(labels) < 2:
        raise _Refused("the domain must have a dot, as in example.com")
    if "" in labels:
        raise _Refused("the domain cannot start or end with a dot, or have two in a row")
    a_labels = [_a_label(label) for label in labels]
    for label in a_labels:
        _check_a_label(label)
    if len(".".join(a_labels)) > 253:
        raise _Refused("the domain must be at most 253 characters in its IDNA (xn--) form")
    if a_labels[-1].isdigit() or a_labels[-1] in _SPECIAL_USE:
        raise _Refused(f"{domain} is not a domain email can be sent to")
    return a_labels


def _normalized_domain(domain: str) -> str:
    """The domain as stored: its labels in Unicode form (U-labels), whichever form it came in."""
    u_labels = [_u_label(label) for label in _a_labels(domain)]
    if any(map(_starts_with_a_combining_mark, u_labels)):
        raise _Refused("a label of the domain cannot start with a combining mark")
    if _right_to_left(u_labels) and not all(_bidi(u[0]) in ("L", "R", "AL") for u in u_labels):
        # RFC 5893's rule 1 across labels: 1.xn--4dbc.com and xn--4dbc.1.com look alike
        raise _Refused("in a right-to-left domain, every label must start with a letter")
    return ".".join(u_labels)


def _check_email(email: str) -> str:
    """The address, NFC-normalised, its domain lower-case in Unicode form (``Bob@EXAMPLE.com``
    is ``Bob@example.com``, ``a@xn--bcher-kva.de`` is ``a@bücher.de``), as email-validator
    normalised it. Uniqueness compares ``email_key`` of this form."""
    local, at, domain = unicodedata.normalize("NFC", email).rpartition("@")
    domain = unicodedata.normalize("NFKC", domain).lower()  # as IDNA maps it: full-width is ASCII
    try:
        if not at:
            raise _Refused("it has no @")
        _check_local_part(local)
        domain = _normalized_domain(domain)
    except _Refused as refused:
        raise ValueError(f"email must be {EMAIL_RULE}: {refused}") from None
    return f"{local}@{domain}"


def email_key(email: str) -> str:
    """What makes two addresses the same account: the whole address, case-folded."""
    return email.lower()


# Usernames: NFKC-normalised, then 3-100 of ASCII letters, digits and ``._-``; compared
# case-folded. A full-width ``admin`` becomes ``admin``; ``admin\u200d`` is refused.
_USERNAME = re.compile(r"[A-Za-z0-9._-]{3,100}")
USERNAME_RULE = "3 to 100 characters: ASCII letters, digits, '.', '_' and '-'"


def _check_username(username: str) -> str:
    normalized = unicodedata.normalize("NFKC", username)
    if not _USERNAME.fullmatch(normalized):
        raise ValueError(f"username must be {USERNAME_RULE}")
    return normalized


def username_key(username: str) -> str:
    """What makes two usernames the same account: NFKC, then case-folded."""
    return unicodedata.normalize("NFKC", username).casefold()


Username = Field(min_length=3, max_length=100)
Password = Field(min_length=8, max_length=100)


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=254)
    username: str = Username
    password: str = Password

    _email = field_validator("email")(_check_email)
    _username = field_validator("username")(_check_username)
    _password = field_validator("password")(_check_password)


class LoginRequest(BaseModel):
    username: str = Field(max_length=254)
    password: str = Field(max_length=100)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(max_length=4096)


class LogoutRequest(BaseModel):
    """``POST /auth/logout``: the refresh token of the session to end (or only the bearer)."""

    refresh_token: str | None = Field(default=None, max_length=4096)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret


class UserUpdate(BaseModel):
    """``PUT /users/{id}``: every field optional; ``role`` and ``is_active`` are admin-only.

    Changing one's own email, username or password needs ``current_password``.
    """

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=254)
    username: str | None = Field(default=None, min_length=3, max_length=100)
    password: str | None = Field(default=None, min_length=8, max_length=100)
    role: Role | None = None
    is_active: bool | None = None
    current_password: str | None = Field(default=None, max_length=100)

    _email = field_validator("email")(lambda v: None if v is None else _check_email(v))
    _username = field_validator("username")(lambda v: None if v is None else _check_username(v))
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


class SessionRevoked(Unauthorized):
    """The refresh token's family was signed out, revoked, or has expired."""

    def __init__(self) -> None:
        super().__init__("Refresh token already used or revoked")


class RefreshTokenReused(Unauthorized):
    """A spent refresh token came back: someone holds a copy, so the whole family ends."""

    def __init__(self) -> None:
        super().__init__("Refresh token reused; the session is revoked, please sign in again")


class RefreshTokens(Protocol):
    """Refresh-token families: one per sign-in, each with the one refresh token that may be
    spent next."""

    def start(self, claims: Claims) -> None:
        """A new family (``claims.fam``) whose current token is this one."""
        ...

    def rotate(self, spent: Claims, fresh: Claims) -> None:
        """Make ``fresh`` current if ``spent`` is, in one conditional write. Raises
        ``RefreshTokenReused`` (after revoking the family) if ``spent`` was spent already,
        and ``SessionRevoked`` if the family is revoked or gone."""
        ...

    def revoke(self, family: str) -> None:
        """End the family; idempotent, and a family that is gone stays gone."""
        ...


@dataclass(frozen=True)
class Attempts:
    """One counter of sign-in attempts. ``version`` makes every write conditional on the
    record being as it was read."""

    count: int
    window_ends: int  # epoch seconds; after it the record no longer counts
    locked_until: int = 0
    version: int = 0


class LoginGuard(Protocol):
    """Stores attempt counters; the rules are ``admit`` below."""

    def read(self, keys: Sequence[str]) -> dict[str, Attempts]:
        """The counters that exist, read strongly consistently."""
        ...

    def write(self, changes: Mapping[str, tuple[Attempts | None, Attempts]]) -> bool:
        """Store every ``after`` if every counter is still its ``before`` (``None``: absent),
        all or nothing. False if one changed meanwhile."""
        ...

    def forget(self, keys: Sequence[str]) -> None: ...

    def refund(self, key: str) -> None:
        """Take one attempt back (a sign-in that succeeded), never below zero."""
        ...


@dataclass(frozen=True)
class AttemptLimit:
    """``free`` attempts in a window, then each admitted attempt locks the key for twice as
    long as the last, from ``first_lock`` up to ``longest``. The count is forgotten after
    ``window`` with no attempt and no lock."""

    free: int
    first_lock: timedelta = timedelta(seconds=30)
    longest: timedelta = timedelta(minutes=15)
    window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class SignInLimits:
    """Three counters, all charged before a password is checked (README: "Rate limits")."""

    user_at_client: AttemptLimit = AttemptLimit(free=5)
    # Across all addresses: a distributed guess slows, yet caps what an attacker costs the owner.
    user: AttemptLimit = AttemptLimit(free=20, longest=timedelta(minutes=2))
    # Across usernames, and registrations too: bulk guessing and email enumeration.
    client: AttemptLimit = AttemptLimit(free=30)


def admit(record: Attempts | None, limit: AttemptLimit, now: int) -> tuple[Attempts, int]:
    """The counter after one more attempt, and 0; or the counter unchanged and the seconds
    to wait."""
    if record is None or record.window_ends <= now:
        record = Attempts(count=0, window_ends=now, version=record.version if record else 0)
    if record.locked_until > now:
        return record, record.locked_until - now
    count = record.count + 1
    locked_until = 0
    if count >= limit.free:
        doublings = min(count - limit.free, 16)  # past `longest` long before this
        lock = min(limit.first_lock * 2**doublings, limit.longest)
        locked_until = now + int(lock.total_seconds())
    window_ends = max(now, locked_until) + int(limit.window.total_seconds())
    return Attempts(count, window_ends, locked_until, record.version + 1), 0


_ADMIT_TRIES = 8


def charge(guard: LoginGuard, limits: Mapping[str, AttemptLimit], now: datetime) -> None:
    """Count one attempt on every key, atomically, or raise ``TooManyRequests``.

    Charged before the password is verified, so a burst of parallel guesses cannot all pass
    one check: each admitted attempt is a conditional write on what was read.
    """
    epoch = int(now.timestamp())
    for _ in range(_ADMIT_TRIES):
        records = guard.read(list(limits))
        changes: dict[str, tuple[Attempts | None, Attempts]] = {}
        wait = 0
        for key, limit in limits.items():
            after, key_wait = admit(records.get(key), limit, epoch)
            wait = max(wait, key_wait)
            changes[key] = (records.get(key), after)
        if wait:
            raise TooManyRequests("Too many failed sign-ins; try again later", retry_after=wait)
        if guard.write(changes):
            return
    raise TooManyRequests("Too many sign-ins at once; try again in a moment", retry_after=1)


def client_key(client: str) -> str:
    return f"client#{client[:64]}"


def _user_keys(username: str, client: str) -> tuple[str, str]:
    name = username_key(username)[:100]
    return f"user#{name}", f"user#{name}#client#{client[:64]}"


def _charge_sign_in(
    guard: LoginGuard, username: str, client: str, limits: SignInLimits, now: datetime
) -> None:
    user, user_at_client = _user_keys(username, client)
    charge(
        guard,
        {
            user_at_client: limits.user_at_client,
            user: limits.user,
            client_key(client): limits.client,
        },
        now,
    )


def _signed_in(guard: LoginGuard, username: str, client: str) -> None:
    """The owner got in: their counters start over; the address gets this attempt back."""
    guard.forget(_user_keys(username, client))
    guard.refund(client_key(client))


@dataclass(frozen=True)
class TokenPolicy:
    """What the Auth function issues tokens with: the private key, and the verifier (public
    keys, issuer and audience) that the tokens it issues must pass."""

    signing_key: SigningKey
    verifier: TokenVerifier
    access_lifetime: timedelta = timedelta(minutes=15)
    refresh_lifetime: timedelta = timedelta(days=7)

    def issue(self, user: User, kind: TokenType, family: str, now: datetime) -> tuple[str, Claims]:
        lifetime = self.access_lifetime if kind is TokenType.ACCESS else self.refresh_lifetime
        return issue_token(
            self.signing_key,
            user.id,
            user.role,
            kind,
            now=now,
            lifetime=lifetime,
            generation=user.token_generation,
            family=family,
            issuer=self.verifier.issuer,
            audience=self.verifier.audience,
        )


# --- use cases --------------------------------------------------------------------------------


def new_user_id() -> str:
    return secrets.token_hex(16)


def register(
    users: UserTable,
    guard: LoginGuard,
    request: RegisterRequest,
    *,
    now: datetime,
    client: str,
    limits: SignInLimits = SignInLimits(),
) -> UserView:
    """Every attempt counts against the caller's address, so that nobody can find out in
    bulk which emails are registered (a 409 names the field that is taken)."""
    charge(guard, {client_key(client): limits.client}, now)
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


class NotAnAdmin(Conflict):
    def __init__(self, username: str) -> None:
        super().__init__(
            f"{username} is an existing account without the admin role. Promoting it would give"
            " its owner admin rights and a new password; pass --force if that is what you want"
        )


def ensure_admin(
    users: UserTable, request: RegisterRequest, now: datetime, *, force: bool = False
) -> tuple[User, bool]:
    """Create this admin, or reset the existing admin of that name to active with this
    password. An existing non-admin is promoted only with ``force``. Returns the user and
    whether it was created."""
    existing = users.find_by_username(request.username)
    if existing is not None and not existing.is_admin and not force:
        raise NotAnAdmin(existing.username)
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


def _issue_pair(
    user: User, policy: TokenPolicy, family: str, now: datetime
) -> tuple[TokenPair, Claims]:
    access, _ = policy.issue(user, TokenType.ACCESS, family, now)
    refresh, claims = policy.issue(user, TokenType.REFRESH, family, now)
    return TokenPair(access_token=access, refresh_token=refresh), claims


def _pair(user: User, tokens: RefreshTokens, policy: TokenPolicy, now: datetime) -> TokenPair:
    """A sign-in: a new token family, with its first pair."""
    pair, claims = _issue_pair(user, policy, new_token_id(), now)
    tokens.start(claims)
    return pair


def login(
    users: UserTable,
    tokens: RefreshTokens,
    guard: LoginGuard,
    request: LoginRequest,
    *,
    policy: TokenPolicy,
    now: datetime,
    client: str,
    limits: SignInLimits = SignInLimits(),
) -> TokenPair:
    """Wrong password, unknown user and inactive user all get the same 401. ``client`` is
    the caller's address; the attempt is charged before the password is checked."""
    _charge_sign_in(guard, request.username, client, limits, now)
    user = users.find_by_username(request.username)
    password_ok = verify_password(user.password_hash if user else dummy_hash(), request.password)
    if user is None or not password_ok or not user.is_active or user.deleted:
        raise Unauthorized(_BAD_LOGIN)
    _signed_in(guard, request.username, client)
    return _pair(user, tokens, policy, now)


def refresh(
    users: UserTable, tokens: RefreshTokens, token: str, policy: TokenPolicy, now: datetime
) -> TokenPair:
    """Rotate within the token's family: the presented refresh token is spent. Presenting a
    spent one again revokes the family (see ``RefreshTokens.rotate``)."""
    claims = policy.verifier.verify(token, TokenType.REFRESH, now)
    user = users.get(claims.sub)
    if user is None or not user.may_use(claims):
        raise Unauthorized(INVALID_TOKEN)
    pair, fresh = _issue_pair(user, policy, claims.fam, now)
    tokens.rotate(claims, fresh)
    return pair


def logout(
    tokens: RefreshTokens,
    verifier: TokenVerifier,
    now: datetime,
    *,
    refresh_token: str | None = None,
    access_token: str | None = None,
) -> None:
    """Revoke the family of each token given that is valid; ``Unauthorized`` if none is.

    Idempotent: signing out of a family that is already revoked, or gone, succeeds again.
    The family's access tokens are not checked per request, so they run out on their own.
    """
    families = set()
    for token, kind in ((refresh_token, TokenType.REFRESH), (access_token, TokenType.ACCESS)):
        if token:
            try:
                families.add(verifier.verify(token, kind, now).fam)
            except Unauthorized:
                continue
    if not families:
        raise Unauthorized(INVALID_TOKEN)
    for family in families:
        tokens.revoke(family)


def authenticate(users: UserTable, token: str, verifier: TokenVerifier, now: datetime) -> User:
    """The user behind an access token, if the token is valid and the user may still act."""
    claims = verifier.verify(token, TokenType.ACCESS, now)
    user = users.get(claims.sub)
    if user is None or not user.may_use(claims):
        raise Unauthorized(INVALID_TOKEN)
    return user


_USER_ID = re.compile(r"^[0-9a-f]{32}$")


def _visible(users: UserTable, viewer: User, user_id: str) -> User:
    user = users.get(user_id) if _USER_ID.fullmatch(user_id) else None
    return visible(viewer, user, UserNotFound)


def _not_self(viewer: User, user: User, action: str) -> None:
    """An admin cannot lock themself out; another admin has to do it."""
    if viewer.id == user.id:
        raise Conflict(f"You cannot {action} your own account")


def get_user(users: UserTable, viewer: User, user_id: str) -> UserView:
    return UserView.of(_visible(users, viewer, user_id))


_CREDENTIALS = frozenset({"email", "username", "password"})


def update_user(
    users: UserTable,
    guard: LoginGuard,
    viewer: User,
    user_id: str,
    changes: UserUpdate,
    *,
    now: datetime,
    client: str,
    limits: SignInLimits = SignInLimits(),
) -> UserView:
    """A change of email, username or password signs the account out everywhere. On one's
    own account it needs ``current_password``, checked under the sign-in limits; an admin
    changing another account does not."""
    user = _visible(users, viewer, user_id)
    fields = changes.model_dump(exclude_unset=True, exclude_none=True)
    current_password = fields.pop("current_password", None)
    if ({"role", "is_active"} & fields.keys()) and not viewer.is_admin:
        raise Forbidden("Only an admin may change role or is_active")
    if fields.get("role", Role.ADMIN) is not Role.ADMIN or fields.get("is_active") is False:
        _not_self(viewer, user, "demote or deactivate")
    if _CREDENTIALS & fields.keys():
        if viewer.id == user.id:
            _confirm_password(guard, user, current_password, client=client, limits=limits, now=now)
        fields["token_generation"] = user.token_generation + 1
    if "password" in fields:
        fields["password_hash"] = hash_password(fields.pop("password"))
    updated = user.model_copy(update=fields | {"updated_at": now})
    return UserView.of(users.save(user, updated))


def _confirm_password(
    guard: LoginGuard,
    user: User,
    password: str | None,
    *,
    client: str,
    limits: SignInLimits,
    now: datetime,
) -> None:
    if password is None:
        raise InvalidInput(
            "current_password is required to change your own email, username or password"
        )
    _charge_sign_in(guard, user.username, client, limits, now)
    if not verify_password(user.password_hash, password):
        raise Forbidden("current_password is wrong")
    _signed_in(guard, user.username, client)


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
