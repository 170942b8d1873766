"""The worker: runs jobs from the FIFO lane one at a time, in order.

A batch is processed in order and stops at the first failure, reporting that record and every
later one (Powertools' ``SqsFifoPartialProcessor``), so a retry can never overtake a job.

A message that can never succeed does not wait for SQS's own redrive, which would hold the
whole lane for ``maxReceiveCount`` visibility timeouts: the worker marks its job failed, forwards
the message to the DLQ itself and acknowledges it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from ordo.aggregation import FetchCounts, FetchLocked, SourceFailed
from ordo.clock import Clock, Sleeper, scaled_sleep, utcnow
from ordo.documents import InvalidDocument, process_document
from ordo.errors import StaleTransition
from ordo.jobs import Job, JobKind, JobStatus, JobTable
from ordo.observability import MetricUnit, logger, metrics
from ordo.queue import JobMessage
from ordo.tasks import TASKS


class JobFailed(Exception):
    """The job's own input makes it fail; retrying cannot help. The message is shown to users."""


class DeadLetters(Protocol):
    def forward(self, message_id: str, body: str, reason: str) -> None: ...


@dataclass(frozen=True)
class Delivery:
    """One SQS record, as the worker needs it."""

    message_id: str
    body: str
    receive_count: int

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Delivery:
        """From a record of a Lambda SQS event."""
        return cls(
            message_id=record["messageId"],
            body=record["body"],
            receive_count=int(record["attributes"]["ApproximateReceiveCount"]),
        )


Reporter = Callable[[int], None]
Fetcher = Callable[[str], FetchCounts]


def run_job(
    job: Job, time_scale: float, sleep: Sleeper, report: Reporter, fetch: Fetcher | None = None
) -> str:
    """Run a text task, process a document or fetch the source; ``report`` records progress."""
    if job.kind is JobKind.FETCH:
        if fetch is None:
            raise JobFailed("fetching is not configured in this worker")
        try:
            return fetch(job.job_id).model_dump_json()
        except FetchLocked as exc:
            raise JobFailed(exc.detail) from exc
        except SourceFailed as exc:
            raise JobFailed(exc.detail) from exc
    if job.document_type is not None:
        try:
            return process_document(job.document_type, job.data, time_scale, sleep, report)
        except InvalidDocument as exc:
            raise JobFailed(str(exc)) from exc
    assert job.task_type is not None  # Job's validator: every job is a task or a document
    spec = TASKS[job.task_type]
    scaled_sleep(spec.delay_seconds, time_scale, sleep)
    return spec.run(job.data)


@dataclass
class Lane:
    """Everything the worker needs, passed in by the handler (or a test)."""

    table: JobTable
    dead_letters: DeadLetters
    max_receive_count: int
    time_scale: float = 1.0
    clock: Clock = utcnow
    sleep: Sleeper = time.sleep
    runner: Callable[[Job, float, Sleeper, Reporter], str] = run_job

    def handle(self, delivery: Delivery) -> None:
        """Run the job a message points at. Raises to ask SQS for a retry."""
        final_attempt = delivery.receive_count >= self.max_receive_count
        try:
            message = JobMessage.model_validate_json(delivery.body)
        except ValidationError:
            self._dead_letter(delivery, "unparseable message")
            return
        logger.set_correlation_id(message.job_id)
        job = self.table.get(message.job_id)
        if job is None:
            self._dead_letter(delivery, "unknown job")
            return
        if job.status.is_final:
            logger.info("job already finished; acknowledging redelivery", status=job.status)
            return
        if final_attempt and job.status is JobStatus.PROCESSING and job.error is None:
            # The last attempt neither finished nor failed: it crashed or timed out. Running it
            # once more could crash again and leave it processing forever, so give up now.
            reason = f"did not finish in {job.attempt} attempts (crash or timeout)"
            self._give_up(job, delivery, reason)
            return
        self._run(self.table.claim(job, self.clock()), delivery, final_attempt)

    def _run(self, job: Job, delivery: Delivery, final_attempt: bool) -> None:
        logger.info("job started", attempt=job.attempt, kind=job.kind)
        if job.attempt == 1 and job.started_at is not None:
            wait = (job.started_at - job.created_at).total_seconds()
            metrics.add_metric(name="QueueWaitSeconds", unit=MetricUnit.Seconds, value=wait)
        try:
            result = self.runner(job, self.time_scale, self.sleep, self._reporter(job))
        except JobFailed as exc:
            self._finish(job, JobStatus.FAILED, error=str(exc))
            return
        except Exception as exc:
            if not final_attempt:
                self.table.note_failure(job, f"attempt {job.attempt} failed ({type(exc).__name__})")
                metrics.add_metric(name="JobAttemptsFailed", unit=MetricUnit.Count, value=1)
                raise
            logger.exception("job failed on its final attempt")
            self._finish(job, JobStatus.FAILED, error=f"failed after {job.attempt} attempts")
            self._forward(delivery, f"failed on its final attempt: {type(exc).__name__}")
            return
        self._finish(job, JobStatus.COMPLETED, result=result)

    def _reporter(self, job: Job) -> Reporter:
        def report(progress: int) -> None:
            try:
                self.table.set_progress(job, progress, self.clock())
            except StaleTransition:  # moved on meanwhile; finishing will find out too
                logger.warning("progress not recorded", progress=progress)

        return report

    def _finish(
        self, job: Job, status: JobStatus, result: str | None = None, error: str | None = None
    ) -> None:
        try:
            self.table.finish(job, status, self.clock(), result=result, error=error)
        except StaleTransition:
            logger.warning("job changed while running; outcome discarded")
            return
        name = "JobsCompleted" if status is JobStatus.COMPLETED else "JobsFailed"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        logger.info("job finished", status=status)

    def _give_up(self, job: Job, delivery: Delivery, reason: str) -> None:
        try:
            self.table.abandon(job.job_id, reason, self.clock())
            metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
        except StaleTransition:
            logger.info("job finished meanwhile")
        self._forward(delivery, reason)

    def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        logger.error("poison message", reason=reason, message_id=delivery.message_id)
        self._forward(delivery, reason)

    def _forward(self, delivery: Delivery, reason: str) -> None:
        self.dead_letters.forward(delivery.message_id, delivery.body, reason)
        metrics.add_metric(name="MessagesDeadLettered", unit=MetricUnit.Count, value=1)
