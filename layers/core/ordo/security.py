"""Who may see what, and passwords (argon2id). Tokens are in ``ordo.tokens``."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from ordo.errors import NotFound


class Viewer(Protocol):
    """Who is asking: a user sees what they own, an admin sees everything."""

    def may_see(self, owner_id: str | None) -> bool: ...


class Owned(Protocol):
    @property
    def owner(self) -> str: ...


def visible[T: Owned](viewer: Viewer, found: T | None, missing: Callable[[], NotFound]) -> T:
    """``found``, if ``viewer`` may see it. Someone else's is as absent as a missing one:
    ``missing()`` for both (404, never 403), so no caller learns what exists."""
    if found is None or not viewer.may_see(found.owner):
        raise missing()
    return found


@cache
def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id, RFC 9106 low-memory profile


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A real hash to verify against when the user does not exist, so that a login for an unknown
# user costs as much as one with a wrong password (no user enumeration by timing).
@cache
def dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))
