"""Cases over HTTP: the review's timeline as a client sees it, with the task lane busy."""

from __future__ import annotations

import time
from datetime import datetime

import boto3
import httpx
import pytest

from tests.e2e.conftest import TIME_SCALE, Api

RANK = {"submitted": 0, "processing": 1, "complete": 2}
PROCESSING, COMPLETE = 10 * float(TIME_SCALE), 30 * float(TIME_SCALE)


def expected_rank(created: float, at: float) -> int:
    age = at - created
    return 2 if age >= COMPLETE else 1 if age >= PROCESSING else 0


def watch(client: httpx.Client, case_id: str, created: float, until: float) -> list[str]:
    """Read the case until it is complete; every answer must fit the time it was given in."""
    seen: list[str] = []
    deadline = time.time() + until
    while time.time() < deadline:
        asked = time.time()
        case = client.get(f"/cases/{case_id}").json()
        answered = time.time()
        rank = RANK[case["status"]]
        assert expected_rank(created, asked) <= rank <= expected_rank(created, answered), case
        assert (case["summary"] is None) == (rank == 0)
        assert bool(case["steps"]) == (rank == 2) == case["is_complete"]
        seen.append(case["status"])
        if rank == 2:
            return seen
    raise AssertionError(f"{case_id} did not complete; saw {seen}")


def created_epoch(response: httpx.Response) -> float:
    return datetime.fromisoformat(response.json()["created_at"]).timestamp()


def test_a_case_follows_its_timeline_while_the_task_lane_is_busy(
    api: Api, client: httpx.Client
) -> None:
    tasks = [
        client.post("/tasks", json={"type": "repeat_by_position", "data": "abc"}).json()["task_id"]
        for _ in range(60)
    ]
    created = client.post("/cases", json={"procedure_name": "Shoulder Arthroscopy"})
    assert created.status_code == 201, created.text
    case_id = created.json()["case_id"]

    seen = watch(client, case_id, created_epoch(created), until=10)
    last_task = client.get(f"/tasks/{tasks[-1]}").json()
    assert last_task["status"] == "pending", "the lane was not busy: the test proves nothing"
    assert last_task["queue_position"] > 0
    assert [RANK[s] for s in seen] == sorted(RANK[s] for s in seen)  # never backwards
    for task_id in tasks:
        api.wait_for(client, task_id)


def test_the_transitions_are_stored_without_any_reader(api: Api, client: httpx.Client) -> None:
    if not api.local:
        pytest.skip("reads the local cloud's table directly")
    case_id = client.post("/cases").json()["case_id"]
    endpoint = httpx.get(f"{api.url}/_local/health").json()["aws_endpoint"]
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # moto accepts any key
    )
    (table,) = [name for name in dynamodb.list_tables()["TableNames"] if "JobsTable" in name]
    key = {"pk": {"S": f"CASE#{case_id}"}, "sk": {"S": "CASE"}}
    deadline = time.monotonic() + 15  # SQS delays are whole seconds: 1 s here, then a poll
    while time.monotonic() < deadline:
        item = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
        if item["status"]["S"] == "complete":
            break
        time.sleep(0.1)
    assert item["status"] == {"S": "complete"}
    assert item["steps"]["L"]
    assert item["is_complete"] == {"BOOL": True}


def test_cases_list_newest_first_and_filter_by_status(client: httpx.Client) -> None:
    ids = [client.post("/cases").json()["case_id"] for _ in range(3)]
    listed = client.get("/cases", params={"limit": 100}).json()
    assert [item["case_id"] for item in listed["items"]][:3] == ids[::-1]
    time.sleep(COMPLETE + 0.05)
    complete = client.get("/cases", params={"status": "complete"}).json()["items"]
    assert {item["case_id"] for item in complete} >= set(ids)
    assert client.get("/cases", params={"status": "submitted"}).json()["items"] == []
    assert client.get("/cases", params={"limit": 101}).status_code == 422
