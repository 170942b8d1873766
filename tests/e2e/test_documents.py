"""Document jobs and health over HTTP."""

from typing import Any

import httpx

from tests.e2e.conftest import Api
from tests.waiting import eventually


def wait_for_status(api: Api, client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    """Every distinct view of /status until the job finishes."""
    views: list[dict[str, Any]] = []

    def finished() -> bool:
        view = client.get(f"/status/{job_id}").json()
        if not views or view != views[-1]:
            views.append(view)
        return view["status"] in ("completed", "failed")

    assert eventually(finished, timeout=api.lane_timeout, interval=0.005), (
        f"job {job_id} did not finish; saw {views}"
    )
    return views


def test_an_invoice_and_a_contract_run_in_order_with_their_results(
    api: Api, client: httpx.Client
) -> None:
    invoice = client.post(
        "/upload",
        json={"type": "invoice", "content": {"amount": "250.00"}, "metaData": {"reference": "I-1"}},
    )
    contract = client.post(
        "/upload", json={"type": "contract", "content": {"parties": ["Acme", "Globex"]}}
    )
    assert invoice.status_code == contract.status_code == 200
    invoice_views = wait_for_status(api, client, invoice.json()["job_id"])
    contract_views = wait_for_status(api, client, contract.json()["job_id"])

    done = invoice_views[-1]
    assert done["result"] == {
        "invoice_number": "I-1",
        "amount": 250.0,
        "vendor": None,
        "currency": "USD",
        "status": "processed",
    }
    assert contract_views[-1]["result"]["signed_by"] == ["Acme", "Globex"]
    progress = [view["progress"] for view in invoice_views + contract_views]
    assert all(0 <= p <= 100 for p in progress)
    for views in (invoice_views, contract_views):
        assert [v["progress"] for v in views] == sorted(v["progress"] for v in views)
        assert views[-1]["progress"] == 100
    assert done["updated_at"] <= contract_views[-1]["updated_at"]  # one lane, in order


def test_a_document_with_unreadable_content_fails_with_a_reason(
    api: Api, client: httpx.Client
) -> None:
    job_id = client.post(
        "/upload", json={"type": "contract", "content": {"effective_date": "someday"}}
    ).json()["job_id"]
    final = wait_for_status(api, client, job_id)[-1]
    assert final["status"] == "failed"
    assert "effective_date must be a date" in final["error"]


def test_health_answers_anyone(api: Api, anonymous: httpx.Client) -> None:
    shallow = anonymous.get("/health")
    assert (shallow.status_code, shallow.json()["status"]) == (200, "healthy")
    deep = anonymous.get("/health", params={"deep": "true"})
    assert deep.status_code == 200
    assert deep.json()["checks"] == {"table": "ok", "queue": "ok"}
