"""Aggregation without AWS or a network: validation, the lock, the cache window, the worker."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.session import get_session
from botocore.stub import Stubber

from ordo.aggregation import (
    Aggregator,
    FetchJobView,
    FetchLocked,
    FetchStatus,
    Post,
    ScheduledFetch,
    ScheduleOutcome,
    SourceFailed,
    TaskFetch,
    fetch_now,
    fetch_on_schedule,
    fetch_sync,
    get_fetch_job,
    submit_fetch,
    validate,
)
from ordo.errors import Unavailable
from ordo.jobs import JobStatus
from ordo.kinds import Resources
from ordo.registry import KINDS
from ordo.storage.aggregation import DynamoPostStore, post_key
from ordo.worker import Delivery, Worker
from tests.fakes_aggregation import (
    InMemoryFetchLock,
    InMemoryFetchLog,
    InMemoryPostStore,
    ListSource,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def post(n: int, user: int = 1, title: str = "t") -> dict[str, Any]:
    return {"userId": user, "id": n, "title": f"{title}{n}", "body": "b"}


def make(source: ListSource, cache_seconds: float = 0) -> Aggregator:
    return Aggregator(
        source,
        InMemoryPostStore(),
        InMemoryFetchLock(),
        InMemoryFetchLog(),
        cache_window=timedelta(seconds=cache_seconds),
    )


def test_invalid_items_are_skipped_and_the_rest_kept() -> None:
    items = [
        post(1),
        {"userId": "1", "id": 2, "title": "x", "body": "y"},  # a string id: strict
        {"userId": 1, "id": 3, "title": "x"},  # no body
        {"userId": 1, "id": True, "title": "x", "body": "y"},  # a bool is not an id
        {"userId": 1, "id": 0, "title": "x", "body": "y"},
        "not an object",
        None,
        post(4) | {"extra": "ignored"},
        post(1, title="again"),  # a repeated id: the last wins
    ]
    posts, skipped = validate(items)
    assert skipped == 6
    assert [(p.id, p.title) for p in posts] == [(1, "again1"), (4, "t4")]


def test_a_fetch_stores_counts_and_repeats_change_nothing() -> None:
    aggregator = make(ListSource([post(1), post(2, user=2)]))
    first = fetch_now(aggregator, "a", NOW)
    assert (first.fetched, first.created, first.updated, first.skipped) == (2, 2, 0, 0)
    again = fetch_now(aggregator, "a", NOW)
    assert (again.created, again.updated) == (0, 0)


def test_a_changed_post_counts_as_updated() -> None:
    source = ListSource([post(1)])
    aggregator = make(source)
    fetch_now(aggregator, "a", NOW)
    source.items = [post(1, title="new")]
    assert fetch_now(aggregator, "a", NOW).updated == 1


def test_the_lock_refuses_a_second_fetch_until_released_or_expired() -> None:
    aggregator = make(ListSource([post(1)]))
    assert aggregator.lock.acquire("someone", NOW, timedelta(seconds=90))
    with pytest.raises(FetchLocked):
        fetch_now(aggregator, "me", NOW)
    later = NOW + timedelta(seconds=91)  # a crashed holder's lock expires
    assert fetch_now(aggregator, "me", later).created == 1


def test_a_failing_source_keeps_the_data_and_frees_the_lock() -> None:
    source = ListSource([post(1)])
    aggregator = make(source)
    fetch_now(aggregator, "a", NOW)
    source.error = "the source answered 503"
    with pytest.raises(SourceFailed):
        fetch_now(aggregator, "a", NOW)
    assert list(aggregator.store.page(None, 10, None).items) == [
        Post(id=1, user_id=1, title="t1", body="b")
    ]
    assert aggregator.lock.acquire("next", NOW, timedelta(seconds=1))


def test_the_schedules_fetch_reports_ok_locked_or_failed_and_never_raises() -> None:
    source = ListSource([post(1), {"id": "bad"}])
    aggregator = make(source)

    done = fetch_on_schedule(aggregator, "schedule-1", NOW)
    assert done == ScheduledFetch(
        status=ScheduleOutcome.OK, fetched=2, created=1, updated=0, skipped=1
    )

    assert aggregator.lock.acquire("someone", NOW, timedelta(seconds=90))
    assert fetch_on_schedule(aggregator, "schedule-2", NOW) == ScheduledFetch(
        status=ScheduleOutcome.LOCKED
    )
    assert source.calls == 1  # skipped: the source was not asked

    later = NOW + timedelta(seconds=91)
    source.error = "the source answered 503"
    failed = fetch_on_schedule(aggregator, "schedule-3", later)
    assert (failed.status, failed.error) == (ScheduleOutcome.FAILED, "the source answered 503")
    assert len(aggregator.store.page(None, 10, None).items) == 1  # the stored data unchanged


@pytest.mark.parametrize(
    ("after", "status", "calls"),
    [(59.999, FetchStatus.CACHED, 1), (60, FetchStatus.OK, 2)],
)
def test_the_cache_window(after: float, status: FetchStatus, calls: int) -> None:
    source = ListSource([post(1)])
    aggregator = make(source, cache_seconds=60)
    assert fetch_sync(aggregator, "a", NOW).status is FetchStatus.OK
    report = fetch_sync(aggregator, "a", NOW + timedelta(seconds=after))
    assert (report.status, source.calls) == (status, calls)


def test_the_worker_runs_a_fetch_job_and_fails_it_readably() -> None:
    from tests.fakes import InMemoryJobQueue, InMemoryJobTable

    aggregator = make(ListSource([post(1)]))
    table = InMemoryJobTable()
    worker = Worker(
        table, KINDS, clock=lambda: NOW, resources=Resources({Aggregator: lambda: aggregator})
    )

    def run_fetch_job() -> tuple[JobStatus, str | None, str | None]:
        job_id = submit_fetch(
            table,
            InMemoryJobQueue(),
            aggregator,
            owner="o" * 32,
            now=NOW,
            retention_days=0,
            max_pending=9,
        ).answer.job_id
        worker.handle(Delivery("m-1", json.dumps({"job_id": job_id})))
        job = table.jobs[job_id]
        return job.status, job.result, job.error

    status, result, _ = run_fetch_job()
    assert status is JobStatus.COMPLETED
    assert '"created":1' in (result or "")
    aggregator.lock.acquire("other", NOW, timedelta(seconds=90))
    assert run_fetch_job() == (
        JobStatus.FAILED,
        None,
        "Another fetch is in progress; try again shortly",
    )
    aggregator.lock.release("other")
    aggregator.source.error = "the source answered 500"  # type: ignore[attr-defined]
    assert run_fetch_job()[2] == "the source answered 500"


# --- the DynamoDB store's batch retries, against botocore's Stubber -----------------------------


def stubbed_store() -> tuple[DynamoPostStore, Stubber]:
    client: Any = get_session().create_client("dynamodb", region_name="us-east-1")
    return DynamoPostStore(client, "t", sleep=lambda _: None), Stubber(client)


def test_unprocessed_items_are_written_again() -> None:
    store, stub = stubbed_store()
    posts = [Post(id=n, user_id=1, title="t", body="b") for n in (1, 2)]
    stub.add_response("batch_get_item", {"Responses": {"t": []}, "UnprocessedKeys": {}})
    leftover = {"t": [{"PutRequest": {"Item": post_key(2) | {"id": {"N": "2"}}}}]}
    stub.add_response("batch_write_item", {"UnprocessedItems": leftover})
    stub.add_response("batch_write_item", {"UnprocessedItems": {}})
    with stub:
        assert store.upsert(posts) == (2, 0)
    stub.assert_no_pending_responses()


def test_items_that_stay_unprocessed_become_unavailable() -> None:
    store, stub = stubbed_store()
    stub.add_response("batch_get_item", {"Responses": {"t": []}, "UnprocessedKeys": {}})
    leftover = {"t": [{"PutRequest": {"Item": post_key(1) | {"id": {"N": "1"}}}}]}
    for _ in range(6):
        stub.add_response("batch_write_item", {"UnprocessedItems": leftover})
    with stub, pytest.raises(Unavailable):
        store.upsert([Post(id=1, user_id=1, title="t", body="b")])


# --- mode=task: one active fetch job, and the cache window ------------------------------------


class TaskFetches:
    """``submit_fetch`` on the in-memory ports, and the worker that runs what it queues."""

    def __init__(self, cache_seconds: float = 60) -> None:
        from tests.fakes import InMemoryJobQueue, InMemoryJobTable

        self.source = ListSource([post(1)])
        self.aggregator = Aggregator(
            self.source,
            InMemoryPostStore(),
            InMemoryFetchLock(),
            InMemoryFetchLog(),
            cache_window=timedelta(seconds=cache_seconds),
        )
        self.table = InMemoryJobTable()
        self.queue = InMemoryJobQueue()
        self.now = NOW
        self.worker = Worker(
            self.table,
            KINDS,
            clock=lambda: self.now,
            resources=Resources({Aggregator: lambda: self.aggregator}),
        )

    def submit(self, owner: str = "a" * 32) -> TaskFetch:
        return submit_fetch(
            self.table,
            self.queue,
            self.aggregator,
            owner=owner,
            now=self.now,
            retention_days=1,
            max_pending=9,
        )

    def run(self, job_id: str) -> FetchJobView:
        self.worker.handle(Delivery(f"m-{job_id}", json.dumps({"job_id": job_id})))
        return get_fetch_job(self.table, job_id)


def test_a_task_fetch_while_one_is_pending_or_running_answers_with_that_job() -> None:
    fetches = TaskFetches()
    first = fetches.submit("a" * 32)
    assert (first.queued, first.answer.status) == (True, JobStatus.PENDING)
    again = fetches.submit("b" * 32)  # another user, while the first is pending
    assert (again.queued, again.answer.job_id, again.answer.status) == (
        False,
        first.answer.job_id,
        JobStatus.PENDING,
    )
    assert "already pending" in again.answer.message
    fetches.table.claim(fetches.table.jobs[first.answer.job_id], NOW)  # now it runs
    running = fetches.submit("c" * 32)
    assert (running.answer.job_id, running.answer.status) == (
        first.answer.job_id,
        JobStatus.PROCESSING,
    )
    assert fetches.queue.sent == [first.answer.job_id]


def test_once_the_active_job_has_ended_failed_a_new_one_is_queued() -> None:
    fetches = TaskFetches()
    fetches.source.error = "the source answered 503"
    first = fetches.submit().answer.job_id
    assert fetches.run(first).status == "failed"
    second = fetches.submit()
    assert second.queued
    assert second.answer.job_id != first
    assert fetches.queue.sent == [first, second.answer.job_id]


def test_a_job_stranded_by_the_reconciler_stops_blocking_as_soon_as_it_ends() -> None:
    fetches = TaskFetches()
    stranded = fetches.submit().answer.job_id
    assert not fetches.submit().queued
    fetches.table.abandon(stranded, "its message was lost", NOW)
    assert fetches.submit().queued


def test_within_the_cache_window_a_task_fetch_ends_cached_at_once_off_the_lane() -> None:
    fetches = TaskFetches(cache_seconds=60)
    first = fetches.submit().answer.job_id
    done = fetches.run(first)
    assert (done.status, done.outcome, done.fetched) == ("completed", FetchStatus.OK, 1)
    fetches.now = NOW + timedelta(seconds=59)
    cached = fetches.submit()
    assert (cached.queued, cached.answer.status) == (False, JobStatus.COMPLETED)
    assert cached.answer.message == "Data fetched recently; using the stored data"
    view = get_fetch_job(fetches.table, cached.answer.job_id)
    assert (view.status, view.outcome, view.fetched, view.error) == (
        "completed",
        FetchStatus.CACHED,
        0,
        None,
    )
    assert fetches.queue.sent == [first]
    assert fetches.source.calls == 1
    assert fetches.table.pending_count("a" * 32) == 0
    fetches.now = NOW + timedelta(seconds=60)  # the window has passed
    assert fetches.submit().queued


def test_a_fetch_job_that_runs_within_the_cache_window_ends_cached_without_the_source() -> None:
    fetches = TaskFetches(cache_seconds=60)
    job_id = fetches.submit().answer.job_id
    # a sync (or scheduled) fetch succeeds while the job waits in the lane
    fetch_sync(fetches.aggregator, "sync", NOW)
    fetches.now = NOW + timedelta(seconds=5)
    view = fetches.run(job_id)
    assert (view.status, view.outcome, view.fetched) == ("completed", FetchStatus.CACHED, 0)
    assert fetches.source.calls == 1


def test_a_fetch_job_completed_before_results_carried_a_status_reads_as_ok() -> None:
    fetches = TaskFetches()
    job_id = fetches.submit().answer.job_id
    job = fetches.table.claim(fetches.table.jobs[job_id], NOW)
    old = '{"fetched":3,"created":2,"updated":1,"skipped":0}'
    fetches.table.finish(job, JobStatus.COMPLETED, NOW, result=old)
    view = get_fetch_job(fetches.table, job_id)
    assert (view.outcome, view.fetched, view.created) == (FetchStatus.OK, 3, 2)


def test_only_fetch_jobs_are_readable_through_fetch_status() -> None:
    from ordo.errors import JobNotFound
    from ordo.jobs import new_job
    from ordo.tasks import ReversePayload

    fetches = TaskFetches()
    task = new_job(ReversePayload(text="abc"), owner="a" * 32, now=NOW)
    fetches.table.create(task, 9)
    for job_id in (task.job_id, "0" * 32, "not-an-id"):
        with pytest.raises(JobNotFound):
            get_fetch_job(fetches.table, job_id)
