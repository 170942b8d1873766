"""Settings, read from the environment once per cold start.

Nothing below a handler reads ``os.environ``: handlers call :func:`settings` and pass plain
values downward.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """Everything ordo reads from its environment, validated."""

    model_config = ConfigDict(frozen=True)

    table_name: str = Field(default="ordo", min_length=3)
    queue_url: str = ""
    dlq_url: str = ""
    case_timer_queue_url: str = ""
    time_scale: float = Field(default=1.0, ge=0.0, le=100.0)
    max_receive_count: int = Field(default=5, ge=1, le=1000)
    job_retention_days: int = Field(default=30, ge=0)
    # Tokens (ordo.tokens). The private signing key (a private JWK; the Auth function only)
    # and the public keys (a JWKS): each given directly (local, tests), or the name of the SSM
    # parameter that holds it (a SecureString, and a String).
    jwt_signing_key: str = Field(default="", repr=False)
    jwt_signing_key_parameter: str = ""
    jwt_public_keys: str = ""
    jwt_public_keys_parameter: str = ""
    jwt_issuer: str = Field(default="ordo", min_length=1, max_length=256)
    jwt_audience: str = Field(default="ordo-api", min_length=1, max_length=256)
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=7, ge=1, le=90)
    max_pending_per_user: int = Field(default=100, ge=1)
    # Sign-in and registration attempts one address may make per window (README: rate limits).
    client_attempts: int = Field(default=30, ge=1, le=1_000_000)
    fetch_source_url: str = "https://jsonplaceholder.typicode.com/posts"
    fetch_cache_seconds: int = Field(default=60, ge=0)
    fetch_connect_timeout: float = Field(default=2.0, gt=0, le=10)
    fetch_read_timeout: float = Field(default=5.0, gt=0, le=20)
    fetch_attempts: int = Field(default=3, ge=1, le=5)
    fetch_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    fetch_deadline_seconds: float = Field(default=12.0, gt=0, le=15)  # < the fetch kind's 18 s
    fetch_max_items: int = Field(default=1000, ge=1, le=10_000)
    # Every AWS SDK call: connect and read timeouts per attempt, and attempts (botocore's
    # standard retry mode, with backoff and jitter). See ordo.aws.sdk_call_budget.
    sdk_connect_timeout: float = Field(default=0.5, gt=0, le=10)
    sdk_read_timeout: float = Field(default=1.5, gt=0, le=30)
    sdk_max_attempts: int = Field(default=3, ge=1, le=5)
    # The worker function's timeout (reconciler: when a processing job is certainly stranded).
    worker_timeout_seconds: int = Field(default=60, ge=1, le=900)
    # The reconciler leaves a pending job alone for this long before it looks for its message.
    reconcile_pending_minutes: int = Field(default=15, ge=1)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        names = {
            "table_name": "ORDO_TABLE_NAME",
            "queue_url": "ORDO_QUEUE_URL",
            "dlq_url": "ORDO_DLQ_URL",
            "case_timer_queue_url": "ORDO_CASE_TIMER_QUEUE_URL",
            "time_scale": "ORDO_TIME_SCALE",
            "max_receive_count": "ORDO_MAX_RECEIVE_COUNT",
            "job_retention_days": "ORDO_JOB_RETENTION_DAYS",
            "jwt_signing_key": "ORDO_JWT_SIGNING_KEY",
            "jwt_signing_key_parameter": "ORDO_JWT_SIGNING_KEY_PARAMETER",
            "jwt_public_keys": "ORDO_JWT_PUBLIC_KEYS",
            "jwt_public_keys_parameter": "ORDO_JWT_PUBLIC_KEYS_PARAMETER",
            "jwt_issuer": "ORDO_JWT_ISSUER",
            "jwt_audience": "ORDO_JWT_AUDIENCE",
            "access_token_minutes": "ORDO_ACCESS_TOKEN_MINUTES",
            "refresh_token_days": "ORDO_REFRESH_TOKEN_DAYS",
            "max_pending_per_user": "ORDO_MAX_PENDING_PER_USER",
            "client_attempts": "ORDO_CLIENT_ATTEMPTS",
            "fetch_source_url": "ORDO_FETCH_SOURCE_URL",
            "fetch_cache_seconds": "ORDO_FETCH_CACHE_SECONDS",
            "fetch_connect_timeout": "ORDO_FETCH_CONNECT_TIMEOUT",
            "fetch_read_timeout": "ORDO_FETCH_READ_TIMEOUT",
            "fetch_attempts": "ORDO_FETCH_ATTEMPTS",
            "fetch_max_bytes": "ORDO_FETCH_MAX_BYTES",
            "fetch_deadline_seconds": "ORDO_FETCH_DEADLINE_SECONDS",
            "fetch_max_items": "ORDO_FETCH_MAX_ITEMS",
            "sdk_connect_timeout": "ORDO_SDK_CONNECT_TIMEOUT",
            "sdk_read_timeout": "ORDO_SDK_READ_TIMEOUT",
            "sdk_max_attempts": "ORDO_SDK_MAX_ATTEMPTS",
            "worker_timeout_seconds": "ORDO_WORKER_TIMEOUT_SECONDS",
            "reconcile_pending_minutes": "ORDO_RECONCILE_PENDING_MINUTES",
        }
        return cls.model_validate({field: env[var] for field, var in names.items() if var in env})


class JobLimits(BaseModel):
    """What every route that accepts a job passes down: the pending-job quota of one user and how
    long an ended job is kept."""

    model_config = ConfigDict(frozen=True)

    max_pending: int
    retention_days: int

    @classmethod
    def of(cls, config: Settings) -> JobLimits:
        return cls(
            max_pending=config.max_pending_per_user, retention_days=config.job_retention_days
        )


@cache
def settings() -> Settings:
    """The process's settings, read on first use and kept for the life of the container."""
    return Settings.from_env(os.environ)
