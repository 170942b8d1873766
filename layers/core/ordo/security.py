"""Passwords (argon2id) and tokens (JWT, HS256 only).

Tokens carry ``sub``, ``role``, ``type`` (access or refresh), ``exp``, ``iat`` and ``jti``. The
algorithm list is fixed, so ``alg: none`` and algorithm confusion are rejected by pyjwt itself.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from ordo.errors import Unauthorized

if TYPE_CHECKING:
    from argon2 import PasswordHasher

ALGORITHM = "HS256"
_INVALID = "Could not validate credentials"


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


class TokenType(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


class Claims(BaseModel):
    sub: str
    role: str
    type: TokenType
    exp: int
    iat: int
    jti: str
    gen: int = 0  # the user's token generation at issue (see ``User.token_generation``)


def issue_token(
    subject: str,
    role: str,
    kind: TokenType,
    *,
    now: datetime,
    lifetime: timedelta,
    secret: str,
    generation: int = 0,
) -> tuple[str, Claims]:
    import jwt

    claims = Claims(
        sub=subject,
        role=role,
        type=kind,
        iat=int(now.timestamp()),
        exp=int((now + lifetime).timestamp()),
        jti=secrets.token_hex(16),
        gen=generation,
    )
    return jwt.encode(claims.model_dump(mode="json"), secret, algorithm=ALGORITHM), claims


def decode_token(token: str, expected: TokenType, secret: str, now: datetime) -> Claims:
    """Verify signature, algorithm, expiry and type; raise ``Unauthorized`` for anything off."""
    import jwt

    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "sub", "jti"], "verify_exp": False},
        )
        claims = Claims.model_validate(payload)
    except (jwt.InvalidTokenError, ValidationError) as exc:
        raise Unauthorized(_INVALID) from exc
    if claims.type is not expected or claims.exp <= int(now.timestamp()):
        raise Unauthorized(_INVALID)
    return claims
