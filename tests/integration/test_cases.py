"""Cases through the real handlers on moto, on a clock the test moves."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from infra.local.events import sqs_event
from tests.harness import InProcessStack, reset_ordo_caches

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class Now:
    def __init__(self) -> None:
        self.value = T0

    def __call__(self) -> datetime:
        return self.value

    def at(self, seconds: float) -> None:
        self.value = T0 + timedelta(seconds=seconds)


@pytest.fixture
def now(cloud: InProcessStack, monkeypatch: pytest.MonkeyPatch) -> Now:
    """Real time scale (1), and a clock the test sets."""
    monkeypatch.setenv("ORDO_TIME_SCALE", "1")
    reset_ordo_caches()
    clock = Now()
    monkeypatch.setattr("ordo.clock.utcnow", clock)
    return clock


def create(cloud: InProcessStack, body: object = None) -> str:
    response = cloud.request("POST", "/cases", body)
    assert response.status == 201, response.body
    assert set(response.body) == {"case_id", "status", "created_at"}
    assert response.body["status"] == "submitted"
    assert response.headers["location"] == f"/cases/{response.body['case_id']}"
    return str(response.body["case_id"])


def read(cloud: InProcessStack, case_id: str) -> dict[str, object]:
    response = cloud.request("GET", f"/cases/{case_id}")
    assert response.status == 200, response.body
    body: dict[str, object] = response.body
    return body


def test_create_returns_an_unguessable_id_at_once(cloud: InProcessStack, now: Now) -> None:
    case_id = create(cloud)
    assert re.fullmatch(r"case_[0-9a-f]{32}", case_id)
    assert create(cloud) != case_id


def test_a_case_moves_through_its_review_on_the_timeline(cloud: InProcessStack, now: Now) -> None:
    case_id = create(cloud, {"procedure_name": "Lumbar MRI", "cpt_codes": ["72148"]})
    expected = [
        (9.999, "submitted", False, False),
        (10, "processing", True, False),
        (29.999, "processing", True, False),
        (30, "complete", True, True),
    ]
    for seconds, status, has_summary, complete in expected:
        now.at(seconds)
        case = read(cloud, case_id)
        assert case["status"] == status, seconds
        assert (case["summary"] is not None) == has_summary
        assert bool(case["steps"]) == complete
        assert case["is_complete"] == complete
        assert case["procedure_name"] == "Lumbar MRI"
        assert case["cpt_codes"] == ["72148"]


def test_transitions_are_stored_on_the_item(cloud: InProcessStack, now: Now) -> None:
    case_id = create(cloud)
    now.at(31)
    read(cloud, case_id)
    item = cloud.dynamodb.get_item(
        TableName=cloud.stack.physical["JobsTable"]["Ref"],
        Key={"pk": {"S": f"CASE#{case_id}"}, "sk": {"S": "CASE"}},
    )["Item"]
    assert item["status"] == {"S": "complete"}
    assert item["summary"]["S"]
    assert item["steps"]["L"]
    assert item["completed_at"]["S"].startswith("2026-11-21T12:00:30")


def test_creating_a_case_schedules_both_transitions(cloud: InProcessStack, now: Now) -> None:
    create(cloud)
    url = cloud.stack.queue_url("CaseTimerQueue")
    attributes = cloud.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "2"


def fire_timer(cloud: InProcessStack, case_id: str, due_after: float) -> object:
    """Deliver the timer's message for ``case_id`` to CaseTimerFunction, as the ESM would."""
    arn = cloud.stack.physical["CaseTimerQueue"]["Arn"]
    due = (T0 + timedelta(seconds=due_after)).isoformat()
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "MD5OfBody": "",
        "Body": json.dumps({"case_id": case_id, "due": due}),
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
    }
    return cloud.invoke("CaseTimerFunction", sqs_event([message], arn))


