"""SQS FIFO trigger: runs the lane's jobs one at a time, in acceptance order."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ordo.observability import observed
from ordo.wiring import worker as make_worker
from ordo.worker import Delivery

worker = make_worker()


@observed
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Reports the messages it gave back as batch item failures, so Lambda keeps them."""
    deliveries = [Delivery.from_record(record) for record in event.get("Records", [])]
    given_back = worker.run_batch(
        deliveries, remaining=lambda: context.get_remaining_time_in_millis() / 1000
    )
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in given_back]}
