"""SQS (the lane's DLQ): end, as failed, the job of every message SQS gave up on."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ordo.clock import utcnow
from ordo.observability import observed
from ordo.recovery import DeadLetter, end_dead_letters
from ordo.settings import settings
from ordo.wiring import job_table


@observed
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Reports only messages kept for a retry (a transient error, and every later one)."""
    config = settings()
    letters = [DeadLetter.model_validate(record) for record in event.get("Records", [])]
    kept = end_dead_letters(
        job_table(),
        letters,
        utcnow(),
        max_receive_count=config.max_receive_count,
        retention_days=config.job_retention_days,
    )
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in kept]}