def test_the_timer_stores_a_transition_nobody_read(cloud: InProcessStack, now: Now) -> None:
    case_id = create(cloud)
    now.at(30)
    assert fire_timer(cloud, case_id, 30) == {"batchItemFailures": []}
    item = cloud.dynamodb.get_item(
        TableName=cloud.stack.physical["JobsTable"]["Ref"],
        Key={"pk": {"S": f"CASE#{case_id}"}, "sk": {"S": "CASE"}},
    )["Item"]
    assert item["status"] == {"S": "complete"}


def test_a_timer_message_far_too_early_is_retried(cloud: InProcessStack, now: Now) -> None:
    case_id = create(cloud)
    assert fire_timer(cloud, case_id, 10) == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert read(cloud, case_id)["status"] == "submitted"


def test_listing_filters_by_status_and_pages(cloud: InProcessStack, now: Now) -> None:
    ids = []
    for second in (0, 15, 25):
        now.at(second)
        ids.append(create(cloud))
    now.at(35)  # ages: 35 s, 20 s, 10 s

    def listed(query: str) -> list[str]:
        response = cloud.request("GET", "/cases", query=query)
        assert response.status == 200, response.body
        return [item["case_id"] for item in response.body["items"]]

    assert listed("") == ids[::-1]
    assert listed("status=complete") == [ids[0]]
    assert listed("status=processing") == [ids[2], ids[1]]
    assert listed("status=submitted") == []

    first = cloud.request("GET", "/cases", query="limit=2").body
    assert len(first["items"]) == 2
    second = cloud.request("GET", "/cases", query=f"limit=2&cursor={first['next_cursor']}").body
    assert [item["case_id"] for item in second["items"]] == [ids[0]]
    assert second["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("limit=101", "limit"),
        ("limit=0", "limit"),
        ("status=done", "status"),
        ("cursor=abc", "cursor"),
    ],
)
def test_bad_listing_queries_are_422(
    cloud: InProcessStack, now: Now, query: str, problem: str
) -> None:
    response = cloud.request("GET", "/cases", query=query)
    assert response.status == 422
    assert problem in response.body["detail"]


def test_a_cursor_cannot_read_another_users_cases(cloud: InProcessStack, now: Now) -> None:
    for _ in range(3):
        create(cloud)
    cursor = cloud.request("GET", "/cases", query="limit=1").body["next_cursor"]
    bob = cloud.sign_up("bob")
    response = cloud.request("GET", "/cases", query=f"cursor={cursor}", token=bob.access_token)
    assert (response.status, response.body["detail"]) == (422, "cursor is not valid")


def test_cases_belong_to_their_owner(cloud: InProcessStack, now: Now) -> None:
    case_id = create(cloud)
    bob = cloud.sign_up("bob")
    admin = cloud.sign_up("root", admin=True)
    theirs = cloud.request("GET", f"/cases/{case_id}", token=bob.access_token)
    assert (theirs.status, theirs.body) == (404, {"detail": "Case not found"})
    assert cloud.request("GET", "/cases", token=bob.access_token).body["items"] == []
    assert cloud.request("GET", f"/cases/{case_id}", token=admin.access_token).status == 200
    everyone = cloud.request("GET", "/cases", token=admin.access_token).body["items"]
    assert [item["case_id"] for item in everyone] == [case_id]
    for method, path in [("POST", "/cases"), ("GET", "/cases"), ("GET", f"/cases/{case_id}")]:
        assert cloud.request(method, path, token=None).status == 401


@pytest.mark.parametrize(
    "body",
    [{"cpt_codes": ["12"]}, {"notes": "x" * 10_001}, {"procedure_name": ""}, {"extra": True}, [1]],
)
def test_bad_case_bodies_are_422_and_store_nothing(
    cloud: InProcessStack, now: Now, body: object
) -> None:
    response = cloud.request("POST", "/cases", body)
    assert response.status == 422
    assert response.body["detail"]
    assert cloud.request("GET", "/cases").body["items"] == []


def test_an_unknown_case_is_404(cloud: InProcessStack, now: Now) -> None:
    for case_id in ("case_" + "0" * 32, "nope"):
        response = cloud.request("GET", f"/cases/{case_id}")
        assert (response.status, response.body) == (404, {"detail": "Case not found"})
