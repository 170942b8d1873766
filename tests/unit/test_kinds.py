"""The job-kind registry: what a kind must declare, and a kind added the documented way."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Literal

import pytest
from pydantic import BaseModel, ValidationError

from ordo.jobs import JobStatus, get_job_status, submit_job
from ordo.kinds import Kind, Registry, RunContext
from ordo.registry import KINDS
from ordo.worker import Delivery, Worker
from tests.fakes import InMemoryJobQueue, InMemoryJobTable
from tests.fakes_accounts import make_user
from tests.kinds.word_count import WORD_COUNT

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ALICE = make_user("alice")


def test_the_registry_holds_every_built_in_kind_with_a_positive_maximum() -> None:
    assert KINDS.names() == [
        "reverse",
        "swap_pairs",
        "repeat_by_position",
        "invoice",
        "contract",
        "fetch",
    ]
    assert all(kind.max_seconds > 0 for kind in KINDS)


def test_documents_and_fetch_declare_their_results_json_and_text_tasks_do_not() -> None:
    declared = {kind.name: kind.result_is_json for kind in KINDS}
    assert declared == {
        "reverse": False,
        "swap_pairs": False,
        "repeat_by_position": False,
        "invoice": True,
        "contract": True,
        "fetch": True,
    }
    # A text result is shown as it is, even when it looks like JSON
    assert KINDS.get("reverse").show('{"b":1,"a":2}') == '{"b":1,"a":2}'
    assert KINDS.get("invoice").show('{"b":1,"a":2}') == {"b": 1, "a": 2}


def test_a_kind_added_with_one_registration_line_is_submitted_run_and_shown() -> None:
    # Given the deployment's kinds plus one module's kind, registered with one line
    kinds = Registry(*KINDS)
    kinds.register(WORD_COUNT)
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    # When a client submits it through the generic body (POST /jobs) and the worker runs it
    payload = kinds.request_adapter().validate_python({"kind": "word_count", "text": "a b c"})
    accepted = submit_job(
        table, queue, kinds, payload, owner=ALICE.id, now=NOW, retention_days=1, max_pending=5
    )
    Worker(table, kinds, time_scale=0).handle(
        Delivery("m-1", json.dumps({"job_id": accepted.job_id}))
    )
    # Then its status shows its result the way the kind declares
    view = get_job_status(table, ALICE, accepted.job_id, kinds)
    assert (view.status, view.progress, view.result) == (JobStatus.COMPLETED, 100, {"words": 3})
    assert accepted.kind == "word_count"


def test_the_new_kinds_own_refusal_fails_its_job_readably() -> None:
    kinds = Registry(*KINDS, WORD_COUNT)
    table, queue = InMemoryJobTable(), InMemoryJobQueue()
    payload = kinds.request_adapter().validate_python({"kind": "word_count", "text": "  "})
    job_id = submit_job(
        table, queue, kinds, payload, owner=ALICE.id, now=NOW, retention_days=1, max_pending=5
    ).job_id
    Worker(table, kinds, time_scale=0).handle(Delivery("m-1", json.dumps({"job_id": job_id})))
    view = get_job_status(table, ALICE, job_id, kinds)
    assert (view.status, view.error) == (JobStatus.FAILED, "there are no words to count")


def test_the_request_body_is_a_union_discriminated_by_kind() -> None:
    adapter = Registry(*KINDS, WORD_COUNT).request_adapter()
    assert adapter.validate_python({"kind": "reverse", "text": "abc"}).text == "abc"
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        adapter.validate_python({"kind": "shout", "text": "abc"})
    with pytest.raises(ValidationError, match="at most 300"):
        adapter.validate_python({"kind": "repeat_by_position", "text": "x" * 301})
    with pytest.raises(ValidationError, match="at most 10000 characters"):
        adapter.validate_python({"kind": "word_count", "text": "x" * 10_001})


def _noop(payload: BaseModel, ctx: RunContext) -> str:
    return ""


class Loose(BaseModel):
    kind: str = "loose"


class Mislabelled(BaseModel):
    kind: Literal["other"] = "other"


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        (Kind("reverse", Loose, _noop, 1), "already registered"),
        (Kind("loose", Mislabelled, _noop, 1), "must declare `kind: Literal['loose']`"),
        (Kind("other", Mislabelled, _noop, 0), "positive max_seconds"),
    ],
)
def test_a_kind_that_breaks_the_contract_is_refused_at_registration(
    kind: Kind[BaseModel], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        Registry(*KINDS).register(kind)
