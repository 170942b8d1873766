"""Access and refresh tokens: compact JWS signed with Ed25519 (``EdDSA``), each naming its key.

Only the Auth function holds the private key (a private JWK) and signs, through pyjwt. Every
function verifies with the public keys (a JWKS of the current key and the previous one), with
the small verifier below rather than pyjwt: importing pyjwt with cryptography installed imports
every algorithm cryptography has (~27 ms per cold start), this module imports only cryptography's
ed25519, and only when it first verifies a token. A key's id (``kid``) is its RFC 7638
thumbprint.

Verification is strict: ``alg`` is exactly ``EdDSA``, the ``kid`` is a known key, every segment
is canonical base64url without padding, the signature is checked before the claims are parsed,
then every claim is required and ``iss``, ``aud``, ``type`` and ``exp`` must match. Anything
else is the same ``Unauthorized``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ordo.errors import Unauthorized

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ALGORITHM = "EdDSA"
MAX_TOKEN_CHARS = 4096
MAX_HEADER_CHARS = 512  # also bounds the JSON nesting the header parser can meet
RELOAD_SECONDS = 60.0  # an unknown kid re-reads the public keys at most this often
MAX_KEYS_AGE_SECONDS = 300.0  # and they are re-read this often anyway: a key withdrawn from
# the JWKS (a leaked one, rotated out twice) stops working in warm containers within this time
DEFAULT_ISSUER = "ordo"
DEFAULT_AUDIENCE = "ordo-api"
INVALID = "Could not validate credentials"
_HEADER_FIELDS = frozenset({"alg", "kid", "typ"})
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class TokenType(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


class Claims(BaseModel):
    """What a token says. Every claim is required; unknown ones are ignored."""

    model_config = ConfigDict(frozen=True)

    sub: str = Field(min_length=1, max_length=64)
    role: str = Field(max_length=32)
    type: TokenType
    exp: int
    iat: int
    jti: str = Field(min_length=1, max_length=64)
    gen: int  # the user's token generation at issue (see ``User.token_generation``)
    fam: str = Field(min_length=1, max_length=64)  # the sign-in (refresh-token family)
    iss: str = Field(max_length=256)
    aud: str = Field(max_length=256)


# --- base64url and keys ----------------------------------------------------------------------


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    """Strict: the alphabet, no padding, and the one canonical encoding of the bytes."""
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url(raw) != text:  # stray bits in the last character
        raise ValueError("not canonical base64url")
    return raw


def thumbprint(x: str) -> str:
    """The RFC 7638 thumbprint of an Ed25519 public key (RFC 8037: ``crv``, ``kty``, ``x``)."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode()).digest())


