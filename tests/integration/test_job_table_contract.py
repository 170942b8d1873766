"""One contract, two implementations: the DynamoDB adapter on moto and the in-memory fake."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from ordo import jobs
from ordo.documents import INVOICE, InvoicePayload
from ordo.errors import InvalidInput, StaleTransition
from ordo.jobs import (
    Job,
    JobStatus,
    JobTable,
    NotRetryable,
    PendingQuotaExceeded,
    SingletonMoved,
    new_job_id,
)
from ordo.queue import JobMessage
from ordo.registry import KINDS
from ordo.storage.attributes import from_json_attribute, to_item
from ordo.storage.cursors import encode_cursor
from ordo.storage.jobs import DynamoJobTable, job_key
from ordo.tasks import ReversePayload
from ordo.worker import Delivery, Worker
from tests.fakes import InMemoryJobTable
from tests.harness import InProcessStack

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["dynamodb", "memory"])
def table(request: pytest.FixtureRequest) -> JobTable:
    if request.param == "memory":
        return InMemoryJobTable()
    cloud: InProcessStack = request.getfixturevalue("anonymous_cloud")
    return DynamoJobTable(cloud.dynamodb, cloud.stack.physical["JobsTable"]["Ref"])


def jobs_table(cloud: InProcessStack) -> DynamoJobTable:
    return DynamoJobTable(cloud.dynamodb, cloud.stack.physical["JobsTable"]["Ref"])


OWNER = "a" * 32


def make_job(data: str = "abc", created_at: datetime = NOW) -> Job:
    return Job(job_id=new_job_id(), owner=OWNER, kind="reverse", data=data, created_at=created_at)


def new_job(table: JobTable, data: str = "abc", max_pending: int = 100) -> Job:
    job = make_job(data)
    table.create(job, max_pending)
    return job


def test_create_then_get_round_trips_every_field(table: JobTable) -> None:
    job = new_job(table, data="ж😀\u0000 x")
    assert table.get(job.job_id) == job


def test_create_refuses_an_existing_id(table: JobTable) -> None:
    job = new_job(table)
    with pytest.raises(Exception):  # noqa: B017, PT011 - each adapter raises its own kind
        table.create(job, 100)


def test_get_of_unknown_id_is_none(table: JobTable) -> None:
    assert table.get(new_job_id()) is None


def test_queue_position_counts_only_pending_jobs_with_smaller_sequence(table: JobTable) -> None:
    jobs = [new_job(table) for _ in range(3)]
    for seq, job in enumerate(jobs, start=100):
        table.set_queue_seq(job.job_id, seq)
    assert [table.count_pending_before(s) for s in (100, 101, 102, 103)] == [0, 1, 2, 3]
    table.claim(jobs[0], NOW)
    assert table.count_pending_before(103) == 2


def test_sequence_is_not_recorded_once_the_job_started(table: JobTable) -> None:
    job = new_job(table)
    table.claim(job, NOW)
    table.set_queue_seq(job.job_id, 5)
    assert table.count_pending_before(10) == 0


def test_a_new_job_is_claimed_unread_as_claim_would_claim_it(table: JobTable) -> None:
    job = new_job(table)
    table.set_queue_seq(job.job_id, 100)
    table.claim_new(job.job_id, OWNER, "reverse", NOW)
    claimed = table.get(job.job_id)
    assert claimed is not None
    assert claimed == job.claimed(NOW).model_copy(update={"queue_seq": claimed.queue_seq})
    assert table.pending_count(OWNER) == 0
    assert table.count_pending_before(101) == 0
    with pytest.raises(StaleTransition):  # claimed already: a redelivery reads it first
        table.claim_new(job.job_id, OWNER, "reverse", NOW)
    assert table.pending_count(OWNER) == 0


@pytest.mark.parametrize(
    ("owner", "kind"), [("b" * 32, "reverse"), (OWNER, "swap_pairs")], ids=["owner", "kind"]
)
def test_a_new_job_is_not_claimed_unread_under_another_owner_or_kind(
    table: JobTable, owner: str, kind: str
) -> None:
    job = new_job(table)
    with pytest.raises(StaleTransition):
        table.claim_new(job.job_id, owner, kind, NOW)
    assert table.get(job.job_id) == job
    assert (table.pending_count(OWNER), table.pending_count("b" * 32)) == (1, 0)


def test_only_a_never_attempted_pending_job_is_claimed_unread(table: JobTable) -> None:
    with pytest.raises(StaleTransition):
        table.claim_new(new_job_id(), OWNER, "reverse", NOW)
    interrupted = table.note_interrupted(table.claim(new_job(table), NOW), "throttled")
    failed = table.abandon(new_job(table).job_id, "gone", NOW)
    for job in (interrupted, failed):
        with pytest.raises(StaleTransition):
            table.claim_new(job.job_id, OWNER, "reverse", NOW)
        assert table.get(job.job_id) == job
    assert table.pending_count(OWNER) == 0


def test_claim_finish_and_stale_attempts(table: JobTable) -> None:
    job = new_job(table)
    first = table.claim(job, NOW)
    assert (first.status, first.attempt, first.started_at) == (JobStatus.PROCESSING, 1, NOW)
    with pytest.raises(StaleTransition):  # cut off without a note: a crash, never run again
        table.claim(first, NOW)
    noted = table.note_interrupted(first, "attempt 1 interrupted: throttled")
    assert noted.interrupted
    second = table.claim(noted, NOW)
    assert (second.attempt, second.error) == (2, None)
    with pytest.raises(StaleTransition):
        table.claim(noted, NOW)
    with pytest.raises(StaleTransition):
        table.finish(first, JobStatus.COMPLETED, NOW, result="stale", error=None)
    done = table.finish(second, JobStatus.COMPLETED, NOW, result="cba", error=None)
    assert (done.status, done.result, done.finished_at) == (JobStatus.COMPLETED, "cba", NOW)
    with pytest.raises(StaleTransition):
        table.claim(done, NOW)
    with pytest.raises(StaleTransition):
        table.abandon(job.job_id, "late", NOW)


def test_failed_outcome_keeps_the_error(table: JobTable) -> None:
    job = table.claim(new_job(table), NOW)
    failed = table.finish(job, JobStatus.FAILED, NOW, result=None, error="bad input")
    assert (failed.status, failed.error, failed.result) == (JobStatus.FAILED, "bad input", None)


def test_abandon_pending_or_processing(table: JobTable) -> None:
    pending = new_job(table)
    assert table.abandon(pending.job_id, "never ran", NOW).status is JobStatus.FAILED
    running = table.claim(new_job(table), NOW)
    assert table.abandon(running.job_id, "crashed", NOW).error == "crashed"
    with pytest.raises(StaleTransition):
        table.abandon(new_job_id(), "unknown", NOW)


def test_create_counts_pending_jobs_and_refuses_one_past_the_limit(table: JobTable) -> None:
    jobs = [new_job(table, max_pending=2) for _ in range(2)]
    with pytest.raises(PendingQuotaExceeded):
        new_job(table, max_pending=2)
    assert table.pending_count(OWNER) == 2
    assert [table.get(job.job_id) is not None for job in jobs] == [True, True]


def test_leaving_pending_frees_the_quota_once(table: JobTable) -> None:
    claimed, abandoned, kept = (new_job(table) for _ in range(3))
    first = table.claim(claimed, NOW)
    table.note_interrupted(first, "attempt 1 interrupted")
    retried = table.claim(table.get(claimed.job_id) or first, NOW)  # a retry: no change
    table.abandon(abandoned.job_id, "never ran", NOW)
    table.abandon(retried.job_id, "crashed", NOW)  # was processing: no change
    assert table.pending_count(OWNER) == 1
    assert table.get(kept.job_id) is not None


def test_progress_only_grows_for_the_current_attempt(table: JobTable) -> None:
    job = table.claim(new_job(table), NOW)
    later = NOW + timedelta(seconds=1)
    assert table.set_progress(job, 25, later).progress == 25
    with pytest.raises(StaleTransition):
        table.set_progress(job, 25, later)  # not higher
    retry = table.claim(table.note_interrupted(job, "interrupted"), later)
    with pytest.raises(StaleTransition):
        table.set_progress(job, 50, later)  # a stale attempt
    table.set_progress(retry, 50, later)
    done = table.finish(retry, JobStatus.COMPLETED, later, result="cba", error=None)
    assert (done.progress, done.updated_at) == (100, later)
    stored = table.get(job.job_id)
    assert stored is not None
    assert (stored.progress, stored.updated_at) == (100, later)


def test_finishing_sets_the_expiry_and_abandoning_keeps_a_dead_letter(table: JobTable) -> None:
    job = table.claim(new_job(table), NOW)
    done = table.finish(job, JobStatus.COMPLETED, NOW, result="cba", expires_at=1_900_000_000)
    assert done.expires_at == 1_900_000_000
    assert table.get(job.job_id) == done
    dead = table.abandon(
        new_job(table).job_id,
        "dead-lettered after 5 deliveries",
        NOW,
        expires_at=1_900_000_001,
        dead_letter_body='{"job_id": "x"}',
    )
    stored = table.get(dead.job_id)
    assert stored is not None
    assert (stored.status, stored.expires_at, stored.dead_letter_body) == (
        JobStatus.FAILED,
        1_900_000_001,
        '{"job_id": "x"}',
    )
    assert table.pending_count(OWNER) == 0


def test_retry_creates_a_linked_pending_job_once_and_counts_it(table: JobTable) -> None:
    failed = table.finish(table.claim(new_job(table), NOW), JobStatus.FAILED, NOW, error="boom")
    again = make_job(failed.data).model_copy(update={"retry_of": failed.job_id})
    table.retry(failed, again)
    assert table.get(again.job_id) == again
    assert (table.get(failed.job_id) or failed).retried_as == again.job_id
    assert table.pending_count(OWNER) == 1
    with pytest.raises(NotRetryable):
        table.retry(failed, make_job())  # only once
    with pytest.raises(NotRetryable):
        table.retry(again, make_job())  # only a failed job
    assert table.pending_count(OWNER) == 1


def test_jobs_by_status_newest_first_paged_and_counted(table: JobTable) -> None:
    moments = [NOW + timedelta(seconds=n) for n in range(5)]
    jobs = [make_job(created_at=moment) for moment in moments]
    for job in jobs:
        table.create(job, 100)
    table.claim(jobs[0], NOW + timedelta(minutes=1))
    first = table.by_status(JobStatus.PENDING, limit=2)
    assert [item.job_id for item in first.items] == [jobs[4].job_id, jobs[3].job_id]
    assert first.next_cursor
    second = table.by_status(JobStatus.PENDING, limit=2, cursor=first.next_cursor)
    assert [item.job_id for item in second.items] == [jobs[2].job_id, jobs[1].job_id]
    oldest = table.by_status(JobStatus.PENDING, limit=1, newest_first=False)
    assert oldest.items[0].job_id == jobs[1].job_id
    before = table.by_status(JobStatus.PENDING, limit=10, before=moments[3])
    assert [item.job_id for item in before.items] == [jobs[2].job_id, jobs[1].job_id]
    (running,) = table.by_status(JobStatus.PROCESSING, limit=10).items
    assert (running.job_id, running.owner, running.kind, running.attempt) == (
        jobs[0].job_id,
        OWNER,
        "reverse",
        1,
    )
    assert table.count_by_status(JobStatus.PENDING) == 4
    assert table.count_by_status(JobStatus.PENDING, since=moments[3]) == 2
    assert table.count_by_status(JobStatus.FAILED) == 0
    with pytest.raises(InvalidInput):
        table.by_status(JobStatus.PENDING, limit=2, cursor="not-a-cursor")


def test_an_item_stored_before_job_kinds_reads_as_its_kind(anonymous_cloud: InProcessStack) -> None:
    table = DynamoJobTable(
        anonymous_cloud.dynamodb, anonymous_cloud.stack.physical["JobsTable"]["Ref"]
    )
    task, document = new_job_id(), new_job_id()
    legacy = {"owner": OWNER, "status": "pending", "created_at": NOW.isoformat(), "attempt": 0}
    legacy_ids = {task: {"job_id": task}, document: {"job_id": document}}
    for job_id, fields in (
        (task, {"kind": "task", "task_type": "swap_pairs", "data": "abc"}),
        (document, {"kind": "document", "document_type": "invoice", "data": '{"content":{}}'}),
    ):
        anonymous_cloud.dynamodb.put_item(
            TableName=anonymous_cloud.stack.physical["JobsTable"]["Ref"],
            Item=job_key(job_id) | to_item(legacy | legacy_ids[job_id] | fields),
        )
    old_task, old_document = table.get(task), table.get(document)
    assert old_task is not None
    assert old_document is not None
    assert (old_task.kind, old_task.data) == ("swap_pairs", '{"kind": "swap_pairs", "text": "abc"}')
    assert (old_document.kind, old_document.data) == ("invoice", '{"content":{}}')


# A payload or result that is JSON reads back as the very text it was; text that is not JSON
# (or that DynamoDB would not keep exactly: spacing, 1.0, 1e-07, deep nesting) stays text.
JSON_TEXTS = [
    '{"kind":"invoice","content":{"amount":19.99,"lines":[1,2,{"x":null}],"ok":true,"":""}}',
    '[{"a":"ж😀","b":-3}]',
    '{"a": 1}',
    '{"total":1.0}',
    '{"tiny":1e-07}',
    "[" * 40 + "]" * 40,
    '{"n":123456789012345678901234567890123456789}',
    '{"total":1.23456789012345678901234567891}',  # 30 significant digits: more than a float
    "cba",
    "",
]


@pytest.mark.parametrize("result_is_json", [True, False], ids=["json-result", "text-result"])
@pytest.mark.parametrize("text", JSON_TEXTS)
def test_payload_and_result_read_back_as_the_text_stored(
    table: JobTable, text: str, result_is_json: bool
) -> None:
    job = make_job(text)
    table.create(job, 5)
    claimed = table.claim(job, NOW)
    done = table.finish(
        claimed, JobStatus.COMPLETED, NOW, result=text, result_is_json=result_is_json
    )
    stored = table.get(job.job_id)
    assert stored is not None
    assert (stored.data, stored.result, done.result) == (text, text, text)


def test_json_payloads_and_results_are_stored_as_maps(anonymous_cloud: InProcessStack) -> None:
    name = anonymous_cloud.stack.physical["JobsTable"]["Ref"]
    table = DynamoJobTable(anonymous_cloud.dynamodb, name)
    job = make_job('{"kind":"invoice","content":{"amount":19.99}}')
    table.create(job, 5)
    claimed = table.claim(job, NOW)
    table.finish(claimed, JobStatus.COMPLETED, NOW, result='[{"total":3}]', result_is_json=True)
    item = anonymous_cloud.dynamodb.get_item(TableName=name, Key=job_key(job.job_id))["Item"]
    assert item["data"] == {
        "M": {"kind": {"S": "invoice"}, "content": {"M": {"amount": {"N": "19.99"}}}}
    }
    assert item["result"] == {"L": [{"M": {"total": {"N": "3"}}}]}


def test_payloads_and_results_stored_as_strings_still_read(anonymous_cloud: InProcessStack) -> None:
    """Items written before payloads and results were stored as JSON values hold strings."""
    name = anonymous_cloud.stack.physical["JobsTable"]["Ref"]
    table = DynamoJobTable(anonymous_cloud.dynamodb, name)
    job = make_job('{"kind": "invoice", "content": {}}')
    table.create(job, 5)
    done = table.finish(table.claim(job, NOW), JobStatus.COMPLETED, NOW, result="{}")
    item = anonymous_cloud.dynamodb.get_item(TableName=name, Key=job_key(job.job_id))["Item"]
    old = item | to_item({"data": '{"kind":"invoice","content":{"a":1}}', "result": '{"b":2.50}'})
    anonymous_cloud.dynamodb.put_item(TableName=name, Item=old)
    stored = table.get(job.job_id)
    assert stored is not None
    assert (stored.data, stored.result) == ('{"kind":"invoice","content":{"a":1}}', '{"b":2.50}')
    assert stored.model_copy(update={"data": job.data, "result": "{}"}) == done


def test_a_result_not_declared_json_is_stored_as_a_string_though_it_looks_like_json(
    anonymous_cloud: InProcessStack,
) -> None:
    """DynamoDB does not keep a map's key order: text stored as a map could come back changed."""
    table = jobs_table(anonymous_cloud)
    job = new_job(table, data='}2:"a",1:"b"{')
    table.finish(table.claim(job, NOW), JobStatus.COMPLETED, NOW, result='{"b":1,"a":2}')
    assert table_item(anonymous_cloud, job.job_id)["result"] == {"S": '{"b":1,"a":2}'}
    stored = table.get(job.job_id)
    assert stored is not None
    assert stored.result is not None
    assert stored.result.encode() == b'{"b":1,"a":2}'


