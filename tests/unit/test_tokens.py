"""ordo's own EdDSA verifier against tokens pyjwt signs, and against every way to get it wrong."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ordo.errors import Unauthorized
from ordo.tokens import (
    MAX_TOKEN_CHARS,
    PublicKeys,
    SigningKey,
    TokenType,
    TokenVerifier,
    from_b64url,
    issue_token,
    thumbprint,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ISSUER, AUDIENCE = "ordo/test", "ordo-api"
PREVIOUS, CURRENT = SigningKey.generate(), SigningKey.generate()


def keys(*signing_keys: SigningKey) -> PublicKeys:
    return PublicKeys({k.kid: from_b64url(k.x) for k in signing_keys})


VERIFIER = TokenVerifier.of(keys(CURRENT, PREVIOUS), issuer=ISSUER, audience=AUDIENCE)


def claims(**changes: Any) -> dict[str, Any]:
    base = {
        "sub": "u1",
        "role": "user",
        "type": "access",
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(minutes=15)).timestamp()),
        "jti": "j1",
        "gen": 0,
        "fam": "f1",
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    return {k: v for k, v in (base | changes).items() if v is not None}


def pyjwt(payload: dict[str, Any], key: SigningKey = CURRENT, **headers: Any) -> str:
    """A token as pyjwt signs it, with any payload and header."""
    private = Ed25519PrivateKey.from_private_bytes(from_b64url(key.d))
    return jwt.encode(payload, private, algorithm="EdDSA", headers={"kid": key.kid} | headers)


def b64(raw: bytes | dict[str, Any]) -> str:
    data = json.dumps(raw).encode() if isinstance(raw, dict) else raw
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def verify(token: str, kind: TokenType = TokenType.ACCESS, now: datetime = NOW) -> Any:
    return VERIFIER.verify(token, kind, now)


def rejected(token: str, kind: TokenType = TokenType.ACCESS, now: datetime = NOW) -> bool:
    with pytest.raises(Unauthorized) as raised:
        VERIFIER.verify(token, kind, now)
    return raised.value.detail == "Could not validate credentials"


# --- accepted ------------------------------------------------------------------------------


def test_a_token_pyjwt_signs_verifies_with_ours() -> None:
    assert verify(pyjwt(claims())).sub == "u1"
    token, issued = issue_token(
        CURRENT,
        "u2",
        "admin",
        TokenType.REFRESH,
        now=NOW,
        lifetime=timedelta(days=7),
        generation=3,
        family="fam",
        issuer=ISSUER,
        audience=AUDIENCE,
    )
    assert verify(token, TokenType.REFRESH) == issued
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": CURRENT.kid, "typ": "JWT"}


def test_the_previous_keys_tokens_are_accepted() -> None:
    assert verify(pyjwt(claims(), PREVIOUS)).sub == "u1"


# --- rejected ------------------------------------------------------------------------------


def test_alg_none_and_other_algorithms_are_rejected() -> None:
    _, payload, signature = pyjwt(claims()).split(".")
    for alg in ("none", "None", "HS256", "ES256", "RS256", "EdDSA "):
        header = b64({"alg": alg, "kid": CURRENT.kid, "typ": "JWT"})
        assert rejected(f"{header}.{payload}.{signature}"), alg
        assert rejected(f"{header}.{payload}."), alg


def test_hs256_keyed_with_the_public_key_is_rejected() -> None:
    """Algorithm confusion: an HMAC whose key is the public key everyone can read."""
    header = b64({"alg": "HS256", "kid": CURRENT.kid, "typ": "JWT"})
    payload = b64(claims(role="admin"))
    for secret in (from_b64url(CURRENT.x), CURRENT.x.encode(), keys(CURRENT).to_jwks().encode()):
        mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        assert rejected(f"{header}.{payload}.{b64(mac)}")


def test_an_unknown_kid_a_missing_kid_and_a_key_two_rotations_old_are_rejected() -> None:
    stranger = SigningKey.generate()
    assert rejected(pyjwt(claims(), stranger))
    assert rejected(pyjwt(claims(), CURRENT, kid=PREVIOUS.kid))  # signed by one, naming another
    no_kid = jwt.encode(
        claims(), Ed25519PrivateKey.from_private_bytes(from_b64url(CURRENT.d)), algorithm="EdDSA"
    )
    assert rejected(no_kid)
    _, payload, signature = pyjwt(claims()).split(".")
    numeric_kid = b64({"alg": "EdDSA", "kid": 7, "typ": "JWT"})
    assert rejected(f"{numeric_kid}.{payload}.{signature}")
    # Rotated twice: the verifier knows [newest, CURRENT]; PREVIOUS is gone
    newest = SigningKey.generate()
    later = TokenVerifier.of(keys(newest, CURRENT), issuer=ISSUER, audience=AUDIENCE)
    assert later.verify(pyjwt(claims(), CURRENT), TokenType.ACCESS, NOW).sub == "u1"
    with pytest.raises(Unauthorized):
        later.verify(pyjwt(claims(), PREVIOUS), TokenType.ACCESS, NOW)


def test_tampering_with_any_segment_is_rejected() -> None:
    header, payload, signature = pyjwt(claims()).split(".")
    forged_header = b64({"alg": "EdDSA", "kid": CURRENT.kid, "typ": "JWT", "x": 1})
    assert rejected(f"{forged_header}.{payload}.{signature}")
    assert rejected(
        f"{b64({'kid': CURRENT.kid, 'typ': 'JWT', 'alg': 'EdDSA'})}.{payload}.{signature}"
    )
    assert rejected(f"{header}.{b64(claims(role='admin'))}.{signature}")
    flipped = bytearray(from_b64url(signature))
    flipped[0] ^= 1
    assert rejected(f"{header}.{payload}.{b64(bytes(flipped))}")
    assert rejected(f"{header}.{payload}.{b64(from_b64url(signature)[:63])}")
    assert rejected(f"{header}.{payload}")
    assert rejected(f"{header}.{payload}.{signature}.{signature}")


def test_a_header_the_verifier_does_not_understand_is_rejected() -> None:
    assert rejected(pyjwt(claims(), crit=["exp"]))
    assert rejected(pyjwt(claims(), typ="at+jwt"))
    assert rejected(pyjwt(claims(), jku="https://attacker.example/jwks.json"))


def test_wrong_issuer_audience_type_and_expiry_are_rejected() -> None:
    assert rejected(pyjwt(claims(iss="ordo/another-stack")))
    assert rejected(pyjwt(claims(aud="another-api")))
    assert rejected(pyjwt(claims(aud=[AUDIENCE])))
    assert rejected(pyjwt(claims()), TokenType.REFRESH)
    assert rejected(pyjwt(claims(type="refresh")))
    assert rejected(pyjwt(claims()), now=NOW + timedelta(minutes=15))
    assert verify(pyjwt(claims()), now=NOW + timedelta(minutes=15) - timedelta(seconds=1))


@pytest.mark.parametrize(
    "missing", ["sub", "role", "type", "exp", "iat", "jti", "gen", "fam", "iss", "aud"]
)
def test_every_claim_is_required(missing: str) -> None:
    assert rejected(pyjwt(claims(**{missing: None})))


@pytest.mark.parametrize(
    "change",
    [
        {"exp": "9999999999"},
        {"exp": 9.9e9},
        {"gen": True},
        {"sub": 1},
        {"type": "admin"},
        {"sub": ""},
    ],
)
def test_claims_of_the_wrong_type_are_rejected(change: dict[str, Any]) -> None:
    assert rejected(pyjwt(claims(**change)))


def test_segments_must_be_strict_base64url() -> None:
    segments = (pyjwt(claims(jti="j" * n)).split(".") for n in range(1, 5))
    header, payload, signature = next(s for s in segments if len(s[1]) % 4)
    assert verify(f"{header}.{payload}.{signature}")
    padded = base64.urlsafe_b64encode(from_b64url(payload)).decode()
    assert padded != payload  # this payload needs padding: the test would prove nothing
    assert rejected(f"{header}.{padded}.{signature}")
    assert rejected(f"{header}.{payload}.{signature}==")
    standard = base64.b64encode(from_b64url(signature)).decode().rstrip("=")
    if standard != signature:  # + and / instead of - and _
        assert rejected(f"{header}.{payload}.{standard}")
    assert rejected(f"{header}.{payload}.{signature[:-1]}+")
    assert rejected(f"{header} .{payload}.{signature}")
    assert rejected(f"{header}.{payload}.{signature}\n")
    # The last character of a 64-byte signature carries 4 unused bits: any set is not canonical
    last = signature[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = alphabet[alphabet.index(last) ^ 1]
    assert rejected(f"{header}.{payload}.{signature[:-1]}{sibling}")


def test_oversized_deeply_nested_and_garbage_tokens_are_rejected() -> None:
    big = pyjwt(claims(pad="x" * MAX_TOKEN_CHARS))
    assert len(big) > MAX_TOKEN_CHARS
    assert rejected(big)
    deep = b64(b"[" * 3000 + b"]" * 3000)
    _, payload, signature = pyjwt(claims()).split(".")
    assert rejected(f"{deep}.{payload}.{signature}")
    for garbage in (
        "",
        ".",
        "..",
        "not-a-jwt",
        "a.b.c",
        "é.é.é",
        "\ud800.x.y",
        b64(b"\xff") + ".e30.AA",
    ):
        assert rejected(garbage), garbage


# --- keys ----------------------------------------------------------------------------------


def test_kid_is_the_rfc_7638_thumbprint() -> None:
    # RFC 8037, appendix A.3
    assert (
        thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
        == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    )
    assert CURRENT.kid == thumbprint(CURRENT.x)


def test_keys_round_trip_and_mislabelled_keys_are_refused() -> None:
    assert SigningKey.from_jwk(CURRENT.private_jwk()) == CURRENT
    assert PublicKeys.from_jwks(keys(CURRENT, PREVIOUS).to_jwks()) == keys(CURRENT, PREVIOUS)
    private = json.loads(CURRENT.private_jwk())
    with pytest.raises(ValueError, match="does not match"):
        SigningKey.from_jwk(json.dumps(private | {"d": PREVIOUS.d}))
    with pytest.raises(ValueError, match="thumbprint"):
        SigningKey.from_jwk(json.dumps(private | {"kid": "mine"}))
    with pytest.raises(ValueError, match="thumbprint"):
        PublicKeys.from_jwks(json.dumps({"keys": [CURRENT.public_jwk() | {"kid": PREVIOUS.kid}]}))
    with pytest.raises(ValueError, match="Ed25519"):
        PublicKeys.from_jwks(json.dumps({"keys": [CURRENT.public_jwk() | {"crv": "X25519"}]}))
    assert all("d" not in jwk for jwk in json.loads(keys(CURRENT).to_jwks())["keys"])
    assert CURRENT.d not in repr(CURRENT)


def test_an_unknown_kid_reloads_the_keys_at_most_once_a_minute() -> None:
    """A rotation reaches a warm container; a flood of junk kids does not reach SSM."""
    newer = SigningKey.generate()
    published = {"jwks": keys(CURRENT).to_jwks()}
    loads: list[float] = []
    clock = {"now": 1000.0}

    def load() -> str:
        loads.append(clock["now"])
        return published["jwks"]

    verifier = TokenVerifier(load, issuer=ISSUER, audience=AUDIENCE, monotonic=lambda: clock["now"])
    assert verifier.verify(pyjwt(claims()), TokenType.ACCESS, NOW)
    assert loads == [1000.0]  # loaded once, on first use
    published["jwks"] = keys(newer, CURRENT).to_jwks()  # rotated
    clock["now"] += 59
    for _ in range(3):
        with pytest.raises(Unauthorized):
            verifier.verify(pyjwt(claims(), newer), TokenType.ACCESS, NOW)
    assert loads == [1000.0]
    clock["now"] += 1
    assert verifier.verify(pyjwt(claims(), newer), TokenType.ACCESS, NOW)
    assert verifier.verify(pyjwt(claims(), CURRENT), TokenType.ACCESS, NOW)
    assert loads == [1000.0, 1060.0]


def test_a_withdrawn_key_stops_working_within_five_minutes() -> None:
    """A leaked key, rotated out of the JWKS: warm containers drop it at the next re-read."""
    newer, newest = SigningKey.generate(), SigningKey.generate()
    published = {"jwks": keys(CURRENT).to_jwks()}
    clock = {"now": 1000.0}
    verifier = TokenVerifier(
        lambda: published["jwks"], issuer=ISSUER, audience=AUDIENCE, monotonic=lambda: clock["now"]
    )
    leaked = pyjwt(claims())
    assert verifier.verify(leaked, TokenType.ACCESS, NOW)
    published["jwks"] = keys(newest, newer).to_jwks()  # rotated twice
    clock["now"] += 299
    assert verifier.verify(leaked, TokenType.ACCESS, NOW)  # still cached
    clock["now"] += 1
    with pytest.raises(Unauthorized):
        verifier.verify(leaked, TokenType.ACCESS, NOW)


def test_the_auth_functions_signing_key_is_read_again_every_five_minutes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ordo import wiring

    now = {"t": 0.0}
    monkeypatch.setattr("ordo.wiring.time.monotonic", lambda: now["t"])
    reads: list[float] = []

    @wiring._kept_for(wiring.KEYS_MAX_AGE_SECONDS)
    def signing_key() -> int:
        reads.append(now["t"])
        return len(reads)

    assert (signing_key(), signing_key()) == (1, 1)
    now["t"] = 299.0
    assert signing_key() == 1
    now["t"] = 300.0
    assert signing_key() == 2
    signing_key.cache_clear()  # type: ignore[attr-defined]
    assert signing_key() == 3
