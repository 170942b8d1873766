"""AWS clients (botocore), created on first use and reused for the life of the container.

boto3 honours ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``) on its own, which is how
tests, the local cloud and benchmarks point ordo at moto.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from botocore.config import Config
    from botocore.session import Session
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient


def _config() -> Config:
    from botocore.config import Config

    # API Gateway gives up after 30 s; fail fast and let standard retries absorb a blip.
    return Config(
        connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
    )


@cache
def _session() -> Session:
    # botocore directly: `import boto3` adds s3transfer and multiprocessing to every cold start.
    from botocore.session import get_session

    return get_session()


@cache
def dynamodb() -> DynamoDBClient:
    return cast("DynamoDBClient", _session().create_client("dynamodb", config=_config()))


@cache
def sqs() -> SQSClient:
    return cast("SQSClient", _session().create_client("sqs", config=_config()))


@cache
def ssm() -> SSMClient:
    return cast("SSMClient", _session().create_client("ssm", config=_config()))
