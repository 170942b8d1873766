"""Document jobs without AWS: validation at its boundaries, results, progress, /process."""

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from ordo.accounts import Role
from ordo.documents import (
    MAX_DOCUMENT_BYTES,
    DocumentType,
    InvalidDocument,
    ProcessRequest,
    UploadRequest,
    check_document,
    interpret_contract,
    interpret_invoice,
    run_document,
    submit_document,
)
from ordo.errors import InvalidInput, JobNotFound, PayloadTooLarge
from ordo.jobs import JobStatus, JobStatusView
from ordo.jobs import get_job_status as get_status
from ordo.kinds import RunContext
from ordo.registry import KINDS
from ordo.security import Viewer
from ordo.tasks import TaskRequest, TaskType, submit_task
from ordo.worker import Delivery, Worker
from tests.fakes import InMemoryJobQueue, InMemoryJobTable
from tests.fakes_accounts import make_user

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ALICE, BOB, ADMIN = make_user("alice"), make_user("bob"), make_user("root", role=Role.ADMIN)


def upload(table: InMemoryJobTable, queue: InMemoryJobQueue, **body: Any) -> str:
    request = UploadRequest.model_validate({"type": "invoice", "content": {}} | body)
    accepted = submit_document(
        table, queue, request, owner=ALICE.id, now=NOW, retention_days=1, max_pending=100
    )
    return accepted.job_id


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"type": "receipt", "content": {}},
        {"type": "invoice"},
        {"type": "invoice", "content": None},
        {"type": "invoice", "content": [1, 2]},
        {"type": "invoice", "content": "text"},
        {"type": "invoice", "content": {}, "metaData": [1]},
        {"type": "invoice", "content": {}, "meta_data": {}},
        {"type": "invoice", "content": {}, "extra": 1},
    ],
)
def test_bad_uploads_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        UploadRequest.model_validate(body)


def test_metadata_keeps_its_camel_case_name() -> None:
    request = UploadRequest.model_validate(
        {"type": "contract", "content": {"a": 1}, "metaData": {"reference": "R-1"}}
    )
    assert request.meta_data == {"reference": "R-1"}
    assert json.loads(request.canonical()) == {
        "content": {"a": 1},
        "metaData": {"reference": "R-1"},
    }


def _sized(total: int) -> UploadRequest:
    empty = len(UploadRequest(type=DocumentType.INVOICE, content={"x": ""}).canonical().encode())
    return UploadRequest(type=DocumentType.INVOICE, content={"x": "a" * (total - empty)})


def test_the_size_limit_at_its_boundary() -> None:
    assert len(_sized(MAX_DOCUMENT_BYTES).check_size().encode()) == MAX_DOCUMENT_BYTES
    with pytest.raises(PayloadTooLarge) as raised:
        _sized(MAX_DOCUMENT_BYTES + 1).check_size()
    assert f"at most {MAX_DOCUMENT_BYTES}" in raised.value.detail


def test_an_oversized_upload_stores_and_queues_nothing() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    with pytest.raises(PayloadTooLarge):
        upload(table, queue, content={"x": "a" * MAX_DOCUMENT_BYTES})
    assert (table.jobs, queue.sent) == ({}, [])


# --- results -----------------------------------------------------------------------------------


def test_an_invoice_takes_its_fields_from_content_and_metadata() -> None:
    result = interpret_invoice(
        {"amount": 1234.567, "vendor": " ABC Corp ", "currency": "eur"}, {"reference": "INV-001"}
    )
    assert result == {
        "invoice_number": "INV-001",
        "amount": 1234.57,
        "vendor": "ABC Corp",
        "currency": "EUR",
        "status": "processed",
    }


