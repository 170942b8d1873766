"""Transient AWS failures, and retrying them within a time budget.

Transient means the same call may succeed a moment later: throttling, a 5xx, a timeout or a
dropped connection, or a transaction cancelled by a conflicting one. Anything else (a failed
condition, a validation error, a bug) is not retried.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from ordo.errors import Unavailable

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionInProgressException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
# Reasons a TransactWriteItems cancellation gives that say "try again", not "no".
TRANSIENT_CANCELLATIONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)


def _client_error_is_transient(error: ClientError) -> bool:
    details = error.response.get("Error", {})
    code = str(details.get("Code", ""))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in THROTTLING_CODES or status >= 500:
        return True
    if code == "TransactionCanceledException":
        reasons = {
            str(r.get("Code", "None")) for r in error.response.get("CancellationReasons", [])
        }
        return bool(reasons & TRANSIENT_CANCELLATIONS) and "ConditionalCheckFailed" not in reasons
    return False


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        return _client_error_is_transient(exc)
    return isinstance(exc, BotoConnectionError | HTTPClientError | Unavailable)


class BudgetSpent(Exception):
    """Transient failures went on past the retry budget."""


@dataclass
class RetryBudget:
    """Exponential backoff with full jitter, until ``seconds`` have passed since ``start``."""

    seconds: float
    base: float = 0.05
    cap: float = 2.0
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    started: float = field(default=-1.0)
    retries: int = 0

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.monotonic()

    def call[T](self, call: Callable[[], T]) -> T:
        """``call()``, retried on transient failures; ``BudgetSpent`` once the budget is gone."""
        while True:
            try:
                return call()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self.wait(exc)

    def wait(self, cause: BaseException) -> None:
        """Sleep before the next try, or raise ``BudgetSpent`` (from ``cause``) if none fits."""
        delay = random.uniform(0, min(self.cap, self.base * 2**self.retries))
        if self.monotonic() + delay - self.started > self.seconds:
            raise BudgetSpent(describe(cause)) from cause
        self.retries += 1
        self.sleep(delay)


def describe(exc: BaseException) -> str:
    """A short, safe description of an AWS failure, e.g. ``ThrottlingException``."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__
