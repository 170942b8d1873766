"""Passwords (argon2id). Tokens are in ``ordo.tokens``."""

from __future__ import annotations

import secrets
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher


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
