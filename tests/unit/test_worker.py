"""The worker on fakes: every failure stays with its own job, and the lane moves on."""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from ordo.jobs import Job, JobStatus, new_job
from ordo.kinds import JobFailed, Kind, Registry, RunContext
from ordo.observability import metrics
from ordo.queue import JobMessage
from ordo.registry import KINDS
from ordo.tasks import ReversePayload, SwapPairsPayload
from ordo.worker import CRASHED, Delivery, HandBack, Worker
from tests.fakes import InMemoryJobTable, RecordingReleaser

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
OWNER = "0" * 32
RETENTION_DAYS = 3


class ProbePayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["probe"] = "probe"
    action: str = "ok"


def _recurse(depth: int) -> int:
    return _recurse(depth + 1) + 1


def _throttled(operation: str = "UpdateItem") -> ClientError:
    return ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation
    )


ACTIONS: dict[str, Callable[[RunContext], Any]] = {
    "ok": lambda ctx: "done",
    "zero": lambda ctx: 1 // 0,
    "recursion": lambda ctx: _recurse(0),
    "memory": lambda ctx: (_ for _ in ()).throw(MemoryError()),
    "key": lambda ctx: dict[str, int]()["missing"],
    "exit": lambda ctx: (_ for _ in ()).throw(SystemExit(3)),
    "interrupt": lambda ctx: (_ for _ in ()).throw(KeyboardInterrupt()),
    "not-text": lambda ctx: 42,
    "huge": lambda ctx: "é" * 200_000,
    "surrogate": lambda ctx: "\ud800",
    "refused": lambda ctx: (_ for _ in ()).throw(JobFailed("amount is not a number")),
    "throttled": lambda ctx: (_ for _ in ()).throw(_throttled()),
}
LOOPING: list[threading.Thread] = []


def _run_probe(payload: ProbePayload, ctx: RunContext) -> Any:
    if payload.action == "loop":  # pure Python, never yields: only an async exception stops it
        LOOPING.append(threading.current_thread())
        while True:
            pass
    if payload.action == "wait":  # a cooperative runner: waits on the simulated clock
        ctx.sleep(3600)
        return "woke"
    return ACTIONS[payload.action](ctx)


PROBE: Kind[ProbePayload] = Kind(
    name="probe", payload=ProbePayload, run=_run_probe, max_seconds=0.2, simulated=False
)
TEST_KINDS = Registry(*KINDS, PROBE)


def make_worker(**kwargs: Any) -> tuple[Worker, InMemoryJobTable, RecordingReleaser]:
    table, releaser = kwargs.pop("table", InMemoryJobTable()), RecordingReleaser()
    kinds = kwargs.pop("kinds", TEST_KINDS)
    options: dict[str, Any] = {
        "time_scale": 0,
        "clock": lambda: NOW,
        "retention_days": RETENTION_DAYS,
        "retry_sleep": lambda _: None,
        "min_run_seconds": 0.05,
    } | kwargs
    worker = Worker(table=table, kinds=kinds, releaser=releaser, **options)
    return worker, table, releaser


# The message each submitted job was sent with, as ordo.queue.SqsJobQueue sends it.
SENT: dict[str, JobMessage] = {}


def submit(table: InMemoryJobTable, payload: BaseModel | None = None) -> str:
    job = new_job(payload or SwapPairsPayload(text="abc"), owner=OWNER, now=NOW)
    table.create(job, max_pending=1000)
    SENT[job.job_id] = JobMessage.of(job)
    return job.job_id


def probe(table: InMemoryJobTable, action: str) -> str:
    return submit(table, ProbePayload(action=action))


def deliver(job_id: str, receive_count: int = 1) -> Delivery:
    """The message the job was sent with (a bare pointer for a job never sent)."""
    message = SENT.get(job_id, JobMessage(job_id=job_id))
    return Delivery(f"m-{job_id}-{receive_count}", message.model_dump_json(), f"h-{job_id}")


def deliver_pointer(job_id: str) -> Delivery:
    """A message naming only the job, as versions before the owner and kind sent."""
    return Delivery(f"m-{job_id}", json.dumps({"job_id": job_id}), f"h-{job_id}")