def test_a_30_digit_number_in_a_json_result_is_stored_as_a_number_and_reads_back_exactly(
    anonymous_cloud: InProcessStack,
) -> None:
    table = jobs_table(anonymous_cloud)
    job = new_job(table)
    number = "-98765432109876543210.9876543219"
    result = f'{{"amount":{number},"count":123456789012345678901234567891}}'
    claimed = table.claim(job, NOW)
    table.finish(claimed, JobStatus.COMPLETED, NOW, result=result, result_is_json=True)
    assert table_item(anonymous_cloud, job.job_id)["result"] == {
        "M": {"amount": {"N": number}, "count": {"N": "123456789012345678901234567891"}}
    }
    stored = table.get(job.job_id)
    assert stored is not None
    assert stored.result == result


@pytest.mark.parametrize(("result_is_json", "kind"), [(True, "M"), (False, "S")])
def test_a_recorded_jobs_result_is_stored_as_json_only_when_declared(
    anonymous_cloud: InProcessStack, result_is_json: bool, kind: str
) -> None:
    table = jobs_table(anonymous_cloud)
    ended = make_fetch().model_copy(
        update={"status": JobStatus.COMPLETED, "finished_at": NOW, "result": '{"status":"ok"}'}
    )
    table.record(ended, result_is_json=result_is_json)
    assert kind in table_item(anonymous_cloud, ended.job_id)["result"]
    assert table.get(ended.job_id) == ended


