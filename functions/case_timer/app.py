"""SQS (delayed messages): store each case transition at its time, whether or not anyone reads.

A message a moment early is waited out; one far too early is left for a retry
(``ordo.cases.wait_before_tick``).
"""

import time

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from ordo import clock
from ordo.cases import CaseTick, tick, wait_before_tick
from ordo.observability import logger, observed
from ordo.wiring import case_table, timeline

# Report every failed record, even when all fail: the others need not wait for a retry.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def run(record: SQSRecord) -> None:
    try:
        message = CaseTick.model_validate_json(record.body)
    except ValidationError:
        logger.error("unreadable case timer message; dropped", message_id=record.message_id)
        return
    time.sleep(wait_before_tick(message, clock.utcnow()))
    if tick(case_table(), message.case_id, clock.utcnow(), timeline()) is None:
        logger.info("case no longer exists", case_id=message.case_id)


@observed
def handler(event: dict[str, object], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=run, processor=processor, context=context
    )
