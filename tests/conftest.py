"""Shared test settings (fake AWS credentials and no real endpoint, ever), the tiers' markers, and
the stack on moto that the integration tests and the local cloud's own tests drive."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.harness import InProcessStack

# Before any ordo or Powertools import: no EMF output in tests, and never a real AWS account.
os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
# What the template's Globals set for every function (Powertools reads them; ordo names neither).
os.environ["POWERTOOLS_SERVICE_NAME"] = "ordo"
os.environ["POWERTOOLS_METRICS_NAMESPACE"] = "ordo"
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ["AWS_REGION"] = "us-east-1"

# The tiers, by folder. `slow` marks the tiers that start processes (the local cloud, chromium,
# DynamoDB Local): `pytest -m "not slow"` is the quick loop, and `make test` runs everything.
TIERS = {"unit": (), "integration": (), "local": ("slow",), "e2e": ("slow",)}
SLOW_FIXTURES = {"dynamodb_local"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.parent.name
        for name in (folder, *TIERS.get(folder, ())) if folder in TIERS else ():
            item.add_marker(name)
        if item.path.name == "test_console.py":
            item.add_marker("browser")
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker(
            "artifact"
        ):
            item.add_marker("slow")


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real argon2id at the lowest cost argon2 allows, in this process: the functions' own cost
    (RFC 9106's low-memory profile, 64 MiB and 3 passes) took a third of the integration tier's
    time. A hash still verifies only its own password; ``test_passwords.py`` checks the real cost,
    and the local cloud's functions (tests/local, tests/e2e) always pay it."""
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr("ordo.security._hasher", lambda: cheap)


@pytest.fixture
def anonymous_cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessStack]:
    """The stack on moto, with the token keys in SSM as a deployed stack has them."""
    import boto3
    from moto import mock_aws

    from infra.local import moto_fidelity
    from infra.local.ordo_app import store_stack_signing_key
    from infra.local.stack import Stack
    from ordo.tokens import SigningKey
    from tests.harness import InProcessStack, reset_ordo_caches

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
        yield InProcessStack(stack)
        reset_ordo_caches()
