"""Recovery: ending the jobs the lane itself can no longer finish, so none is ever stranded.

Two paths, both ending a job with :meth:`ordo.jobs.JobTable.abandon` (conditional, so it never
overwrites a finished job, and it takes a pending job off its owner's quota):

- The **dead-letter consumer** ends the job of every message SQS gave up on (moved to the
  lane's DLQ after ``maxReceiveCount`` deliveries).
- The **reconciler**, run on a schedule, ends the jobs whose message is gone from the lane
  without a trace in the table: a submit cut off between writing the job and sending its
  message, or a worker killed while it ran the job. It reads only the status index and the
  lane's approximate depth, never a Scan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ordo.errors import StaleTransition
from ordo.jobs import Job, JobStatus, JobSummary, JobTable, QueueGauge, expiry
from ordo.kinds import Registry
from ordo.observability import MetricUnit, logger, metrics
from ordo.queue import JobMessage
from ordo.retry import describe, is_transient

# A function that puts a job on the lane sends its message before its invocation ends, so
# within its Lambda timeout of the job's created_at (10 s for most; FetchFunction's 29 s is the
# longest, tests/integration/test_recovery.py checks). The rest is room for clock differences.
SUBMIT_WINDOW = timedelta(seconds=60)
# SQS's approximate counts can be about a minute behind.
GAUGE_LAG = timedelta(seconds=60)
# However low ORDO_RECONCILE_PENDING_MINUTES is set, a pending job is this old at least before
# the reconciler looks at it: its message was sent, and the lane's depth shows it.
MIN_PENDING_AGE = SUBMIT_WINDOW + GAUGE_LAG
# Beyond a processing job's budget and the worker's timeout: room for clock differences.
STALL_SLACK = timedelta(seconds=60)

PAGE_SIZE = 50
# Bounds on one run; the next run (every few minutes) goes on where this one stopped.
MAX_ENDED_PER_RUN = 100
MAX_EXAMINED_PER_STATUS = 500
# Newest entries read of each status a started job can be in, to find the latest one started.
WITNESS_SAMPLE = 50
# The most of a dead letter's body kept on its job (a pointer is ~50 characters; this bounds a
# stray large message, which must not push the job item past DynamoDB's 400 KB).
MAX_KEPT_BODY = 8192
MAX_LOGGED_BODY = 1000

NEVER_QUEUED = (
    "its message never reached the lane (the submit was cut off); ended by the reconciler"
)
WORKER_GONE = "the worker stopped while running this job; ended by the reconciler"
RETRY_LOST = (
    "interrupted, and its message is no longer on the lane to run it again; ended by the reconciler"
)


def dead_lettered(max_receive_count: int) -> str:
    return f"dead-lettered after {max_receive_count} deliveries"


# --- the dead-letter consumer ------------------------------------------------------------


class DeadLetter(BaseModel):
    """One record of a Lambda SQS event from the lane's DLQ."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    message_id: str = Field(alias="messageId")
    body: str = ""


class DeadLetterOutcome(StrEnum):
    ENDED = "ended"
    ALREADY_FINISHED = "already finished"
    UNREADABLE = "unreadable message"
    UNKNOWN_JOB = "unknown job"


def end_dead_letter(
    table: JobTable,
    letter: DeadLetter,
    now: datetime,
    *,
    max_receive_count: int,
    retention_days: int,
) -> DeadLetterOutcome:
    """End the job a dead letter points at as failed, keeping the message body on it.

    Raises what the table raises (a transient AWS error, say): the caller decides.
    """
    logger.set_correlation_id(None)  # not the previous record's job
    try:
        message = JobMessage.model_validate_json(letter.body)
    except ValidationError:
        return _discard(letter, DeadLetterOutcome.UNREADABLE)
    logger.set_correlation_id(message.job_id)
    job = table.get(message.job_id)
    if job is None:
        return _discard(letter, DeadLetterOutcome.UNKNOWN_JOB)
    if job.status.is_final:
        logger.info("dead letter of a finished job; acknowledged", status=job.status)
        return DeadLetterOutcome.ALREADY_FINISHED
    reason = dead_lettered(max_receive_count)
    try:
        table.abandon(
            job.job_id,
            reason,
            now,
            expires_at=expiry(now, retention_days),
            dead_letter_body=letter.body[:MAX_KEPT_BODY],
        )
    except StaleTransition:
        logger.info("job finished meanwhile; dead letter acknowledged")
        return DeadLetterOutcome.ALREADY_FINISHED
    metrics.add_metric(name="JobsDeadLettered", unit=MetricUnit.Count, value=1)
    logger.warning("dead-lettered job ended", was=job.status, reason=reason)
    return DeadLetterOutcome.ENDED


