"""AWS clients (botocore), created on first use and reused for the life of the container.

boto3 honours ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``) on its own, which is how
tests, the local cloud and benchmarks point ordo at moto.

ordo's session finds the services of :data:`TRIMMED` in ``ordo/botocore_data`` first: models
holding only the operations ordo calls (``python -m infra.botocore_models`` writes them). A client
of SSM's whole model takes ~15 ms to create, of this one ~2 ms. Anything that needs another
operation makes its client from a session of its own (``ordo.admin`` does).
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from botocore.config import Config
    from botocore.session import Session
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient


# The operations ordo calls on these clients, by service: all their trimmed models hold.
TRIMMED: dict[str, tuple[str, ...]] = {"ssm": ("GetParameter",)}
DATA_PATH = os.path.join(os.path.dirname(__file__), "botocore_data")

# botocore's standard retry mode waits rand(0, 1) * min(2 ** (attempt - 1), 20) seconds at most
# before each retry, for throttling (less for other errors).
_MAX_BACKOFF = 20


def sdk_call_budget(connect_timeout: float, read_timeout: float, max_attempts: int) -> float:
    """The longest one SDK call can take: every attempt timing out, with the longest backoffs."""
    backoff = sum(min(1 << (attempt - 1), _MAX_BACKOFF) for attempt in range(1, max_attempts))
    return max_attempts * (connect_timeout + read_timeout) + backoff


def _config() -> Config:
    from botocore.config import Config

    from ordo.settings import settings

    # Fail fast and let standard retries absorb a blip; tests/test_template.py checks that
    # sdk_call_budget of these values stays below each function's timeout.
    config = settings()
    return Config(
        connect_timeout=config.sdk_connect_timeout,
        read_timeout=config.sdk_read_timeout,
        retries={"mode": "standard", "max_attempts": config.sdk_max_attempts},
    )


@cache
def _session() -> Session:
    # botocore directly: `import boto3` adds s3transfer and multiprocessing to every cold start.
    from botocore.session import get_session

    session = get_session()
    # This session's search path (before botocore's own data), not AWS_DATA_PATH, which other
    # sessions (moto's, in tests) would see too; it replaces an AWS_DATA_PATH for this session.
    session.set_config_variable("data_path", DATA_PATH)
    return session


@cache
def dynamodb() -> DynamoDBClient:
    return cast("DynamoDBClient", _session().create_client("dynamodb", config=_config()))


@cache
def sqs() -> SQSClient:
    return cast("SQSClient", _session().create_client("sqs", config=_config()))


@cache
def ssm() -> SSMClient:
    return cast("SSMClient", _session().create_client("ssm", config=_config()))