def assert_quota_matches_pending(table: InMemoryJobTable) -> None:
    pending = sum(1 for job in table.jobs.values() if job.status is JobStatus.PENDING)
    assert table.pending_count(OWNER) == pending


# --- the happy path ---------------------------------------------------------------------------


def test_runs_the_task_and_stores_the_result_with_its_expiry_from_the_finish() -> None:
    worker, table, _ = make_worker()
    job_id = submit(table)
    assert table.jobs[job_id].expires_at is None  # a waiting job never expires
    worker.handle(deliver(job_id))
    job = table.jobs[job_id]
    assert (job.status, job.result, job.attempt) == (JobStatus.COMPLETED, "bac", 1)
    assert job.expires_at == int((NOW + timedelta(days=RETENTION_DAYS)).timestamp())
    assert_quota_matches_pending(table)


def test_only_a_kind_that_declares_its_result_json_has_it_stored_as_json() -> None:
    # Given a text task whose result happens to be compact JSON, a document, and a probe
    worker, table, _ = make_worker()
    text = submit(table, ReversePayload(text='}2:"a",1:"b"{'))
    document, plain = submit(table, _invoice()), probe(table, "ok")
    # When the worker runs them
    assert worker.run_batch([deliver(text), deliver(document), deliver(plain)]) == []
    # Then it tells the table that only the document's result is JSON
    assert table.jobs[text].result == '{"b":1,"a":2}'
    assert table.json_results == {document}


def test_sleeps_the_scaled_delay() -> None:
    slept: list[float] = []
    worker, table, _ = make_worker(sleep=slept.append, time_scale=0.5)
    worker.handle(deliver(submit(table)))
    assert slept == [2.5]


def test_redelivery_of_a_completed_job_does_not_run_it_again() -> None:
    worker, table, _ = make_worker()
    job_id = submit(table)
    worker.handle(deliver(job_id))
    finished = table.jobs[job_id]
    worker.handle(deliver(job_id, receive_count=2))
    assert table.jobs[job_id] == finished


# --- a runner's own failure, of any type, is its job's alone ------------------------------------


@pytest.mark.parametrize(
    ("action", "error"),
    [
        ("zero", "the probe runner failed (ZeroDivisionError); not retried"),
        ("recursion", "the probe runner failed (RecursionError); not retried"),
        ("memory", "the probe runner failed (MemoryError); not retried"),
        ("key", "the probe runner failed (KeyError); not retried"),
        ("exit", "the probe runner failed (SystemExit); not retried"),
        ("interrupt", "the probe runner failed (KeyboardInterrupt); not retried"),
        ("not-text", "the probe runner returned int, not text"),
        ("huge", "the probe runner returned 400,000 bytes; a result may take at most 262,144"),
        ("surrogate", "the probe runner returned text that is not valid Unicode"),
        ("refused", "amount is not a number"),
    ],
)
def test_a_runner_error_of_any_type_fails_its_job_at_once_and_the_next_job_runs(
    action: str, error: str
) -> None:
    worker, table, releaser = make_worker()
    poison, after = probe(table, action), submit(table)
    given_back = worker.run_batch([deliver(poison), deliver(after)])
    assert given_back == []
    assert releaser.released == []
    job = table.jobs[poison]
    assert (job.status, job.error, job.attempt) == (JobStatus.FAILED, error, 1)
    assert job.expires_at is not None
    assert table.jobs[after].status is JobStatus.COMPLETED
    assert_quota_matches_pending(table)


def test_a_runaway_runner_is_stopped_at_its_budget_and_the_lane_moves_on() -> None:
    worker, table, _ = make_worker()
    runaway, after = probe(table, "loop"), submit(table)
    started = time.monotonic()
    assert worker.run_batch([deliver(runaway), deliver(after)]) == []
    assert time.monotonic() - started < 5
    job = table.jobs[runaway]
    assert job.status is JobStatus.FAILED
    assert job.error == "exceeded the probe limit of 0.20 s and was stopped"
    assert table.jobs[after].status is JobStatus.COMPLETED
    LOOPING[-1].join(2)
    assert not LOOPING[-1].is_alive()  # the async exception ended the loop