def end_dead_letters(
    table: JobTable,
    letters: Sequence[DeadLetter],
    now: datetime,
    *,
    max_receive_count: int,
    retention_days: int,
) -> list[str]:
    """Handle a batch in order; returns the message ids to report as batch item failures.

    The DLQ is FIFO with one message group, so a message left in flight would hold up every
    other: only a transient AWS error keeps one, and with it every later one (the FIFO rule).
    Anything else is acknowledged and logged; if its job is still open, the reconciler ends it,
    since its message is no longer on the lane.
    """
    for index, letter in enumerate(letters):
        try:
            end_dead_letter(
                table,
                letter,
                now,
                max_receive_count=max_receive_count,
                retention_days=retention_days,
            )
        except Exception as exc:
            if is_transient(exc):
                kept = [later.message_id for later in letters[index:]]
                logger.warning(
                    "dead letters kept for a retry", error=describe(exc), count=len(kept)
                )
                return kept
            logger.exception(
                "could not end a dead-lettered job; acknowledged",
                message_id=letter.message_id,
                body=letter.body[:MAX_LOGGED_BODY],
            )
            metrics.add_metric(name="DeadLettersDiscarded", unit=MetricUnit.Count, value=1)
    return []


def _discard(letter: DeadLetter, outcome: DeadLetterOutcome) -> DeadLetterOutcome:
    logger.error(
        "dead letter acknowledged without a job to end",
        reason=outcome,
        message_id=letter.message_id,
        body=letter.body[:MAX_LOGGED_BODY],
    )
    metrics.add_metric(name="DeadLettersDiscarded", unit=MetricUnit.Count, value=1)
    return outcome


# --- the reconciler ----------------------------------------------------------------------


