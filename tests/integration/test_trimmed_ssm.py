"""ordo's SSM client, of the trimmed model (``ordo/botocore_data``), reads the token keys from
moto's SSM as the functions do; clients of other sessions keep SSM's whole model."""

from __future__ import annotations

import boto3

from ordo import aws, wiring
from ordo.keyring import current_signing_key
from ordo.tokens import PublicKeys
from tests.harness import InProcessStack


def test_ordos_ssm_client_reads_the_token_keys(anonymous_cloud: InProcessStack) -> None:
    names = anonymous_cloud.stack.parameters
    client = aws.ssm()
    assert client.meta.service_model.operation_names == ["GetParameter"]

    public = client.get_parameter(Name=names["JwtPublicKeysParameterName"])["Parameter"]
    assert PublicKeys.from_jwks(public["Value"]).keys
    assert public["Type"] == "String"
    key = current_signing_key(client, names["JwtSigningKeyParameterName"])
    assert key is not None
    assert key.kid in PublicKeys.from_jwks(public["Value"]).keys
    assert current_signing_key(client, "/no/such/parameter") is None  # ParameterNotFound
    assert wiring.token_policy().signing_key.kid == key.kid


def test_a_plain_boto3_client_keeps_ssms_whole_model(anonymous_cloud: InProcessStack) -> None:
    aws.ssm()
    assert "PutParameter" in boto3.client("ssm").meta.service_model.operation_names