def test_an_item_whose_text_result_is_a_string_from_before_reads_back(
    anonymous_cloud: InProcessStack,
) -> None:
    """Every item written before results were stored as JSON values holds its result as text."""
    name = anonymous_cloud.stack.physical["JobsTable"]["Ref"]
    table = jobs_table(anonymous_cloud)
    job = new_job(table, data=ReversePayload(text='}2:"a",1:"b"{').model_dump_json())
    table.finish(table.claim(job, NOW), JobStatus.COMPLETED, NOW, result="x")
    old = table_item(anonymous_cloud, job.job_id) | to_item(
        {"data": job.data, "result": '{"b":1,"a":2}'}
    )
    anonymous_cloud.dynamodb.put_item(TableName=name, Item=old)
    stored = table.get(job.job_id)
    assert stored is not None
    assert (stored.data, stored.result) == (job.data, '{"b":1,"a":2}')


# --- the worker says which results are JSON -----------------------------------------------------


def run_on_the_lane(table: JobTable, payload: BaseModel) -> Job:
    """``payload``'s job, submitted and then run by the worker with the deployment's kinds."""
    job = jobs.new_job(payload, owner=OWNER, now=NOW)
    table.create(job, 5)
    worker = Worker(table=table, kinds=KINDS, time_scale=0, clock=lambda: NOW)
    worker.handle(Delivery("m-1", JobMessage.of(job).model_dump_json()))
    done = table.get(job.job_id)
    assert done is not None
    assert done.status is JobStatus.COMPLETED
    return done


