"""TransactWriteItems with DynamoDB's transaction conflicts retried.

Two transactions that touch the same item at the same moment: DynamoDB cancels one with the
reason ``TransactionConflict`` (not a failed condition). Retrying it lets its conditions decide.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ordo.errors import Unavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ATTEMPTS = 5


def is_condition_failure(error: ClientError) -> bool:
    """A single-item write refused by its ``ConditionExpression``."""
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def cancellation_codes(error: ClientError) -> list[str]:
    """Per action of a cancelled transaction: ``None``, ``ConditionalCheckFailed``, ..."""
    reasons = error.response.get("CancellationReasons", [])
    return [str(reason.get("Code", "None")) for reason in reasons]


def _conflicted(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code")
    if code == "TransactionConflictException":
        return True
    codes = cancellation_codes(error)
    return "TransactionConflict" in codes and "ConditionalCheckFailed" not in codes


def backoff(attempt: int) -> None:
    """Before retrying a write that lost a race: a random pause (full jitter) of up to
    20 ms * 2**attempt (``attempt`` 0, 1, ...), at most 320 ms, so the rivals spread out."""
    time.sleep(random.uniform(0, min(0.02 * 2**attempt, 0.32)))


def transact_write(client: DynamoDBClient, actions: list[dict[str, Any]]) -> None:
    """Raises ``ClientError`` as DynamoDB does, or ``Unavailable`` if conflicts persist."""
    for attempt in range(ATTEMPTS):
        try:
            client.transact_write_items(TransactItems=actions)  # type: ignore[arg-type]
            return
        except ClientError as error:
            if not _conflicted(error):
                raise
            if attempt == ATTEMPTS - 1:
                raise Unavailable("Too many simultaneous changes; please retry") from error
        backoff(attempt)