def test_an_invoice_without_fields_gets_a_stable_number_and_nulls() -> None:
    first = interpret_invoice({"note": "x"}, {})
    assert first == interpret_invoice({"note": "x"}, {})
    assert first["invoice_number"].startswith("INV-")
    assert first["invoice_number"] != interpret_invoice({"note": "y"}, {})["invoice_number"]
    assert (first["amount"], first["vendor"], first["currency"]) == (None, None, "USD")


def test_a_numeric_text_amount_is_a_number() -> None:
    assert interpret_invoice({"amount": "12.5"}, {})["amount"] == 12.5
    assert interpret_invoice({"amount": 7}, {})["amount"] == 7.0


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("999999999999999.99", 999999999999999.99),
        ("-999999999999999.99", -999999999999999.99),
        (0, 0.0),
        ("0.01", 0.01),
        ("-0.006", -0.01),
    ],
)
def test_amounts_at_the_edges_of_the_rules_are_kept(amount: object, shown: float) -> None:
    assert interpret_invoice({"amount": amount}, {})["amount"] == shown


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ({"amount": "abc"}, "amount must be a number"),
        ({"amount": True}, "amount must be a number"),
        ({"amount": [1]}, "amount must be a number"),
        ({"amount": "NaN"}, "finite"),
        ({"amount": "Infinity"}, "finite"),
        ({"amount": 1e26}, "within ±999,999,999,999,999.99"),
        ({"amount": "-1000000000000000"}, "within ±"),
        ({"amount": 1e-30}, "zero or at least a cent"),
        ({"amount": "0.004"}, "zero or at least a cent"),
        ({"currency": "EURO"}, "currency"),
        ({"vendor": {"name": "x"}}, "vendor must be text"),
    ],
)
def test_an_invoice_that_cannot_be_read_says_why(content: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidDocument) as raised:
        interpret_invoice(content, {})
    assert problem in str(raised.value)


def test_a_contract_takes_its_fields_from_content() -> None:
    result = interpret_contract(
        {"contract_number": "C-9", "parties": ["Acme", "Globex"], "effective_date": "2026-01-31"},
        {},
    )
    assert result == {
        "contract_number": "C-9",
        "parties": ["Acme", "Globex"],
        "effective_date": "2026-01-31",
        "status": "signed",
        "signed_by": ["Acme", "Globex"],
    }
    signed = interpret_contract({"parties": ["A", "B"], "signed_by": "A"}, {"reference": "R"})
    assert (signed["contract_number"], signed["signed_by"]) == ("R", ["A"])
    bare = interpret_contract({}, {})
    assert bare["contract_number"].startswith("CTR-")
    assert (bare["parties"], bare["effective_date"], bare["signed_by"]) == ([], None, [])


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ({"effective_date": "31/01/2026"}, "effective_date must be a date"),
        ({"parties": "Acme"}, None),  # one name is fine
        ({"parties": [1, 2]}, "parties must be a list of names"),
        ({"parties": ["", "B"]}, "parties must be a list of names"),
    ],
)
def test_contract_fields_that_cannot_be_read(content: dict[str, Any], problem: str | None) -> None:
    if problem is None:
        assert interpret_contract(content, {})["parties"] == ["Acme"]
        return
    with pytest.raises(InvalidDocument) as raised:
        interpret_contract(content, {})
    assert problem in str(raised.value)


# --- processing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "seconds"), [(DocumentType.INVOICE, 2.0), (DocumentType.CONTRACT, 3.0)]
)
def test_processing_reports_progress_and_takes_its_time(kind: DocumentType, seconds: float) -> None:
    slept: list[float] = []
    reported: list[int] = []
    payload = UploadRequest(type=kind, content={}).payload()
    ctx = RunContext("j" * 32, 0.5, report_progress=reported.append, sleeper=slept.append)
    run_document(payload, ctx)
    assert reported == [25, 50, 75]
    assert sum(slept) == pytest.approx(seconds * 0.5)


def get_job_status(table: InMemoryJobTable, viewer: Viewer, job_id: str) -> JobStatusView:
    return get_status(table, viewer, job_id, KINDS)