def test_a_text_tasks_result_that_is_compact_json_is_stored_as_text_and_reads_back_the_same(
    anonymous_cloud: InProcessStack,
) -> None:
    # Given a reverse task whose result happens to be compact JSON
    table = jobs_table(anonymous_cloud)
    # When the worker runs it
    done = run_on_the_lane(table, ReversePayload(text='}2:"a",1:"b"{'))
    # Then its result is stored as a string, and reads back byte for byte
    item = table_item(anonymous_cloud, done.job_id)
    assert item["result"] == {"S": '{"b":1,"a":2}'}
    assert done.result is not None
    assert done.result.encode() == b'{"b":1,"a":2}'
    # while its payload, a pydantic model's dump, is stored as a map
    assert item["data"] == {"M": {"kind": {"S": "reverse"}, "text": {"S": '}2:"a",1:"b"{'}}}


def test_a_documents_result_is_stored_as_a_map(anonymous_cloud: InProcessStack) -> None:
    table = jobs_table(anonymous_cloud)
    content = {"invoice_number": "INV-1", "amount": 19.99, "vendor": "ACME"}
    done = run_on_the_lane(table, InvoicePayload(content=content))
    item = table_item(anonymous_cloud, done.job_id)
    assert item["result"]["M"]["amount"] == {"N": "19.99"}
    assert done.result is not None
    assert from_json_attribute(item["result"]) == done.result
    assert json.loads(done.result) == INVOICE.show(done.result)


