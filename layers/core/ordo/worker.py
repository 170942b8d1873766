"""The worker: runs the lane's jobs one at a time, in order, and keeps each job's failure its own.

For each message of a batch, in order:

1. A message that is not a job pointer, or points at no job, is acknowledged and logged.
2. A finished job is acknowledged: it is a redelivery.
3. A job still ``processing`` from an earlier delivery runs again only if infrastructure
   interrupted that attempt. Otherwise the attempt crashed or timed out the worker, and running
   it again could do the same, so it ends ``failed`` at once.
4. A job whose kind's time budget (plus a margin for the lane's own calls) does not fit in the
   invocation's remaining time is not started: it and every later message go back to the
   queue at once.
5. The job is claimed and its runner runs in a thread of its own, under its kind's budget. A
   message naming the job's owner and kind, as ``ordo.queue`` sends them, is claimed on its
   first delivery without being read first: the claim is conditional on a job never attempted,
   of that owner and kind, and the job is read meanwhile. Any other message, or a failed
   condition, is read first and decided by the steps above. Any error the runner raises, of
   any type, ends the job ``failed`` at once; it is not retried and never reaches the DLQ. A
   runner that overruns is stopped and its job ends ``failed``.
6. The lane's own AWS calls are retried in place on transient errors (throttling, 5xx,
   timeouts), with backoff and jitter, within a per-job budget. When the budget is spent, the
   job is noted as interrupted and its message and every later one go back to the queue.

"Go back at once" is ``ChangeMessageVisibility(0)`` on messages the worker has not finished:
they are still in flight, so their message group stays locked until this invocation returns
and Lambda deletes the ones that succeeded; the order holds. Only a crash of the whole process
leaves a message to wait out the queue's visibility timeout.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from ordo.clock import Clock, Sleeper, utcnow
from ordo.errors import OrdoError, StaleTransition
from ordo.jobs import Job, JobStatus, JobTable, expiry
from ordo.kinds import MIN_RUN_SECONDS, Cancelled, JobFailed, Kind, Registry, Resources, RunContext
from ordo.observability import MetricUnit, logger, metrics
from ordo.queue import JobMessage
from ordo.retry import BudgetSpent, RetryBudget, describe, is_transient

# Seconds of transient AWS failures one job's own lane calls may retry through, in place.
RETRY_SECONDS = 5.0
# The most a runner's result may take, as UTF-8: with the job's payload (the kinds keep theirs
# under about 100 KB) it stays inside one DynamoDB item (400 KB). Every kind's real results fit.
MAX_RESULT_BYTES = 256 * 1024


def job_margin(call_seconds: float, retry_seconds: float = RETRY_SECONDS) -> float:
    """Time a job needs beyond its kind's budget: the retry budget, then claim and finish at
    their slowest (``call_seconds`` each, ``ordo.aws.sdk_call_budget``), and a second for the
    rest (reading the job, logging)."""
    return retry_seconds + 2 * call_seconds + 1.0


# With the worker's SDK settings in template.yaml: 0.5 s connect + 1.5 s read, one attempt.
JOB_MARGIN_SECONDS = job_margin(2.0)
CRASHED = (
    "the worker stopped while running this job (killed, out of memory or timed out); not retried"
)


class HandBack(Exception):
    """This message (and every later one of the batch) goes back to the queue unstarted."""


class Releaser(Protocol):
    """Makes in-flight messages visible again at once (``ChangeMessageVisibility`` to 0)."""

    def release(self, receipt_handles: Sequence[str]) -> None: ...


class _KeepInFlight:
    def release(self, receipt_handles: Sequence[str]) -> None:
        del receipt_handles


@dataclass(frozen=True)
class Delivery:
    """One SQS record, as the worker needs it."""

    message_id: str
    body: str
    receipt_handle: str = ""

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Delivery:
        """From a record of a Lambda SQS event."""
        return cls(
            message_id=str(record["messageId"]),
            body=str(record.get("body", "")),
            receipt_handle=str(record.get("receiptHandle", "")),
        )


@dataclass(frozen=True)
class _Outcome:
    result: str | None = None
    error: str | None = None
    result_is_json: bool = False  # the kind declares its result JSON: it may be stored so


@dataclass
class Worker:
    """Everything the worker needs, passed in by the handler (or a test)."""

    table: JobTable
    kinds: Registry
    releaser: Releaser = field(default_factory=_KeepInFlight)
    time_scale: float = 1.0
    retention_days: int = 0
    clock: Clock = utcnow
    sleep: Sleeper | None = None  # replaces runners' waits (tests); None: a cancellable wait
    resources: Resources = field(default_factory=Resources)
    retry_seconds: float = RETRY_SECONDS
    retry_sleep: Sleeper = time.sleep
    margin_seconds: float = JOB_MARGIN_SECONDS
    min_run_seconds: float = MIN_RUN_SECONDS

    # --- a batch -------------------------------------------------------------------------

    def run_batch(
        self, deliveries: Sequence[Delivery], remaining: Callable[[], float] = lambda: math.inf
    ) -> list[str]:
        """Handle ``deliveries`` in order; returns the message ids given back to the queue.

        ``remaining`` is the invocation's time left, in seconds.
        """
        for index, delivery in enumerate(deliveries):
            try:
                self.handle(delivery, remaining)
            except HandBack as back:
                rest = deliveries[index:]
                logger.warning("handing messages back", reason=str(back), count=len(rest))
                metrics.add_metric(
                    name="MessagesHandedBack", unit=MetricUnit.Count, value=len(rest)
                )
                self._release(rest)
                return [d.message_id for d in rest]
        return []

    def _release(self, deliveries: Sequence[Delivery]) -> None:
        try:
            self.releaser.release([d.receipt_handle for d in deliveries if d.receipt_handle])
        except Exception:  # they come back after the visibility timeout instead
            logger.exception("could not release messages; they return after the timeout")

    # --- one message ---------------------------------------------------------------------

    def handle(self, delivery: Delivery, remaining: Callable[[], float] = lambda: math.inf) -> None:
        """Run the job a message points at, to its end. Raises ``HandBack`` to give it back."""
        try:
            message = JobMessage.model_validate_json(delivery.body)
        except ValidationError:
            self._poison(delivery, "unparseable message")
            return
        logger.set_correlation_id(message.job_id)
        budget = RetryBudget(self.retry_seconds, sleep=self.retry_sleep)
        try:
            if self._run_new(message, budget, remaining):
                return
            self._handle(message.job_id, delivery, budget, remaining)
        except (HandBack, BudgetSpent) as stop:
            raise HandBack(str(stop)) from stop
        except Exception as exc:  # a bug, or a permanent AWS error, in the lane's own path
            logger.exception("the worker failed handling this job")
            self._end(message.job_id, f"the worker could not handle this job ({describe(exc)})")

    def _run_new(
        self, message: JobMessage, budget: RetryBudget, remaining: Callable[[], float]
    ) -> bool:
        """Claim the job of a message naming its owner and kind, without reading it first, and
        read it meanwhile; then run it. False, with nothing changed, unless it is a job never
        attempted, of that owner and kind (a redelivery, an interrupted or finished job):
        ``_handle`` reads it and decides."""
        kind = self.kinds.find(message.kind) if message.kind else None
        if kind is None or message.owner is None:
            return False
        self._check_time(kind, remaining)
        job_id, owner, now = message.job_id, message.owner, self.clock()
        reading = _InBackground(
            lambda: RetryBudget(self.retry_seconds, sleep=self.retry_sleep).call(
                lambda: self.table.get(job_id)
            )
        )
        try:
            budget.call(lambda: self.table.claim_new(job_id, owner, kind.name, now))
        except StaleTransition:
            reading.wait()
            return False
        except BaseException:
            reading.wait()
            raise
        try:
            stored = reading.result()
        except BudgetSpent as spent:  # claimed, unread: its redelivery runs it again
            unread = Job(job_id=job_id, owner=owner, kind=kind.name, data="", created_at=now)
            self._note_interrupted(unread.claimed(now), f"it could not be read ({spent})")
            raise
        if stored is None:  # claimed, so it exists: never seen
            raise RuntimeError(f"job {job_id} was claimed but not found")
        # Read before or after the claim: either way, the claim made it attempt 1.
        self._run_claimed(stored.claimed(now).model_copy(update={"attempt": 1}), kind, budget)
        return True

    def _check_time(self, kind: Kind[Any] | None, remaining: Callable[[], float]) -> None:
        needed = (self._budget(kind) if kind else 0.0) + self.margin_seconds
        left = remaining()
        if left < needed:
            raise HandBack(f"{left:.1f} s left; the job may need {needed:.1f} s")

    def _handle(
        self, job_id: str, delivery: Delivery, budget: RetryBudget, remaining: Callable[[], float]
    ) -> None:
        job = budget.call(lambda: self.table.get(job_id))
        if job is None:
            self._poison(delivery, "unknown job")
            return
        if job.status.is_final:
            logger.info("job already finished; acknowledging redelivery", status=job.status)
            return
        if job.status is JobStatus.PROCESSING and not job.interrupted:
            metrics.add_metric(name="JobsCrashed", unit=MetricUnit.Count, value=1)
            self._end(job.job_id, CRASHED, budget)
            return
        kind = self.kinds.find(job.kind)
        self._check_time(kind, remaining)
        waiting = job
        try:
            job = budget.call(lambda: self.table.claim(waiting, self.clock()))
        except StaleTransition:
            logger.info("job moved on before it could be claimed; acknowledging")
            return
        if kind is None:
            self._record_start(job)
            self._finish(
                job, _Outcome(error=f"{job.kind} is not a job kind this worker runs"), budget
            )
            return
        self._run_claimed(job, kind, budget)

    def _run_claimed(self, job: Job, kind: Kind[Any], budget: RetryBudget) -> None:
        self._record_start(job)
        try:
            outcome = self._execute(job, kind)
        except HandBack as back:
            self._note_interrupted(job, str(back))
            raise
        self._finish(job, outcome, budget)

    # --- running ---------------------------------------------------------------------------

    def _execute(self, job: Job, kind: Kind[Any]) -> _Outcome:
        """Run ``kind``'s runner on the job's payload in a thread, within the kind's budget."""
        try:
            payload = kind.parse(job.data)
        except ValidationError as exc:
            return _Outcome(
                error=f"its stored {kind.name} payload is not valid: {exc.errors()[0]['msg']}"
            )
        seconds = self._budget(kind)
        ctx = RunContext(
            job_id=job.job_id,
            time_scale=self.time_scale,
            report_progress=self._reporter(job),
            resources=self.resources,
            clock=self.clock,
            sleeper=self.sleep,
        )
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["result"] = kind.run(payload, ctx)
            except BaseException as exc:
                box["error"] = exc

        thread = threading.Thread(target=run, name=f"job-{job.job_id[:8]}", daemon=True)
        thread.start()
        thread.join(seconds)
        if thread.is_alive():
            return self._stop(thread, ctx, kind, seconds)
        if "error" in box:
            return self._runner_failed(kind, box["error"])
        return _checked_result(kind, box.get("result"))

    def _budget(self, kind: Kind[Any]) -> float:
        return kind.budget(self.time_scale, self.min_run_seconds)

    def _stop(
        self, thread: threading.Thread, ctx: RunContext, kind: Kind[Any], seconds: float
    ) -> _Outcome:
        ctx.cancelled.set()  # its next ctx.sleep or ctx.report raises Cancelled
        _raise_in(thread, Cancelled)  # and so does its next line of Python
        thread.join(0.05)
        if thread.is_alive():
            logger.error("an overrunning runner did not stop; left behind", kind=kind.name)
            metrics.add_metric(name="RunnersLeftBehind", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="JobsOverran", unit=MetricUnit.Count, value=1)
        return _Outcome(error=f"exceeded the {kind.name} limit of {seconds:.2f} s and was stopped")

    def _runner_failed(self, kind: Kind[Any], exc: BaseException) -> _Outcome:
        if isinstance(exc, Exception) and is_transient(exc):
            raise HandBack(f"the {kind.name} runner met {describe(exc)}") from exc
        if isinstance(exc, JobFailed):
            return _Outcome(error=str(exc))
        if isinstance(exc, OrdoError):
            return _Outcome(error=exc.detail)
        logger.error("runner failed", kind=kind.name, exc_info=exc)
        return _Outcome(error=f"the {kind.name} runner failed ({type(exc).__name__}); not retried")

    def _reporter(self, job: Job) -> Callable[[int], None]:
        def report(progress: int) -> None:
            try:
                self.table.set_progress(job, progress, self.clock())
            except StaleTransition:  # moved on meanwhile; finishing will find out too
                logger.warning("progress not recorded", progress=progress)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                logger.warning("progress not recorded", progress=progress, error=describe(exc))

        return report

    # --- outcomes --------------------------------------------------------------------------

    def _record_start(self, job: Job) -> None:
        logger.info("job started", attempt=job.attempt, kind=job.kind)
        if job.attempt == 1 and job.started_at is not None:
            wait = (job.started_at - job.created_at).total_seconds()
            metrics.add_metric(name="QueueWaitSeconds", unit=MetricUnit.Seconds, value=wait)

    def _finish(self, job: Job, outcome: _Outcome, budget: RetryBudget) -> None:
        status = JobStatus.COMPLETED if outcome.error is None else JobStatus.FAILED
        now = self.clock()

        def write() -> Job:
            return self.table.finish(
                job,
                status,
                now,
                result=outcome.result,
                result_is_json=outcome.result_is_json,
                error=outcome.error,
                expires_at=expiry(now, self.retention_days),
            )

        try:
            budget.call(write)
        except StaleTransition:
            logger.warning("job changed while running; outcome discarded")
            return
        except BudgetSpent as spent:
            self._note_interrupted(job, f"its outcome could not be recorded ({spent})")
            raise
        name = "JobsCompleted" if status is JobStatus.COMPLETED else "JobsFailed"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        logger.info("job finished", status=status, error=outcome.error)

    def _note_interrupted(self, job: Job, reason: str) -> None:
        try:
            self.table.note_interrupted(job, f"attempt {job.attempt} interrupted: {reason}")
        except Exception:  # without the note, the next delivery treats it as a crash
            logger.exception("could not note the interruption")

    def _end(self, job_id: str, reason: str, budget: RetryBudget | None = None) -> None:
        """End a job that will not run (again): failed, off its owner's quota."""
        now = self.clock()

        def abandon() -> Job:
            return self.table.abandon(
                job_id, reason, now, expires_at=expiry(now, self.retention_days)
            )

        try:
            (budget or RetryBudget(self.retry_seconds, sleep=self.retry_sleep)).call(abandon)
        except StaleTransition:
            logger.info("job finished meanwhile")
            return
        except BudgetSpent as spent:
            raise HandBack(str(spent)) from spent
        metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
        logger.info("job ended", reason=reason)

    def _poison(self, delivery: Delivery, reason: str) -> None:
        logger.error(
            "poison message acknowledged",
            reason=reason,
            message_id=delivery.message_id,
            body=delivery.body[:1000],
        )
        metrics.add_metric(name="PoisonMessages", unit=MetricUnit.Count, value=1)