def run_worker(table: InMemoryJobTable, queue: InMemoryJobQueue, observe: Any = None) -> None:
    worker = Worker(
        table=table,
        kinds=KINDS,
        time_scale=1.0,
        clock=lambda: NOW,
        sleep=observe or (lambda _: None),
    )
    for job_id in queue.sent:
        worker.handle(Delivery("m-" + job_id, json.dumps({"job_id": job_id})))


def test_the_worker_records_progress_as_it_goes_and_100_only_when_done() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    job_id = upload(table, queue, content={"amount": 10, "vendor": "V"})
    seen: list[tuple[JobStatus, int]] = []

    def observe(_: float) -> None:
        view = get_job_status(table, ALICE, job_id)
        seen.append((view.status, view.progress))

    run_worker(table, queue, observe)
    assert seen == [(JobStatus.PROCESSING, p) for p in (0, 25, 50, 75)]
    done = get_job_status(table, ALICE, job_id)
    assert (done.status, done.progress) == (JobStatus.COMPLETED, 100)
    assert done.result == {
        "invoice_number": done.result["invoice_number"],
        "amount": 10.0,
        "vendor": "V",
        "currency": "USD",
        "status": "processed",
    }


def test_unreadable_content_fails_the_job_and_the_lane_moves_on() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    bad = upload(table, queue, content={"amount": "a lot"})
    good = upload(table, queue, content={"amount": 1})
    run_worker(table, queue)
    failed = get_job_status(table, ALICE, bad)
    assert (failed.status, failed.progress, failed.result) == (JobStatus.FAILED, 0, None)
    assert failed.error == "amount must be a number, not 'a lot'"
    assert table.jobs[bad].attempt == 1  # not retried
    assert get_job_status(table, ALICE, good).status is JobStatus.COMPLETED


# --- /status and /process ----------------------------------------------------------------------


def test_status_covers_text_tasks_too() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    task = submit_task(
        table,
        queue,
        TaskRequest(type=TaskType.REVERSE, data="abc"),
        owner=ALICE.id,
        now=NOW,
        retention_days=1,
        max_pending=10,
    )
    pending = get_job_status(table, ALICE, task.task_id)
    assert (pending.status, pending.progress, pending.result) == (JobStatus.PENDING, 0, None)
    run_worker(table, queue)
    done = get_job_status(table, ALICE, task.task_id)
    assert (done.status, done.progress, done.result) == (JobStatus.COMPLETED, 100, "cba")
    assert done.updated_at == NOW


def test_process_checks_the_document_type() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    job_id = upload(table, queue)
    view = check_document(
        table, ALICE, ProcessRequest(job_id=job_id, document=DocumentType.INVOICE), KINDS
    )
    assert view == get_job_status(table, ALICE, job_id)
    with pytest.raises(InvalidInput) as raised:
        check_document(
            table, ALICE, ProcessRequest(job_id=job_id, document=DocumentType.CONTRACT), KINDS
        )
    assert raised.value.detail == f"job {job_id} is a invoice, not a contract"


def test_jobs_of_others_are_not_found_and_admins_see_them() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    job_id = upload(table, queue)
    calls: list[Callable[[], object]] = [
        lambda: get_job_status(table, BOB, job_id),
        lambda: check_document(
            table, BOB, ProcessRequest(job_id=job_id, document=DocumentType.INVOICE), KINDS
        ),
        lambda: get_job_status(table, ALICE, "0" * 32),
    ]
    for call in calls:
        with pytest.raises(JobNotFound):
            call()
    assert get_job_status(table, ADMIN, job_id).job_id == job_id


def test_progress_shows_100_only_with_completed() -> None:
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    job = table.jobs[upload(table, queue)].model_copy(
        update={"status": JobStatus.FAILED, "progress": 100}
    )
    assert JobStatusView.of(job, KINDS).progress == 99