def _public_key_bytes(jwk: Any) -> tuple[str, bytes]:
    """A public JWK's kid and raw key; ``ValueError`` for anything but a named Ed25519 key."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError("not an Ed25519 JWK")
    x, kid = jwk.get("x"), jwk.get("kid")
    if not isinstance(x, str) or len(from_b64url(x)) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    if not isinstance(kid, str) or kid != thumbprint(x):
        raise ValueError("the kid is not the key's RFC 7638 thumbprint")
    return kid, from_b64url(x)


@dataclass(frozen=True)
class PublicKeys:
    """A JWKS: the keys tokens may be signed with, newest first, by kid."""

    keys: dict[str, bytes]

    @classmethod
    def from_jwks(cls, text: str) -> PublicKeys:
        document = json.loads(text)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError('a JWKS is {"keys": [...]}')
        keys = dict(_public_key_bytes(jwk) for jwk in document["keys"])
        if not keys:
            raise ValueError("the JWKS has no key")
        return cls(keys)

    def to_jwks(self) -> str:
        return json.dumps(
            {
                "keys": [
                    {"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64url(raw)}
                    for kid, raw in self.keys.items()
                ]
            }
        )


@dataclass(frozen=True)
class SigningKey:
    """The private key, as a private JWK. Signing imports pyjwt: the Auth function only."""

    kid: str
    x: str
    d: str = field(repr=False)

    @classmethod
    def generate(cls) -> SigningKey:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        private = Ed25519PrivateKey.generate()
        d = private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        x = b64url(
            private.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        )
        return cls(kid=thumbprint(x), x=x, d=b64url(d))

    @classmethod
    def from_jwk(cls, text: str) -> SigningKey:
        """Parse and check a private JWK: its kid names its public key, which its ``d`` makes."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        jwk = json.loads(text)
        kid, raw_x = _public_key_bytes(jwk)
        d = jwk.get("d")
        if not isinstance(d, str) or len(from_b64url(d)) != 32:
            raise ValueError("an Ed25519 private key is 32 bytes")
        derived = Ed25519PrivateKey.from_private_bytes(from_b64url(d)).public_key()
        raw = derived.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if raw != raw_x:
            raise ValueError("the private key does not match its x")
        return cls(kid=kid, x=b64url(raw_x), d=d)

    def private_jwk(self) -> str:
        return json.dumps(
            {"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "x": self.x, "d": self.d}
        )

    def public_jwk(self) -> dict[str, str]:
        return {"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "x": self.x}

    def public_keys(self) -> PublicKeys:
        """A JWKS of this key alone."""
        return PublicKeys({self.kid: from_b64url(self.x)})

    def sign(self, claims: Claims) -> str:
        import jwt
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        private = Ed25519PrivateKey.from_private_bytes(from_b64url(self.d))
        payload = claims.model_dump(mode="json")
        return jwt.encode(payload, private, algorithm=ALGORITHM, headers={"kid": self.kid})


# --- verifying -------------------------------------------------------------------------------


def _ed25519_public_key(raw: bytes) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(raw)


class TokenVerifier:
    """Verifies tokens against the public keys, loaded on first use and kept for the container.

    A token naming an unknown kid re-reads the keys, at most once per ``reload_seconds``, so a
    rotation reaches warm containers without letting junk kids hammer SSM. Keys older than
    ``max_age_seconds`` are re-read in any case, so a withdrawn key stops working too.
    """

    def __init__(
        self,
        load_jwks: Callable[[], str],
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        reload_seconds: float = RELOAD_SECONDS,
        max_age_seconds: float = MAX_KEYS_AGE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self._load = load_jwks
        self._reload_seconds = reload_seconds
        self._max_age_seconds = max_age_seconds
        self._monotonic = monotonic
        self._known: dict[str, bytes] | None = None
        self._loaded_at = 0.0
        self._keys: dict[str, Ed25519PublicKey] = {}

    @classmethod
    def of(
        cls, keys: PublicKeys, *, issuer: str = DEFAULT_ISSUER, audience: str = DEFAULT_AUDIENCE
    ) -> TokenVerifier:
        """A verifier of fixed keys (tests, tools)."""
        jwks = keys.to_jwks()
        return cls(lambda: jwks, issuer=issuer, audience=audience)

    def _reload(self) -> None:
        self._known = PublicKeys.from_jwks(self._load()).keys
        self._loaded_at = self._monotonic()
        self._keys = {kid: key for kid, key in self._keys.items() if kid in self._known}

    def _key(self, kid: str) -> Ed25519PublicKey | None:
        age = self._monotonic() - self._loaded_at
        if (
            self._known is None
            or age >= self._max_age_seconds
            or (kid not in self._known and age >= self._reload_seconds)
        ):
            self._reload()
        assert self._known is not None
        if kid not in self._keys and kid in self._known:
            self._keys[kid] = _ed25519_public_key(self._known[kid])
        return self._keys.get(kid)

    def verify(self, token: str, expected: TokenType, now: datetime) -> Claims:
        """The token's claims, if it is a valid token of this kind; ``Unauthorized`` if not."""
        from cryptography.exceptions import InvalidSignature

        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise Unauthorized(INVALID)
        header_b64, payload_b64, signature_b64 = token.split(".")
        try:
            if len(header_b64) > MAX_HEADER_CHARS:
                raise ValueError("header too long")
            header = json.loads(from_b64url(header_b64))
            payload = from_b64url(payload_b64)
            signature = from_b64url(signature_b64)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise Unauthorized(INVALID) from exc
        if (
            not isinstance(header, dict)
            or not header.keys() <= _HEADER_FIELDS
            or header.get("alg") != ALGORITHM
            or header.get("typ", "JWT") != "JWT"
            or not isinstance(header.get("kid"), str)
            or len(signature) != 64
        ):
            raise Unauthorized(INVALID)
        key = self._key(header["kid"])
        if key is None:
            raise Unauthorized(INVALID)
        try:
            key.verify(signature, f"{header_b64}.{payload_b64}".encode("ascii"))
        except InvalidSignature as exc:
            raise Unauthorized(INVALID) from exc
        try:  # only now, with the signature good, are the claims parsed
            claims = Claims.model_validate_json(payload, strict=True)
        except ValidationError as exc:
            raise Unauthorized(INVALID) from exc
        if (
            claims.type is not expected
            or claims.iss != self.issuer
            or claims.aud != self.audience
            or claims.exp <= int(now.timestamp())
        ):
            raise Unauthorized(INVALID)
        return claims


# --- issuing ---------------------------------------------------------------------------------


def new_token_id() -> str:
    return secrets.token_hex(16)


def issue_token(
    key: SigningKey,
    subject: str,
    role: str,
    kind: TokenType,
    *,
    now: datetime,
    lifetime: timedelta,
    generation: int,
    family: str,
    issuer: str = DEFAULT_ISSUER,
    audience: str = DEFAULT_AUDIENCE,
) -> tuple[str, Claims]:
    claims = Claims(
        sub=subject,
        role=role,
        type=kind,
        iat=int(now.timestamp()),
        exp=int((now + lifetime).timestamp()),
        jti=new_token_id(),
        gen=generation,
        fam=family,
        iss=issuer,
        aud=audience,
    )
    return key.sign(claims), claims
