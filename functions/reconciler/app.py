"""EventBridge schedule: end, as failed, the jobs the lane can no longer finish."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ordo.clock import utcnow
from ordo.observability import logger, observed
from ordo.recovery import ScheduledEvent, reconcile
from ordo.registry import KINDS
from ordo.settings import settings
from ordo.wiring import job_table, lane_gauge


@observed
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    tick = ScheduledEvent.model_validate(event)
    logger.append_keys(schedule_event=tick.id)
    config = settings()
    report = reconcile(
        job_table(),
        lane_gauge(),
        KINDS,
        utcnow(),
        pending_minutes=config.reconcile_pending_minutes,
        worker_timeout_seconds=config.worker_timeout_seconds,
        time_scale=config.time_scale,
        retention_days=config.job_retention_days,
    )
    return report.model_dump(mode="json")
