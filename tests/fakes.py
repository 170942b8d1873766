"""In-memory fakes of ordo's ports. ``tests/integration/test_job_table_contract.py`` runs the
same contract against these and the DynamoDB adapter, so they behave like the real thing."""

from __future__ import annotations

import itertools
from datetime import datetime

from ordo.errors import StaleTransition
from ordo.jobs import Job, JobStatus, PendingQuotaExceeded


class InMemoryJobTable:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.pending: dict[str, int] = {}

    def create(self, job: Job, max_pending: int) -> None:
        if job.job_id in self.jobs:
            raise StaleTransition(job.job_id)
        if self.pending.get(job.owner, 0) >= max_pending:
            raise PendingQuotaExceeded(max_pending)
        self.pending[job.owner] = self.pending.get(job.owner, 0) + 1
        self.jobs[job.job_id] = job.model_copy(update={"queue_seq": None})

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

    def claim(self, job: Job, now: datetime) -> Job:
        claimable = {job.status} & {JobStatus.PENDING, JobStatus.PROCESSING}
        current = self._expect(job.job_id, claimable, job.attempt)
        self._leave_pending(current)
        return self._put(
            current,
            status=JobStatus.PROCESSING,
            attempt=current.attempt + 1,
            started_at=now,
            updated_at=now,
            error=None,
        )

    def finish(
        self, job: Job, status: JobStatus, now: datetime, result: str | None, error: str | None
    ) -> Job:
        current = self._expect(job.job_id, {JobStatus.PROCESSING}, job.attempt)
        outcome: dict[str, object] = {"result": result} if result is not None else {"error": error}
        if status is JobStatus.COMPLETED:
            outcome["progress"] = 100
        return self._put(current, status=status, finished_at=now, updated_at=now, **outcome)

    def set_progress(self, job: Job, progress: int, now: datetime) -> Job:
        current = self._expect(job.job_id, {JobStatus.PROCESSING}, job.attempt)
        if current.progress >= progress:
            raise StaleTransition(job.job_id)
        return self._put(current, progress=progress, updated_at=now)

    def note_failure(self, job: Job, error: str) -> Job:
        current = self._expect(job.job_id, {JobStatus.PROCESSING}, job.attempt)
        return self._put(current, error=error)

    def abandon(self, job_id: str, error: str, now: datetime) -> Job:
        current = self._expect(job_id, {JobStatus.PENDING, JobStatus.PROCESSING}, None)
        self._leave_pending(current)
        return self._put(
            current, status=JobStatus.FAILED, finished_at=now, updated_at=now, error=error
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


class InMemoryJobQueue:
    """A FIFO lane: sequence numbers only grow."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[str] = []
        self.fail = fail
        self._seq = itertools.count(10**19)

    def send(self, job_id: str) -> int:
        if self.fail:
            raise ConnectionError("queue unreachable")
        self.sent.append(job_id)
        return next(self._seq)


class RecordingDeadLetters:
    def __init__(self) -> None:
        self.forwarded: list[tuple[str, str, str]] = []

    def forward(self, message_id: str, body: str, reason: str) -> None:
        self.forwarded.append((message_id, body, reason))
