"""SQS (delayed messages): store each case transition at its time, whether or not anyone reads.

A message may arrive a moment early (SQS delays are whole seconds, clocks differ a little):
the handler waits out up to ``MAX_EARLY_SECONDS``, and leaves anything earlier for a retry.
"""

import time
from datetime import datetime

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from ordo import clock
from ordo.cases import tick
from ordo.observability import logger
from ordo.wiring import case_table, timeline

MAX_EARLY_SECONDS = 2.0
# Report every failed record, even when all fail: the others need not wait for a retry.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class CaseTick(BaseModel):
    case_id: str
    due: datetime


class TooEarly(Exception):
    pass


def run(record: SQSRecord) -> None:
    try:
        message = CaseTick.model_validate_json(record.body)
    except ValidationError:
        logger.error("unreadable case timer message; dropped", message_id=record.message_id)
        return
    early = (message.due - clock.utcnow()).total_seconds()
    if early > MAX_EARLY_SECONDS:
        raise TooEarly(f"{message.case_id} is due in {early:.1f} s")
    if early > 0:
        time.sleep(early)
    if tick(case_table(), message.case_id, clock.utcnow(), timeline()) is None:
        logger.info("case no longer exists", case_id=message.case_id)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, object], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=run, processor=processor, context=context
    )
