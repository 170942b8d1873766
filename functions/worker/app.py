"""SQS FIFO trigger: runs jobs one at a time, in acceptance order."""

from typing import Any

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from ordo.observability import logger, metrics
from ordo.wiring import lane as make_lane
from ordo.worker import Delivery

lane = make_lane()
processor = SqsFifoPartialProcessor()


def run(record: SQSRecord) -> None:
    lane.handle(Delivery.from_record(record.raw_event))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event,
        record_handler=run,
        processor=processor,
        context=context,
    )