# --- one owner's jobs (GET /jobs) ------------------------------------------------------------

OTHER = "b" * 32


def owned(table: JobTable, owner: str, seconds: float, data: str = "abc") -> Job:
    job = make_job(data, created_at=NOW + timedelta(seconds=seconds)).model_copy(
        update={"owner": owner}
    )
    table.create(job, 100)
    return job


def test_an_owners_jobs_newest_first_paged_whole_and_only_theirs(table: JobTable) -> None:
    mine = [owned(table, OWNER, n) for n in range(5)]
    theirs = owned(table, OTHER, 2.5)
    done = table.finish(table.claim(mine[1], NOW), JobStatus.COMPLETED, NOW, result="cba")
    table.set_queue_seq(mine[4].job_id, 7)

    first = table.by_owner(OWNER, limit=2)
    assert [job.job_id for job in first.items] == [mine[4].job_id, mine[3].job_id]
    assert first.items[0].queue_seq == 7
    assert first.next_cursor
    second = table.by_owner(OWNER, limit=2, cursor=first.next_cursor)
    assert second.items == [mine[2], done]  # the whole job: status, result, times, payload
    assert second.next_cursor
    last = table.by_owner(OWNER, limit=2, cursor=second.next_cursor)
    assert [job.job_id for job in last.items] == [mine[0].job_id]
    assert [job.job_id for job in table.by_owner(OTHER, limit=10).items] == [theirs.job_id]
    assert table.by_owner("c" * 32, limit=10).items == []


