"""The composition root: builds the AWS adapters from settings, once per container.

API routes depend on these through ``ordo.deps``, so tests can swap in fakes with
``app.dependency_overrides``; the other handlers call them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache, wraps
from typing import TYPE_CHECKING

from ordo import aws
from ordo.jobs import JobQueue, JobTable, QueueGauge
from ordo.settings import JobLimits, settings

# How old the token keys a warm container holds may get: a rotation reaches it within this.
KEYS_MAX_AGE_SECONDS = 300.0

if TYPE_CHECKING:
    from ordo.accounts import LoginGuard, RefreshTokens, SignInLimits, TokenPolicy, UserTable
    from ordo.aggregation import Aggregator, PostStore
    from ordo.cases import CaseTable, CaseTimer, Timeline
    from ordo.catalog import ProductTable
    from ordo.tokens import TokenVerifier
    from ordo.worker import Worker


def _kept_for[T](seconds: float) -> Callable[[Callable[[], T]], Callable[[], T]]:
    """Like ``functools.cache`` for a function of no arguments, but built again once it is
    ``seconds`` old (``cache_clear`` too, for tests)."""

    def decorate(build: Callable[[], T]) -> Callable[[], T]:
        kept: list[tuple[float, T]] = []

        @wraps(build)
        def kept_or_new() -> T:
            if not kept or time.monotonic() - kept[0][0] >= seconds:
                kept[:] = [(time.monotonic(), build())]
            return kept[0][1]

        kept_or_new.cache_clear = kept.clear  # type: ignore[attr-defined]
        return kept_or_new

    return decorate


@cache
def job_table() -> JobTable:
    from ordo.storage.jobs import DynamoJobTable

    return DynamoJobTable(aws.dynamodb(), settings().table_name)


@cache
def job_queue() -> JobQueue:
    from ordo.queue import SqsJobQueue

    return SqsJobQueue(aws.sqs(), settings().queue_url)


@cache
def job_limits() -> JobLimits:
    return JobLimits.of(settings())


@cache
def worker() -> Worker:
    from ordo.aggregation import Aggregator
    from ordo.kinds import Resources
    from ordo.queue import SqsReleaser
    from ordo.registry import KINDS
    from ordo.worker import Worker, job_margin

    config = settings()
    call = aws.sdk_call_budget(
        config.sdk_connect_timeout, config.sdk_read_timeout, config.sdk_max_attempts
    )
    return Worker(
        table=job_table(),
        kinds=KINDS,
        releaser=SqsReleaser(aws.sqs(), config.queue_url),
        time_scale=config.time_scale,
        retention_days=config.job_retention_days,
        resources=Resources({Aggregator: aggregator}),
        margin_seconds=job_margin(call),
    )


@cache
def lane_gauge() -> QueueGauge:
    """The lane's depth (admin view, reconciler)."""
    from ordo.queue import SqsQueueGauge

    return SqsQueueGauge(aws.sqs(), settings().queue_url)


@cache
def dead_letter_gauge() -> QueueGauge:
    """The lane's DLQ's depth (admin view)."""
    from ordo.queue import SqsQueueGauge

    return SqsQueueGauge(aws.sqs(), settings().dlq_url)


@cache
def user_table() -> UserTable:
    from ordo.storage.accounts import DynamoUserTable

    return DynamoUserTable(aws.dynamodb(), settings().table_name)


@cache
def refresh_tokens() -> RefreshTokens:
    from ordo.storage.accounts import DynamoRefreshTokens

    return DynamoRefreshTokens(aws.dynamodb(), settings().table_name)


@cache
def login_guard() -> LoginGuard:
    from ordo.storage.accounts import DynamoLoginGuard

    return DynamoLoginGuard(aws.dynamodb(), settings().table_name)


@cache
def sign_in_limits() -> SignInLimits:
    from ordo.accounts import AttemptLimit, SignInLimits

    return SignInLimits(client=AttemptLimit(free=settings().client_attempts))


def _parameter(name: str) -> str:
    response = aws.ssm().get_parameter(Name=name)
    return str(response["Parameter"].get("Value", ""))