def test_a_waiting_runner_is_woken_and_stopped_when_it_overruns() -> None:
    worker, table, _ = make_worker(time_scale=1.0)
    job_id = probe(table, "wait")
    worker.handle(deliver(job_id))
    assert table.jobs[job_id].error == "exceeded the probe limit of 0.20 s and was stopped"
    assert not [t for t in threading.enumerate() if t.name == f"job-{job_id[:8]}"]


def test_the_budget_is_the_kinds_maximum_at_the_time_scale_with_a_floor() -> None:
    reverse = KINDS.get("reverse")
    assert reverse.budget(1.0) == 5.0
    assert reverse.budget(0.01) == 1.0  # the floor: I/O does not scale
    assert reverse.budget(0.01, floor=0.01) == pytest.approx(0.05)
    assert KINDS.get("fetch").budget(0.01) == 18.0  # real network time, never scaled


# --- crashes, interruptions and the invocation's time ---------------------------------------------


def test_a_job_left_processing_by_a_crash_ends_failed_at_once_and_the_next_runs() -> None:
    worker, table, _ = make_worker()
    crashed, after = submit(table), submit(table)
    table.claim(table.jobs[crashed], NOW)  # the crashed invocation got this far
    assert worker.run_batch([deliver(crashed, receive_count=2), deliver(after)]) == []
    job = table.jobs[crashed]
    assert (job.status, job.error, job.attempt) == (JobStatus.FAILED, CRASHED, 1)
    assert table.jobs[after].status is JobStatus.COMPLETED
    assert_quota_matches_pending(table)


def test_a_job_interrupted_by_infrastructure_runs_again_and_finishes_once() -> None:
    worker, table, _ = make_worker()
    job_id = submit(table)
    claimed = table.claim(table.jobs[job_id], NOW)
    table.note_interrupted(claimed, "attempt 1 interrupted: ThrottlingException")
    worker.handle(deliver(job_id, receive_count=2))
    job = table.jobs[job_id]
    assert (job.status, job.attempt, job.result, job.error) == (JobStatus.COMPLETED, 2, "bac", None)


def test_a_job_that_does_not_fit_the_time_left_is_handed_back_unstarted_with_the_rest() -> None:
    worker, table, releaser = make_worker()
    first, second, third = submit(table), submit(table), submit(table)
    seconds_left = iter([1000.0, 1.0, 1000.0])
    given_back = worker.run_batch(
        [deliver(first), deliver(second), deliver(third)], remaining=lambda: next(seconds_left)
    )
    assert given_back == [deliver(second).message_id, deliver(third).message_id]
    assert releaser.released == [[f"h-{second}", f"h-{third}"]]
    statuses = [table.jobs[i].status for i in (first, second, third)]
    assert statuses == [JobStatus.COMPLETED, JobStatus.PENDING, JobStatus.PENDING]
    assert_quota_matches_pending(table)


# --- transient AWS failures: retried in place, within a budget -----------------------------------


class FlakyTable(InMemoryJobTable):
    """The fake table, with throttling on the named methods for the next ``n`` calls."""

    def __init__(self) -> None:
        super().__init__()
        self.failures: dict[str, int] = {}
        self.calls: dict[str, int] = {}

    def throttle(self, method: str, times: int) -> None:
        self.failures[method] = times

    def __getattribute__(self, name: str) -> Any:
        attribute = super().__getattribute__(name)
        if name in (
            "get",
            "claim",
            "claim_new",
            "finish",
            "abandon",
            "set_progress",
            "note_interrupted",
        ):

            def flaky(*args: Any, **kwargs: Any) -> Any:
                self.calls[name] = self.calls.get(name, 0) + 1
                if self.failures.get(name, 0) > 0:
                    self.failures[name] -= 1
                    raise _throttled(name)
                return attribute(*args, **kwargs)

            return flaky
        return attribute


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ("claim_new", deliver),
        ("get", deliver),  # read while the job is claimed
        ("finish", deliver),
        ("get", deliver_pointer),
        ("claim", deliver_pointer),
    ],
)
def test_throttling_on_the_lanes_own_calls_is_retried_in_place(
    method: str, message: Callable[[str], Delivery]
) -> None:
    pauses: list[float] = []
    table = FlakyTable()
    worker, _, releaser = make_worker(table=table, retry_sleep=pauses.append)
    job_id = submit(table)
    table.throttle(method, 3)
    metrics.clear_metrics()
    assert worker.run_batch([message(job_id)]) == []
    job = table.jobs[job_id]
    assert (job.status, job.attempt, job.result) == (JobStatus.COMPLETED, 1, "bac")
    assert table.calls[method] == 4
    assert len(pauses) == 3
    assert all(0 <= pause <= 2.0 for pause in pauses)
    assert releaser.released == []


