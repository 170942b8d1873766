"""The token signing keys in SSM: the private key (a SecureString, read by the Auth function
only) and the public keys (a String, a JWKS read by every function that verifies tokens).

A rotation writes the public keys first, as ``[new, current]``, and only then the new private
key: by the time any token is signed with the new key, the public keys already name it, and
tokens of the key it replaces stay valid until they expire. Keys older than that are dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ordo.tokens import PublicKeys, SigningKey, from_b64url

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient


def current_signing_key(ssm: SSMClient, private_name: str) -> SigningKey | None:
    try:
        response = ssm.get_parameter(Name=private_name, WithDecryption=True)
    except ssm.exceptions.ParameterNotFound:
        return None
    return SigningKey.from_jwk(response["Parameter"].get("Value", ""))


def store_signing_key(
    ssm: SSMClient,
    key: SigningKey,
    *,
    private_name: str,
    public_name: str,
    previous: SigningKey | None = None,
) -> PublicKeys:
    """Publish ``key`` (and ``previous``, still accepted) then make ``key`` the signing key."""
    keys = {key.kid: from_b64url(key.x)}
    if previous is not None and previous.kid != key.kid:
        keys[previous.kid] = from_b64url(previous.x)
    public = PublicKeys(keys)
    ssm.put_parameter(Name=public_name, Type="String", Value=public.to_jwks(), Overwrite=True)
    ssm.put_parameter(
        Name=private_name, Type="SecureString", Value=key.private_jwk(), Overwrite=True
    )
    return public


def rotate_signing_key(
    ssm: SSMClient, *, private_name: str, public_name: str
) -> tuple[SigningKey, SigningKey | None]:
    """A new signing key, the current one kept as the previous; the first run creates both
    parameters. Returns the new key and the one it replaced."""
    current = current_signing_key(ssm, private_name)
    new = SigningKey.generate()
    store_signing_key(
        ssm, new, private_name=private_name, public_name=public_name, previous=current
    )
    return new, current