def test_jobs_accepted_at_the_same_moment_list_by_id(table: JobTable) -> None:
    jobs = [owned(table, OWNER, 0) for _ in range(4)]
    first = table.by_owner(OWNER, limit=2)
    second = table.by_owner(OWNER, limit=2, cursor=first.next_cursor)
    listed = [job.job_id for job in first.items + second.items]
    assert listed == sorted((job.job_id for job in jobs), reverse=True)


def test_a_retry_is_listed_as_its_owners_newest_job(table: JobTable) -> None:
    original = owned(table, OWNER, 0)
    failed = table.finish(table.claim(original, NOW), JobStatus.FAILED, NOW, error="boom")
    again = make_job(created_at=NOW + timedelta(minutes=1)).model_copy(
        update={"retry_of": failed.job_id}
    )
    table.retry(failed, again)
    listed = table.by_owner(OWNER, limit=10).items
    assert [job.job_id for job in listed] == [again.job_id, original.job_id]
    assert listed[1].retried_as == again.job_id


def test_a_cursor_pages_only_the_owner_it_came_from(table: JobTable) -> None:
    for n in range(3):
        owned(table, OWNER, n)
        owned(table, OTHER, n)
    cursor = table.by_owner(OWNER, limit=1).next_cursor
    assert cursor
    with pytest.raises(InvalidInput, match="cursor is not valid"):
        table.by_owner(OTHER, limit=1, cursor=cursor)
    with pytest.raises(InvalidInput, match="cursor is not valid"):
        table.by_owner(OWNER, limit=1, cursor="not-a-cursor")


def test_a_forged_cursor_naming_another_owners_partition_is_refused(
    anonymous_cloud: InProcessStack,
) -> None:
    table = DynamoJobTable(
        anonymous_cloud.dynamodb, anonymous_cloud.stack.physical["JobsTable"]["Ref"]
    )
    victim = [owned(table, OTHER, n) for n in range(3)]
    mine = owned(table, OWNER, 0)
    item = table_item(anonymous_cloud, victim[2].job_id)
    key = {name: item[name] for name in ("pk", "sk", "gsi1pk", "gsi1sk")}
    with pytest.raises(InvalidInput, match="cursor is not valid"):
        table.by_owner(OWNER, limit=10, cursor=encode_cursor(key))
    # Relabelled as the caller's own partition, it only ever reads the caller's own jobs.
    relabelled = encode_cursor(key | to_item({"gsi1pk": f"JOBS#{OWNER}"}))
    assert [job.job_id for job in table.by_owner(OWNER, limit=10, cursor=relabelled).items] == [
        mine.job_id
    ]


def test_a_job_stored_before_the_owner_index_is_not_listed(anonymous_cloud: InProcessStack) -> None:
    name = anonymous_cloud.stack.physical["JobsTable"]["Ref"]
    table = DynamoJobTable(anonymous_cloud.dynamodb, name)
    listed = owned(table, OWNER, 1)
    legacy = make_job()
    item = table_item(anonymous_cloud, listed.job_id)
    old = {k: v for k, v in item.items() if k not in ("gsi1pk", "gsi1sk")}
    old |= job_key(legacy.job_id) | to_item({"job_id": legacy.job_id})
    anonymous_cloud.dynamodb.put_item(TableName=name, Item=old)
    assert table.get(legacy.job_id) is not None
    assert [job.job_id for job in table.by_owner(OWNER, limit=10).items] == [listed.job_id]