@pytest.mark.parametrize(
    ("method", "noted"),
    [
        ("finish", "its outcome could not be recorded (ThrottlingException)"),
        ("get", "it could not be read (ThrottlingException"),  # read while it was claimed
    ],
)
def test_throttling_past_the_budget_hands_the_job_back_noted_and_it_runs_on_redelivery(
    method: str, noted: str
) -> None:
    table = FlakyTable()
    worker, _, releaser = make_worker(table=table, retry_seconds=0.0)
    job_id, after = submit(table), submit(table)
    table.throttle(method, 1)
    given_back = worker.run_batch([deliver(job_id), deliver(after)])
    assert given_back == [deliver(job_id).message_id, deliver(after).message_id]
    assert releaser.released == [[f"h-{job_id}", f"h-{after}"]]
    job = table.jobs[job_id]
    assert (job.status, job.attempt, job.interrupted) == (JobStatus.PROCESSING, 1, True)
    assert str(job.error).startswith(f"attempt 1 interrupted: {noted}")
    assert table.jobs[after].status is JobStatus.PENDING
    # When throttling ends and the messages come back
    assert worker.run_batch([deliver(job_id, 2), deliver(after, 2)]) == []
    assert (table.jobs[job_id].status, table.jobs[job_id].attempt) == (JobStatus.COMPLETED, 2)
    assert table.jobs[after].status is JobStatus.COMPLETED
    assert_quota_matches_pending(table)


def test_a_runner_meeting_throttling_is_handed_back_and_runs_again() -> None:
    worker, table, _ = make_worker()
    job_id = probe(table, "throttled")
    with pytest.raises(HandBack):
        worker.handle(deliver(job_id))
    job = table.jobs[job_id]
    assert job.interrupted
    assert job.error == "attempt 1 interrupted: the probe runner met ThrottlingException"


def test_a_progress_report_that_is_throttled_is_skipped_not_fatal() -> None:
    table = FlakyTable()
    # A budget no pause can use up (50 ms is less than one full garbage collection of the
    # whole suite's heap): this test is about the progress report, not the budget.
    worker, _, _ = make_worker(table=table, min_run_seconds=5)
    job_id = submit(table, _invoice())
    table.throttle("set_progress", 2)
    worker.handle(deliver(job_id))
    job = table.jobs[job_id]
    assert (job.status, job.progress) == (JobStatus.COMPLETED, 100)


def _invoice() -> BaseModel:
    from ordo.documents import InvoicePayload

    return InvoicePayload(content={"amount": 1})


# --- messages and jobs that are not what they seem ----------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"job": 1}),
        json.dumps({"job_id": "../x"}),
        json.dumps({"job_id": "a" * 32}),  # no such job
    ],
)
def test_poison_messages_are_acknowledged_and_counted(body: str) -> None:
    worker, _, releaser = make_worker()
    metrics.clear_metrics()
    assert worker.run_batch([Delivery("m-1", body, "h-1")]) == []
    assert releaser.released == []


def test_a_job_of_a_kind_this_worker_does_not_know_ends_failed() -> None:
    worker, table, _ = make_worker()
    job = new_job(ReversePayload(text="abc"), owner=OWNER, now=NOW).model_copy(
        update={"kind": "retired-kind"}
    )
    table.create(job, 10)
    worker.handle(deliver(job.job_id))
    assert table.jobs[job.job_id].error == "retired-kind is not a job kind this worker runs"


