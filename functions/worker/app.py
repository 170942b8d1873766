"""SQS FIFO trigger: runs the lane's jobs one at a time, in acceptance order."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ordo.observability import logger, metrics
from ordo.wiring import lane as make_lane
from ordo.worker import Delivery

lane = make_lane()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Reports the messages it gave back as batch item failures, so Lambda keeps them."""
    deliveries = [Delivery.from_record(record) for record in event.get("Records", [])]
    given_back = lane.run_batch(
        deliveries, remaining=lambda: context.get_remaining_time_in_millis() / 1000
    )
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in given_back]}
