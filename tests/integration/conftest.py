"""Integration fixtures. The stack on moto, ``anonymous_cloud``, is in tests/conftest.py (the local
cloud's own tests use it too); ``cloud`` is the same, signed in."""

from collections.abc import Iterator

import pytest

from infra.local.dynamodb_local import DynamoDBLocal, DynamoDBLocalUnavailable, start
from tests.harness import InProcessStack


@pytest.fixture
def cloud(anonymous_cloud: InProcessStack) -> InProcessStack:
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