def test_a_stored_payload_its_kind_no_longer_accepts_ends_failed() -> None:
    worker, table, _ = make_worker()
    job = new_job(ReversePayload(text="abc"), owner=OWNER, now=NOW)
    table.create(job.model_copy(update={"data": '{"kind": "reverse"}'}), 10)
    worker.handle(deliver(job.job_id))
    stored = table.jobs[job.job_id]
    assert stored.status is JobStatus.FAILED
    assert (stored.error or "").startswith("its stored reverse payload is not valid")


def test_a_permanent_error_in_the_lanes_own_path_ends_the_job_and_the_lane_moves_on() -> None:
    class BrokenFinish(InMemoryJobTable):
        def finish(self, job: Job, *args: Any, **kwargs: Any) -> Job:
            if job.kind == "reverse":
                raise ClientError(
                    {"Error": {"Code": "ValidationException", "Message": "Item size too large"}},
                    "UpdateItem",
                )
            return super().finish(job, *args, **kwargs)

    worker, table, _ = make_worker(table=BrokenFinish())
    broken, after = submit(table, ReversePayload(text="abc")), submit(table)
    assert worker.run_batch([deliver(broken), deliver(after)]) == []
    job = table.jobs[broken]
    assert job.status is JobStatus.FAILED
    assert job.error == "the worker could not handle this job (ValidationException)"
    assert table.jobs[after].status is JobStatus.COMPLETED


# --- a job's first delivery: claimed while it is read ------------------------------------------


class OrderedTable(InMemoryJobTable):
    """Records the order of reads and claims; a read waits until the job is claimed."""

    def __init__(self, read_waits_for_claim: bool) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.claimed = threading.Event()
        self.read_waits_for_claim = read_waits_for_claim

    def get(self, job_id: str) -> Job | None:
        if self.read_waits_for_claim:
            assert self.claimed.wait(timeout=5), "the job was read before it was claimed"
        self.calls.append("get")
        return super().get(job_id)

    def claim_new(self, job_id: str, owner: str, kind: str, now: datetime) -> None:
        self.calls.append("claim_new")
        super().claim_new(job_id, owner, kind, now)
        self.claimed.set()

    def claim(self, job: Job, now: datetime) -> Job:
        self.calls.append("claim")
        return super().claim(job, now)


@pytest.mark.parametrize(
    ("message", "read_waits_for_claim", "calls"),
    [(deliver, True, ["claim_new", "get"]), (deliver_pointer, False, ["get", "claim"])],
    ids=["as-sent-claimed-unread", "bare-pointer-read-first"],
)
def test_a_first_delivery_is_claimed_and_read_in_the_order_its_message_allows(
    message: Callable[[str], Delivery], read_waits_for_claim: bool, calls: list[str]
) -> None:
    table = OrderedTable(read_waits_for_claim)
    worker, _, _ = make_worker(table=table)
    job_id = submit(table)
    worker.handle(message(job_id))
    assert table.calls == calls
    job = table.jobs[job_id]
    assert (job.status, job.attempt, job.started_at, job.result) == (
        JobStatus.COMPLETED,
        1,
        NOW,
        "bac",
    )
    assert_quota_matches_pending(table)


@pytest.mark.parametrize(
    "named",
    [{"owner": "f" * 32}, {"kind": "reverse"}, {"kind": "no-such-kind"}],
    ids=["owner", "kind", "unknown-kind"],
)
def test_a_message_naming_another_owner_or_kind_runs_the_stored_job(named: dict[str, str]) -> None:
    worker, table, _ = make_worker()
    job_id = submit(table)  # swap_pairs, of OWNER
    message = SENT[job_id].model_copy(update=named)
    worker.handle(Delivery("m-1", message.model_dump_json(), "h-1"))
    job = table.jobs[job_id]
    assert (job.status, job.kind, job.owner, job.result) == (
        JobStatus.COMPLETED,
        "swap_pairs",
        OWNER,
        "bac",
    )
    assert (table.pending_count(OWNER), table.pending_count("f" * 32)) == (0, 0)


