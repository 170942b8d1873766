"""Document jobs and health through the real handlers on moto."""

from __future__ import annotations

from typing import Any

import pytest

from ordo.documents import MAX_DOCUMENT_BYTES
from tests.harness import InProcessStack, reset_ordo_caches

INVOICE = {"type": "invoice", "content": {"amount": 99.5, "vendor": "Acme"}}


def upload(cloud: InProcessStack, body: dict[str, Any] = INVOICE) -> str:
    response = cloud.request("POST", "/upload", body)
    assert response.status == 200, response.body
    assert set(response.body) == {"job_id", "message", "timestamp"}
    assert response.body["message"] == "Document received. Processing started."
    return str(response.body["job_id"])


def status(cloud: InProcessStack, job_id: str) -> dict[str, Any]:
    response = cloud.request("GET", f"/status/{job_id}")
    assert response.status == 200, response.body
    body: dict[str, Any] = response.body
    return body


def test_an_invoice_is_processed_on_the_lane(cloud: InProcessStack) -> None:
    job_id = upload(cloud, INVOICE | {"metaData": {"reference": "INV-7"}})
    pending = status(cloud, job_id)
    assert set(pending) == {
        "job_id",
        "status",
        "progress",
        "result",
        "error",
        "created_at",
        "updated_at",
    }
    assert (pending["status"], pending["progress"], pending["result"]) == ("pending", 0, None)
    cloud.drain()
    done = status(cloud, job_id)
    assert (done["status"], done["progress"]) == ("completed", 100)
    assert done["result"] == {
        "invoice_number": "INV-7",
        "amount": 99.5,
        "vendor": "Acme",
        "currency": "USD",
        "status": "processed",
    }
    assert done["updated_at"] > done["created_at"]


def test_progress_is_seen_moving_mid_processing(
    cloud: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDO_TIME_SCALE", "1")
    reset_ordo_caches()
    job_id = upload(cloud, {"type": "contract", "content": {"parties": ["A", "B"]}})
    seen: list[tuple[str, int]] = []

    def observe(_: float) -> None:  # the worker's sleep, on an injected clock: no real wait
        view = status(cloud, job_id)
        seen.append((view["status"], view["progress"]))

    monkeypatch.setattr(cloud.module("WorkerFunction").worker, "sleep", observe)
    cloud.drain()
    assert seen == [("processing", 0), ("processing", 25), ("processing", 50), ("processing", 75)]
    assert status(cloud, job_id)["progress"] == 100


def test_unreadable_content_fails_with_a_readable_error_and_the_lane_goes_on(
    cloud: InProcessStack,
) -> None:
    bad = upload(cloud, {"type": "invoice", "content": {"amount": "twelve"}})
    task = cloud.request("POST", "/tasks", {"type": "reverse", "data": "abc"}).body["task_id"]
    cloud.drain()
    failed = status(cloud, bad)
    assert (failed["status"], failed["result"]) == ("failed", None)
    assert failed["error"] == "amount must be a number, not 'twelve'"
    assert status(cloud, task)["result"] == "cba"
    assert cloud.dead_letters() == []


def test_process_answers_for_the_matching_type_only(cloud: InProcessStack) -> None:
    job_id = upload(cloud)
    task = cloud.request("POST", "/tasks", {"type": "reverse", "data": "abc"}).body["task_id"]
    same = cloud.request("POST", "/process", {"job_id": job_id, "document": "invoice"})
    assert (same.status, same.body) == (200, status(cloud, job_id))
    other = cloud.request("POST", "/process", {"job_id": job_id, "document": "contract"})
    assert (other.status, other.body["detail"]) == (
        422,
        f"job {job_id} is a invoice, not a contract",
    )
    not_a_document = cloud.request("POST", "/process", {"job_id": task, "document": "invoice"})
    assert not_a_document.status == 422
    missing = cloud.request("POST", "/process", {"job_id": "0" * 32, "document": "invoice"})
    assert (missing.status, missing.body) == (404, {"detail": "Job not found"})
    for body in (
        {"job_id": job_id},
        {"document": "invoice"},
        {"job_id": job_id, "document": "pdf"},
    ):
        assert cloud.request("POST", "/process", body).status == 422


@pytest.mark.parametrize(
    ("body", "status_code", "problem"),
    [
        ({"type": "receipt", "content": {}}, 422, "type"),
        ({"type": "invoice"}, 422, "content"),
        ({"type": "invoice", "content": [1]}, 422, "content"),
        ({"type": "invoice", "content": "x"}, 422, "content"),
        ({"type": "invoice", "content": {}, "metaData": "x"}, 422, "metaData"),
        ({"type": "invoice", "content": {"x": "a" * MAX_DOCUMENT_BYTES}}, 413, "at most"),
    ],
)
def test_bad_uploads_get_a_detail_and_store_nothing(
    cloud: InProcessStack, body: dict[str, Any], status_code: int, problem: str
) -> None:
    response = cloud.request("POST", "/upload", body)
    assert response.status == status_code
    assert problem in response.body["detail"]
    assert cloud.queue_depth() == 0


def test_documents_belong_to_their_uploader(cloud: InProcessStack) -> None:
    job_id = upload(cloud)
    bob = cloud.sign_up("bob")
    for method, path, body in [
        ("GET", f"/status/{job_id}", None),
        ("POST", "/process", {"job_id": job_id, "document": "invoice"}),
    ]:
        theirs = cloud.request(method, path, body, token=bob.access_token)
        assert (theirs.status, theirs.body) == (404, {"detail": "Job not found"})
        assert cloud.request(method, path, body, token=None).status == 401
    assert cloud.request("POST", "/upload", INVOICE, token=None).status == 401


# --- health ------------------------------------------------------------------------------------


def test_health_is_public_and_shallow_by_default(cloud: InProcessStack) -> None:
    response = cloud.request("GET", "/health", token=None)
    assert response.status == 200
    assert set(response.body) == {"status", "timestamp"}
    assert response.body["status"] == "healthy"


def test_the_deep_check_reaches_the_table_and_the_queue(cloud: InProcessStack) -> None:
    response = cloud.request("GET", "/health", query="deep=true", token=None)
    assert response.status == 200
    assert response.body["checks"] == {"table": "ok", "queue": "ok"}


def test_the_deep_check_fails_and_names_a_missing_table(cloud: InProcessStack) -> None:
    cloud.dynamodb.delete_table(TableName=cloud.stack.physical["JobsTable"]["Ref"])
    response = cloud.request("GET", "/health", query="deep=true", token=None)
    assert response.status == 503
    assert response.body["status"] == "unhealthy"
    assert response.body["checks"] == {"table": "failed: ResourceNotFoundException", "queue": "ok"}
