"""In-memory fakes of ordo's ports. ``tests/integration/test_job_table_contract.py`` runs the
same contract against these and the DynamoDB adapter, so they behave like the real thing."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime

from ordo.errors import InvalidInput, StaleTransition
from ordo.jobs import (
    Job,
    JobPage,
    JobStatus,
    JobSummary,
    NotRetryable,
    OwnerJobPage,
    PendingQuotaExceeded,
    SingletonMoved,
)


class InMemoryJobTable:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.pending: dict[str, int] = {}
        self.singletons: dict[str, str] = {}
        # The jobs whose result was declared JSON (the adapter may store it as a map); every
        # other result is stored as text.
        self.json_results: set[str] = set()

    def create(self, job: Job, max_pending: int) -> None:
        if job.job_id in self.jobs:
            raise StaleTransition(job.job_id)
        if self.pending.get(job.owner, 0) >= max_pending:
            raise PendingQuotaExceeded(max_pending)
        self.pending[job.owner] = self.pending.get(job.owner, 0) + 1
        self.jobs[job.job_id] = job.model_copy(update={"queue_seq": None})

    def create_singleton(self, job: Job, max_pending: int, replacing: str | None) -> None:
        if self.singletons.get(job.kind) != replacing:
            raise SingletonMoved(f"another {job.kind} job is active")
        self.create(job, max_pending)
        self.singletons[job.kind] = job.job_id

    def singleton(self, kind: str) -> str | None:
        return self.singletons.get(kind)

    def record(self, job: Job, *, result_is_json: bool = False) -> None:
        if not job.status.is_final:
            raise ValueError(f"only an ended job is recorded, not a {job.status} one")
        if job.job_id in self.jobs:
            raise StaleTransition(job.job_id)
        self.jobs[job.job_id] = job.model_copy(update={"queue_seq": None})
        if result_is_json and job.result is not None:
            self.json_results.add(job.job_id)

    def pending_count(self, owner: str) -> int:
        return self.pending.get(owner, 0)

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def set_queue_seq(self, job_id: str, seq: int) -> None:
        job = self.jobs.get(job_id)
        if job is not None and job.status is JobStatus.PENDING:
            self.jobs[job_id] = job.model_copy(update={"queue_seq": seq})

    def count_pending_before(self, seq: int) -> int:
        return sum(
            1
            for job in self.jobs.values()
            if job.status is JobStatus.PENDING and job.queue_seq is not None and job.queue_seq < seq
        )

    def retry(self, failed: Job, new: Job) -> None:
        current = self.jobs.get(failed.job_id)
        if current is None or current.status is not JobStatus.FAILED or current.retried_as:
            raise NotRetryable(f"Job {failed.job_id} is not failed, or was already retried")
        if new.job_id in self.jobs:
            raise StaleTransition(new.job_id)
        self.pending[new.owner] = self.pending.get(new.owner, 0) + 1
        self.jobs[new.job_id] = new.model_copy(update={"queue_seq": None})
        self._put(current, retried_as=new.job_id)

    def claim(self, job: Job, now: datetime) -> Job:
        claimable = {job.status} & {JobStatus.PENDING, JobStatus.PROCESSING}
        if job.status is JobStatus.PROCESSING and not job.interrupted:
            raise StaleTransition(job.job_id)
        current = self._expect(job.job_id, claimable, job.attempt)
        if current.status is JobStatus.PROCESSING and not current.interrupted:
            raise StaleTransition(job.job_id)
        self._leave_pending(current)
        return self._put(
            current,
            status=JobStatus.PROCESSING,
            attempt=current.attempt + 1,
            started_at=now,
            updated_at=now,
            error=None,
        )

    def claim_new(self, job_id: str, owner: str, kind: str, now: datetime) -> None:
        current = self._expect(job_id, {JobStatus.PENDING}, 0)
        if (current.owner, current.kind) != (owner, kind):
            raise StaleTransition(job_id)
        self._leave_pending(current)
        self.jobs[job_id] = current.claimed(now)

    def finish(
        self,
        job: Job,
        status: JobStatus,
        now: datetime,
        *,
        result: str | None = None,
        result_is_json: bool = False,
        error: str | None = None,
        expires_at: int | None = None,
    ) -> Job:
        current = self._expect(job.job_id, {JobStatus.PROCESSING}, job.attempt)
        outcome: dict[str, object] = {"result": result} if result is not None else {"error": error}
        if result_is_json and result is not None:
            self.json_results.add(job.job_id)
        if status is JobStatus.COMPLETED:
            outcome["progress"] = 100
        if expires_at is not None:
            outcome["expires_at"] = expires_at
        return self._put(current, status=status, finished_at=now, updated_at=now, **outcome)

    def set_progress(self, job: Job, progress: int, now: datetime) -> Job:
        current = self._expect(job.job_id, {JobStatus.PROCESSING}, job.attempt)
        if current.progress >= progress:
            raise StaleTransition(job.job_id)
        return self._put(current, progress=progress, updated_at=now)

    def note_interrupted(self, job: Job, reason: str) -> Job:
        current = self._expect(job.job_id, {JobStatus.PROCESSING}, job.attempt)
        return self._put(current, error=reason)

    def abandon(
        self,
        job_id: str,
        error: str,
        now: datetime,
        *,
        expires_at: int | None = None,
        dead_letter_body: str | None = None,
    ) -> Job:
        current = self._expect(job_id, {JobStatus.PENDING, JobStatus.PROCESSING}, None)
        self._leave_pending(current)
        extra: dict[str, object] = {"expires_at": expires_at} if expires_at is not None else {}
        if dead_letter_body is not None:
            extra["dead_letter_body"] = dead_letter_body
        return self._put(
            current,
            status=JobStatus.FAILED,
            finished_at=now,
            updated_at=now,
            error=error,
            queue_seq=None,
            **extra,
        )

    def by_status(
        self,
        status: JobStatus,
        *,
        limit: int,
        cursor: str | None = None,
        newest_first: bool = True,
        before: datetime | None = None,
    ) -> JobPage:
        entries = sorted(
            (
                (entered, job)
                for job in self.jobs.values()
                if job.status is status
                if (entered := _entered(job)) and (before is None or entered < before)
            ),
            key=lambda pair: (pair[0], pair[1].job_id),
            reverse=newest_first,
        )
        ids = [job.job_id for _, job in entries]
        start = 0
        if cursor is not None:
            if cursor not in ids:
                raise InvalidInput("cursor is not valid")
            start = ids.index(cursor) + 1
        chosen = [job for _, job in entries[start : start + limit]]
        more = start + limit < len(entries)
        return JobPage(
            items=[JobSummary.model_validate(job.model_dump()) for job in chosen],
            next_cursor=chosen[-1].job_id if chosen and more else None,
        )

    def count_by_status(self, status: JobStatus, since: datetime | None = None) -> int:
        return sum(
            1
            for job in self.jobs.values()
            if job.status is status and (since is None or _entered(job) >= since)
        )

    def by_owner(self, owner: str, *, limit: int, cursor: str | None = None) -> OwnerJobPage:
        mine = sorted(
            (job for job in self.jobs.values() if job.owner == owner),
            key=lambda job: (job.created_at, job.job_id),
            reverse=True,
        )
        ids = [job.job_id for job in mine]
        start = 0
        if cursor:  # as the adapter: an empty cursor is the first page
            if cursor not in ids:  # garbage, or another owner's job: as the adapter refuses it
                raise InvalidInput("cursor is not valid")
            start = ids.index(cursor) + 1
        chosen = mine[start : start + limit]
        more = start + limit < len(mine)
        return OwnerJobPage(
            items=chosen, next_cursor=chosen[-1].job_id if chosen and more else None
        )

    def _leave_pending(self, job: Job) -> None:
        if job.status is JobStatus.PENDING:
            self.pending[job.owner] -= 1

    def _expect(self, job_id: str, statuses: set[JobStatus], attempt: int | None) -> Job:
        current = self.jobs.get(job_id)
        if current is None or current.status not in statuses:
            raise StaleTransition(job_id)
        if attempt is not None and current.attempt != attempt:
            raise StaleTransition(job_id)
        return current

    def _put(self, job: Job, **changes: object) -> Job:
        updated = job.model_copy(update=changes)
        self.jobs[job.job_id] = updated
        return updated


def _entered(job: Job) -> datetime:
    """When the job entered its status: the status index's sort key."""
    if job.status is JobStatus.PENDING:
        return job.created_at
    if job.status is JobStatus.PROCESSING:
        return job.started_at or job.created_at
    return job.finished_at or job.created_at


class InMemoryJobQueue:
    """A FIFO lane: sequence numbers only grow."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[str] = []
        self.fail = fail
        self._seq = itertools.count(10**19)

    def send(self, job: Job) -> int:
        if self.fail:
            raise ConnectionError("queue unreachable")
        self.sent.append(job.job_id)
        return next(self._seq)


class RecordingReleaser:
    """Records the receipt handles the worker gave back to the queue, batch by batch."""

    def __init__(self) -> None:
        self.released: list[list[str]] = []

    def release(self, receipt_handles: Sequence[str]) -> None:
        self.released.append(list(receipt_handles))