def table_item(cloud: InProcessStack, job_id: str) -> dict[str, Any]:
    return cloud.dynamodb.get_item(
        TableName=cloud.stack.physical["JobsTable"]["Ref"], Key=job_key(job_id)
    )["Item"]


def test_a_new_job_carries_its_owner_index_keys(anonymous_cloud: InProcessStack) -> None:
    table = DynamoJobTable(
        anonymous_cloud.dynamodb, anonymous_cloud.stack.physical["JobsTable"]["Ref"]
    )
    job = owned(table, OWNER, 1.5)
    item = table_item(anonymous_cloud, job.job_id)
    assert (item["gsi1pk"], item["gsi1sk"]) == (
        {"S": f"JOBS#{OWNER}"},
        {"S": f"2026-11-21T12:00:01.500000Z#{job.job_id}"},
    )


# --- singleton kinds (fetch): one marker names the kind's active job ---------------------------


def make_fetch() -> Job:
    return Job(job_id=new_job_id(), owner=OWNER, kind="fetch", data="{}", created_at=NOW)


def test_a_singleton_is_created_only_while_the_marker_names_what_was_read(
    table: JobTable,
) -> None:
    assert table.singleton("fetch") is None
    first = make_fetch()
    table.create_singleton(first, 100, replacing=None)
    assert (table.singleton("fetch"), table.pending_count(OWNER)) == (first.job_id, 1)
    late = make_fetch()  # a racer that read "no marker" too
    with pytest.raises(SingletonMoved):
        table.create_singleton(late, 100, replacing=None)
    with pytest.raises(SingletonMoved):
        table.create_singleton(late, 100, replacing=new_job_id())
    # Nothing of the loser was written: no job, no quota
    assert (table.get(late.job_id), table.pending_count(OWNER)) == (None, 1)
    second = make_fetch()
    table.create_singleton(second, 100, replacing=first.job_id)
    assert table.singleton("fetch") == second.job_id
    assert table.singleton("reverse") is None


def test_a_singleton_within_a_full_quota_is_refused_and_the_marker_is_unchanged(
    table: JobTable,
) -> None:
    new_job(table)
    with pytest.raises(PendingQuotaExceeded):
        table.create_singleton(make_fetch(), 1, replacing=None)
    assert table.singleton("fetch") is None


def test_an_ended_job_is_recorded_outside_the_quota_and_the_lane(table: JobTable) -> None:
    ended = make_fetch().model_copy(
        update={
            "status": JobStatus.COMPLETED,
            "progress": 100,
            "finished_at": NOW,
            "updated_at": NOW,
            "result": '{"status":"cached"}',
            "expires_at": 1_900_000_000,
        }
    )
    table.record(ended)
    assert table.get(ended.job_id) == ended
    assert table.pending_count(OWNER) == 0
    assert table.count_pending_before(10**30) == 0
    assert [job.job_id for job in table.by_owner(OWNER, limit=5).items] == [ended.job_id]
    assert table.by_status(JobStatus.COMPLETED, limit=5).items[0].job_id == ended.job_id
    with pytest.raises(StaleTransition):
        table.record(ended)
    with pytest.raises(ValueError, match="only an ended job"):
        table.record(make_fetch())


def test_a_count_follows_every_page_of_its_query(anonymous_cloud: InProcessStack) -> None:
    """DynamoDB pages a COUNT query by what it reads: every page is counted."""
    from ordo.storage.pages import query_pages

    table = DynamoJobTable(
        anonymous_cloud.dynamodb, anonymous_cloud.stack.physical["JobsTable"]["Ref"]
    )
    for _ in range(5):
        new_job(table)
    pages = list(
        query_pages(
            anonymous_cloud.dynamodb,
            TableName=anonymous_cloud.stack.physical["JobsTable"]["Ref"],
            IndexName="jobs_by_status",
            KeyConditionExpression="status_pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "JOBS#pending"}},
            Select="COUNT",
            Limit=2,
        )
    )
    assert [page["Count"] for page in pages] == [2, 2, 1]
    assert table.count_by_status(JobStatus.PENDING) == 5
