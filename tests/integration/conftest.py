"""Integration fixtures: moto in-process, every table and queue made from template.yaml."""

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from infra.local import moto_fidelity
from infra.local.cloud import store_stack_signing_key
from infra.local.dynamodb_local import DynamoDBLocal, DynamoDBLocalUnavailable, start
from infra.local.stack import Stack
from ordo.tokens import SigningKey
from tests.harness import Cloud, reset_ordo_caches


@pytest.fixture
def anonymous_cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    """The stack on moto, with the token keys in SSM as a deployed stack has them."""
    moto_fidelity.apply()
    with mock_aws():
        stack = Stack.load(overrides={"TimeScale": "0"})
        stack.provision(boto3.client("dynamodb"), boto3.client("sqs"))
        store_stack_signing_key(boto3.client("ssm"), stack, SigningKey.generate())
        for function in stack.functions().values():
            for name, value in function.environment.items():
                if not name.startswith("POWERTOOLS_"):
                    monkeypatch.setenv(name, value)
        reset_ordo_caches()
        yield Cloud(stack)
        reset_ordo_caches()


@pytest.fixture
def cloud(anonymous_cloud: Cloud) -> Cloud:
    """The same, with requests sent as the signed-in user ``alice``."""
    anonymous_cloud.token = anonymous_cloud.sign_up("alice").access_token
    return anonymous_cloud


# --- DynamoDB Local: AWS's own engine, for tests that need real DynamoDB concurrency -------


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    """One DynamoDB Local server for the session (it takes ~10 s to start).

    Yields the server: ``.endpoint_url``, and ``.client()`` for a new client per thread. Tests
    make their own table (``infra.local.dynamodb_local.create_table``) under a unique name.
    """
    try:
        server = start()
    except DynamoDBLocalUnavailable as missing:
        pytest.skip(str(missing))
    try:
        yield server
    finally:
        server.stop()
