"""``python -m ordo.admin rotate-signing-key`` on moto's SSM: the first run, and a rotation."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ordo.admin import main
from ordo.tokens import PublicKeys, SigningKey
from tests.harness import InProcessStack, reset_ordo_caches

PRIVATE, PUBLIC = "/test/jwt-signing-key", "/test/jwt-public-keys"


@pytest.fixture
def ssm() -> Iterator[Any]:
    with mock_aws():
        reset_ordo_caches()
        yield boto3.client("ssm")
        reset_ordo_caches()


def rotate() -> int:
    return main(
        ["rotate-signing-key", "--private-parameter", PRIVATE, "--public-parameter", PUBLIC]
    )


def stored(ssm: Any) -> tuple[SigningKey, list[str], dict[str, Any]]:
    private = ssm.get_parameter(Name=PRIVATE, WithDecryption=True)["Parameter"]
    public = ssm.get_parameter(Name=PUBLIC)["Parameter"]
    kids = [jwk["kid"] for jwk in json.loads(public["Value"])["keys"]]
    return SigningKey.from_jwk(private["Value"]), kids, {"private": private, "public": public}


def test_the_first_run_creates_the_private_and_the_public_keys(
    ssm: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rotate() == 0
    key, kids, parameters = stored(ssm)
    assert kids == [key.kid]
    assert parameters["private"]["Type"] == "SecureString"
    assert parameters["public"]["Type"] == "String"
    assert "d" not in json.loads(parameters["public"]["Value"])["keys"][0]
    assert f"created signing key {key.kid}" in capsys.readouterr().out


def test_a_rotation_publishes_new_and_current_and_drops_older_keys(
    ssm: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    rotate()
    first, _, _ = stored(ssm)
    rotate()
    second, kids, parameters = stored(ssm)
    assert kids == [second.kid, first.kid]
    assert parameters["private"]["Version"] == 2  # a new version of the same SecureString
    assert f"{first.kid} stays accepted" in capsys.readouterr().out.splitlines()[-1]
    rotate()
    third, kids, _ = stored(ssm)
    assert kids == [third.kid, second.kid]  # the first key is gone
    assert len({first.kid, second.kid, third.kid}) == 3
    assert PublicKeys.from_jwks(ssm.get_parameter(Name=PUBLIC)["Parameter"]["Value"]).keys


def test_the_public_keys_are_written_before_the_private_key(
    ssm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So no token is ever signed with a key the verifiers cannot know yet."""
    from ordo import admin

    client = admin.ssm_client()
    written: list[str] = []
    put = client.put_parameter

    def recording_put(**kwargs: Any) -> Any:
        written.append(kwargs["Name"])
        return put(**kwargs)

    monkeypatch.setattr(client, "put_parameter", recording_put)
    monkeypatch.setattr(admin, "ssm_client", lambda: client)
    rotate()
    rotate()
    assert written == [PUBLIC, PRIVATE, PUBLIC, PRIVATE]


def test_the_deployed_stack_signs_with_the_rotated_key(anonymous_cloud: InProcessStack) -> None:
    names = anonymous_cloud.stack.parameters
    assert (
        main(
            [
                "rotate-signing-key",
                "--private-parameter",
                names["JwtSigningKeyParameterName"],
                "--public-parameter",
                names["JwtPublicKeysParameterName"],
            ]
        )
        == 0
    )
    reset_ordo_caches()
    zoe = anonymous_cloud.sign_up("zoe")
    header = zoe.access_token.split(".", 1)[0]
    kid = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    private = boto3.client("ssm").get_parameter(
        Name=names["JwtSigningKeyParameterName"], WithDecryption=True
    )
    assert kid == SigningKey.from_jwk(private["Parameter"]["Value"]).kid