class BrokenRead(InMemoryJobTable):
    """The read of one job raises an error no code in ordo names."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error, self.broken = error, ""

    def get(self, job_id: str) -> Job | None:
        if job_id == self.broken:
            raise self.error
        return super().get(job_id)


@pytest.mark.parametrize("error", [ArithmeticError("x"), RecursionError(), KeyError("new")])
def test_a_claimed_job_whose_read_fails_unforeseen_ends_failed_and_the_next_job_runs(
    error: BaseException,
) -> None:
    table = BrokenRead(error)
    worker, _, _ = make_worker(table=table)
    broken, after = submit(table), submit(table)
    table.broken = broken
    assert worker.run_batch([deliver(broken), deliver(after)]) == []
    assert table.jobs[broken].status is JobStatus.FAILED
    assert table.jobs[after].status is JobStatus.COMPLETED
    assert not [j for j in table.jobs.values() if not j.status.is_final]
    assert_quota_matches_pending(table)


# --- a failure at any line of a real runner -----------------------------------------------------


def _failing_at_line(
    run: Callable[..., Any], line: int | None
) -> tuple[Callable[..., Any], list[int]]:
    """``run``, traced: each line it executes in its own module is counted, and the ``line``-th
    raises an exception of a class made here, which no code of ordo can name. ``None`` counts
    only."""
    module_file = run.__code__.co_filename
    executed: list[int] = []
    unforeseen = type(f"Unforeseen{line}", (Exception,), {})

    def local(frame: Any, event: str, _: Any) -> Any:
        if event == "line":
            executed.append(frame.f_lineno)
            if len(executed) == line:
                raise unforeseen(f"at {module_file}:{frame.f_lineno}")
        return local

    def started(frame: Any, event: str, _: Any) -> Any:
        return local if frame.f_code.co_filename == module_file else None

    def traced(*args: Any) -> Any:
        previous = sys.gettrace()
        sys.settrace(started)  # this thread only: the one the worker runs the runner in
        try:
            return run(*args)
        finally:
            sys.settrace(previous)

    return traced, executed


def _real_kinds() -> list[BaseModel]:
    from ordo.documents import ContractPayload
    from ordo.tasks import RepeatByPositionPayload

    return [
        ReversePayload(text="abc"),
        SwapPairsPayload(text="abcd"),
        RepeatByPositionPayload(text="ab"),
        _invoice(),
        ContractPayload(content={"parties": ["a", "b"]}),
    ]


def _kind_of(payload: BaseModel) -> str:
    return str(payload.model_dump()["kind"])


@pytest.mark.parametrize("payload", _real_kinds(), ids=_kind_of)
def test_an_unforeseen_failure_at_any_line_of_a_runner_ends_only_its_job(
    payload: BaseModel,
) -> None:
    """Whatever line of a real runner fails, with whatever exception: that job ends failed, the
    next job in the batch completes at once, and nothing is left pending or processing."""
    kind = TEST_KINDS.get(_kind_of(payload))
    others = [other for other in TEST_KINDS if other.name != kind.name]
    counting, lines = _failing_at_line(kind.run, None)
    worker, table, _ = make_worker(kinds=Registry(*others, dataclasses.replace(kind, run=counting)))
    worker.handle(deliver(submit(table, payload)))
    (clean,) = table.jobs.values()
    assert clean.status is JobStatus.COMPLETED
    assert lines, "the trace saw none of the runner's lines"
    for line in range(1, len(lines) + 1):
        failing, _ = _failing_at_line(kind.run, line)
        worker, table, releaser = make_worker(
            kinds=Registry(*others, dataclasses.replace(kind, run=failing))
        )
        broken, after = submit(table, payload), probe(table, "ok")
        assert worker.run_batch([deliver(broken), deliver(after)]) == []
        assert releaser.released == []
        job = table.jobs[broken]
        assert job.status is JobStatus.FAILED, (line, job)
        assert f"Unforeseen{line}" in (job.error or ""), (line, job.error)
        assert table.jobs[after].status is JobStatus.COMPLETED, line
        assert not [j for j in table.jobs.values() if not j.status.is_final], line
        assert_quota_matches_pending(table)
