"""Integration fixtures: moto in-process, every table and queue made from template.yaml."""

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from infra.local import moto_fidelity
from infra.local.stack import Stack
from tests.harness import Cloud, reset_ordo_caches


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    moto_fidelity.apply()
    with mock_aws():
        stack = Stack.load(overrides={"TimeScale": "0"})
        stack.provision(boto3.client("dynamodb"), boto3.client("sqs"))
        for function in stack.functions().values():
            for name, value in function.environment.items():
                if not name.startswith("POWERTOOLS_"):
                    monkeypatch.setenv(name, value)
        reset_ordo_caches()
        yield Cloud(stack)
        reset_ordo_caches()