@cache
def token_verifier() -> TokenVerifier:
    """The public keys, read from SSM on first use, every five minutes, and when a token names
    a key that is not among them (a rotation), at most once a minute."""
    from ordo.tokens import TokenVerifier

    config = settings()
    if not config.jwt_public_keys and not config.jwt_public_keys_parameter:
        raise RuntimeError("no JWT public keys: set ORDO_JWT_PUBLIC_KEYS(_PARAMETER)")

    def load() -> str:
        return config.jwt_public_keys or _parameter(config.jwt_public_keys_parameter)

    return TokenVerifier(
        load,
        issuer=config.jwt_issuer,
        audience=config.jwt_audience,
        max_age_seconds=KEYS_MAX_AGE_SECONDS,
    )


@_kept_for(KEYS_MAX_AGE_SECONDS)
def token_policy() -> TokenPolicy:
    """The Auth function's: the private signing key, read again every five minutes, so that a
    rotation reaches warm containers as it does the verifiers (``ordo.tokens``)."""
    from datetime import timedelta

    from ordo.accounts import TokenPolicy
    from ordo.keyring import current_signing_key
    from ordo.tokens import SigningKey

    config = settings()
    key = None
    if config.jwt_signing_key:
        key = SigningKey.from_jwk(config.jwt_signing_key)
    elif config.jwt_signing_key_parameter:
        key = current_signing_key(aws.ssm(), config.jwt_signing_key_parameter)
    if key is None:
        raise RuntimeError("no JWT signing key: set ORDO_JWT_SIGNING_KEY(_PARAMETER)")
    return TokenPolicy(
        signing_key=key,
        verifier=token_verifier(),
        access_lifetime=timedelta(minutes=config.access_token_minutes),
        refresh_lifetime=timedelta(days=config.refresh_token_days),
    )


@cache
def case_table() -> CaseTable:
    from ordo.storage.cases import DynamoCaseTable

    return DynamoCaseTable(aws.dynamodb(), settings().table_name)


@cache
def case_timer() -> CaseTimer:
    from ordo.storage.cases import SqsCaseTimer

    return SqsCaseTimer(aws.sqs(), settings().case_timer_queue_url)


@cache
def timeline() -> Timeline:
    from ordo.cases import Timeline

    return Timeline(time_scale=settings().time_scale)


def dependency_probes() -> dict[str, Callable[[], object]]:
    """What ``/health?deep=true`` reaches: the table and the job lane."""
    config = settings()
    return {
        "table": lambda: aws.dynamodb().describe_table(TableName=config.table_name),
        "queue": lambda: aws.sqs().get_queue_attributes(
            QueueUrl=config.queue_url, AttributeNames=["QueueArn"]
        ),
    }


@cache
def post_store() -> PostStore:
    from ordo.storage.aggregation import DynamoPostStore

    return DynamoPostStore(aws.dynamodb(), settings().table_name)


@cache
def aggregator() -> Aggregator:
    from datetime import timedelta

    from ordo.aggregation import Aggregator
    from ordo.source import HttpSource
    from ordo.storage.aggregation import DynamoFetchLock, DynamoFetchLog

    config = settings()
    source = HttpSource(
        config.fetch_source_url,
        connect_timeout=config.fetch_connect_timeout,
        read_timeout=config.fetch_read_timeout,
        max_bytes=config.fetch_max_bytes,
        attempts=config.fetch_attempts,
        deadline=config.fetch_deadline_seconds,
        max_items=config.fetch_max_items,
    )
    table = config.table_name
    return Aggregator(
        source=source,
        store=post_store(),
        lock=DynamoFetchLock(aws.dynamodb(), table),
        log=DynamoFetchLog(aws.dynamodb(), table),
        cache_window=timedelta(seconds=config.fetch_cache_seconds),
    )


@cache
def product_table() -> ProductTable:
    from ordo.storage.catalog import DynamoProductTable

    return DynamoProductTable(aws.dynamodb(), settings().table_name)