class ScheduledEvent(BaseModel):
    """EventBridge's "Scheduled Event", which starts a reconciler run."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
    time: datetime


class ReconcileReport(BaseModel):
    """What one reconciler run did."""

    pending_ended: int = Field(default=0, description="Pending jobs whose message was lost.")
    processing_ended: int = Field(default=0, description="Processing jobs whose worker is gone.")
    moved_on: int = Field(
        default=0, description="Candidates that someone else moved on before this run could."
    )
    oldest_waiting: str | None = Field(
        default=None,
        description="The oldest pending job past the threshold that was left alone: its "
        "message may still be waiting on the lane.",
    )
    capped: bool = Field(default=False, description="Stopped at the per-run limit.")
    stopped: str | None = Field(default=None, description="The transient error that ended it.")
    job_ids: list[str] = Field(default_factory=list, description="The jobs ended, in order.")

    @property
    def ended(self) -> int:
        return self.pending_ended + self.processing_ended


class _Capped(Exception):
    pass


class _Evidence:
    """What shows that a job's message is gone from the lane, read at most once per run.

    The lane is one FIFO group, and a job's message is sent within ``SUBMIT_WINDOW`` of its
    ``created_at`` (``ordo.jobs.enqueue`` runs in the invocation that created the job: keep it
    so). So if the worker has started a job created more than ``SUBMIT_WINDOW``
    after a job P, then P's message (if it was ever sent) came off the lane before that one's.
    And if the lane is empty, nothing of P's is on it.
    """

    def __init__(self, table: JobTable, lane: QueueGauge) -> None:
        self._table = table
        self._lane = lane
        self._latest: datetime | None = None
        self._latest_read = False
        self._empty: bool | None = None

    def message_gone(self, created_at: datetime) -> bool:
        latest = self.latest_started_creation()
        if latest is not None and latest > created_at + SUBMIT_WINDOW:
            return True
        return self.lane_empty()

    def latest_started_creation(self) -> datetime | None:
        """The newest ``created_at`` among the jobs the worker started most recently."""
        if not self._latest_read:
            created = [
                summary.created_at
                for status in (JobStatus.PROCESSING, JobStatus.COMPLETED, JobStatus.FAILED)
                for summary in self._table.by_status(status, limit=WITNESS_SAMPLE).items
                # failed also holds jobs that never ran (abandoned): they prove nothing
                if summary.started_at is not None
            ]
            self._latest = max(created, default=None)
            self._latest_read = True
        return self._latest

    def lane_empty(self) -> bool:
        if self._empty is None:
            self._empty = self._lane.depth() == 0
        return self._empty


class _Run:
    """One reconciler run: the rules, and the report of what they did."""

    def __init__(
        self,
        table: JobTable,
        lane: QueueGauge,
        kinds: Registry,
        now: datetime,
        *,
        pending_after: timedelta,
        worker_timeout: timedelta,
        time_scale: float,
        retention_days: int,
        max_ended: int,
    ) -> None:
        self.table = table
        self.kinds = kinds
        self.now = now
        self.pending_cutoff = now - max(pending_after, MIN_PENDING_AGE)
        self.worker_timeout = worker_timeout
        self.time_scale = time_scale
        self.retention_days = retention_days
        self.max_ended = max_ended
        self.evidence = _Evidence(table, lane)
        self.report = ReconcileReport()

    # --- processing: the worker that ran it is gone ----------------------------------------

    def end_stalled(self) -> None:
        # Every stalled job started before this (a budget is never negative); the kind's own
        # budget then decides. Not ordered by deadline, so every candidate is looked at.
        before = self.now - self.worker_timeout - STALL_SLACK
        for summary in self._candidates(JobStatus.PROCESSING, before):
            if not self._stalled(summary):
                continue
            reason = RETRY_LOST if summary.error is not None else WORKER_GONE
            if self._end(summary.job_id, reason, self._stalled):
                self.report.processing_ended += 1

    def _stalled(self, job: Job | JobSummary) -> bool:
        """Processing past any run of its kind: the worker's invocation has certainly ended.

        An interrupted job (``error`` set) is waiting for its message to come round again, so
        it is stranded only once that message is gone too.
        """
        if job.status is not JobStatus.PROCESSING or job.started_at is None:
            return False
        kind = self.kinds.find(job.kind)
        scale = self.time_scale
        budget = kind.budget(scale) if kind else self.kinds.longest_budget(scale)
        deadline = job.started_at + timedelta(seconds=budget) + self.worker_timeout + STALL_SLACK
        if deadline >= self.now:
            return False
        return job.error is None or self.evidence.message_gone(job.created_at)

    # --- pending: its message never reached the lane ---------------------------------------

    def end_unqueued(self) -> None:
        for summary in self._candidates(JobStatus.PENDING, self.pending_cutoff):
            if not self.evidence.message_gone(summary.created_at):
                # Oldest first, and the evidence is the same for all: no later one can be
                # shown to have lost its message either.
                self.report.oldest_waiting = summary.job_id
                return
            if self._end(summary.job_id, NEVER_QUEUED, self._unqueued):
                self.report.pending_ended += 1

    def _unqueued(self, job: Job | JobSummary) -> bool:
        return (
            job.status is JobStatus.PENDING
            and job.created_at < self.pending_cutoff
            and self.evidence.message_gone(job.created_at)
        )

    # --- shared ----------------------------------------------------------------------------

    def _candidates(self, status: JobStatus, before: datetime) -> Iterator[JobSummary]:
        """Jobs that entered ``status`` before ``before``, oldest first, up to a bound."""
        cursor: str | None = None
        examined = 0
        while examined < MAX_EXAMINED_PER_STATUS:
            page = self.table.by_status(
                status, limit=PAGE_SIZE, cursor=cursor, newest_first=False, before=before
            )
            for summary in page.items:
                examined += 1
                yield summary
            cursor = page.next_cursor
            if cursor is None or not page.items:
                return
        self.report.capped = True

    def _end(self, job_id: str, reason: str, still: Callable[[Job], bool]) -> bool:
        """End the job if a fresh (consistent) read still meets the rule; ``False`` if it
        moved on meanwhile. The index the candidates come from can be a moment behind."""
        if self.report.ended >= self.max_ended:
            self.report.capped = True
            raise _Capped
        job = self.table.get(job_id)
        if job is None or not still(job):
            self.report.moved_on += 1
            return False
        logger.set_correlation_id(job_id)
        try:
            self.table.abandon(
                job_id, reason, self.now, expires_at=expiry(self.now, self.retention_days)
            )
        except StaleTransition:  # the worker (or the DLQ consumer) finished it first
            logger.info("job moved on before the reconciler could end it")
            self.report.moved_on += 1
            return False
        logger.warning("reconciler ended a job", was=job.status, kind=job.kind, reason=reason)
        self.report.job_ids.append(job_id)
        return True


def reconcile(
    table: JobTable,
    lane: QueueGauge,
    kinds: Registry,
    now: datetime,
    *,
    pending_minutes: int,
    worker_timeout_seconds: float,
    time_scale: float,
    retention_days: int,
    max_ended: int = MAX_ENDED_PER_RUN,
) -> ReconcileReport:
    """End, as failed, every job the lane can no longer finish.

    - ``processing``, started longer ago than its kind's budget plus the worker's timeout
      plus ``STALL_SLACK``: no worker invocation lasts that long, so the one that ran it is
      gone. (An interrupted job waits for its message instead, unless that is gone too.)
    - ``pending`` for more than ``pending_minutes``, when its message is certainly gone from
      the lane (see :class:`_Evidence`): the submit died between writing the job and sending
      its message. Otherwise it is left alone; its message may be deep in a backlog.

    Safe to run at any time, concurrently with the worker and with itself: each job is read
    again before it is ended, and ``abandon`` is conditional. A transient AWS error stops the
    run (the next one goes on); any other error is raised.
    """
    run = _Run(
        table,
        lane,
        kinds,
        now,
        pending_after=timedelta(minutes=pending_minutes),
        worker_timeout=timedelta(seconds=worker_timeout_seconds),
        time_scale=time_scale,
        retention_days=retention_days,
        max_ended=max_ended,
    )
    try:
        run.end_stalled()  # first: they are few, and their owners are waiting on them
        run.end_unqueued()
    except _Capped:
        logger.warning("reconciler stopped at its per-run limit", limit=max_ended)
    except Exception as exc:
        if not is_transient(exc):
            raise
        run.report.stopped = describe(exc)
        logger.warning("reconciler stopped by a transient error", error=run.report.stopped)
    report = run.report
    logger.set_correlation_id(None)
    metrics.add_metric(name="ReconcilerActions", unit=MetricUnit.Count, value=report.ended)
    logger.info("reconciler run", **report.model_dump(exclude={"job_ids"}))
    return report