def _checked_result(kind: Kind[Any], result: object) -> _Outcome:
    """A runner's result as the job's outcome, or the job's error if it could never be stored:
    the lane's own write must not be the thing that fails."""
    if not isinstance(result, str):
        return _Outcome(error=f"the {kind.name} runner returned {type(result).__name__}, not text")
    try:
        size = len(result.encode())
    except UnicodeEncodeError:  # a lone surrogate: DynamoDB stores UTF-8 only
        return _Outcome(error=f"the {kind.name} runner returned text that is not valid Unicode")
    if size > MAX_RESULT_BYTES:
        return _Outcome(
            error=f"the {kind.name} runner returned {size:,} bytes; "
            f"a result may take at most {MAX_RESULT_BYTES:,}"
        )
    return _Outcome(result=result, result_is_json=kind.result_is_json)


class _InBackground:
    """A call run in a thread of its own while the caller goes on."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self._box: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self._box["value"] = call()
        except BaseException as exc:
            self._box["error"] = exc

    def wait(self) -> None:
        self._thread.join()

    def result(self) -> Any:
        """The call's value, once it returned; what it raised, raised here."""
        self._thread.join()
        if "error" in self._box:
            raise self._box["error"]
        return self._box["value"]


def _raise_in(thread: threading.Thread, exception: type[BaseException]) -> None:
    """Raise ``exception`` in ``thread`` at its next Python instruction (CPython's
    ``PyThreadState_SetAsyncExc``); a thread blocked in C sees it when the call returns."""
    import ctypes

    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(exception)
        )
