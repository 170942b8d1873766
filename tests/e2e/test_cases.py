"""Cases over HTTP: the review's timeline as a client sees it, with the task lane busy."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
import httpx
import pytest

from tests.e2e.conftest import SLOWEST_TASK_SECONDS, Api
from tests.waiting import eventually

RANK = {"submitted": 0, "processing": 1, "complete": 2}


@dataclass(frozen=True)
class Timeline:
    """A case's timeline at the stack's time scale: processing from 10 s, complete from 30 s."""

    processing: float
    complete: float

    @classmethod
    def of(cls, api: Api) -> Timeline:
        return cls(processing=api.seconds(10), complete=api.seconds(30))

    def rank(self, created: float, at: float) -> int:
        age = at - created
        return 2 if age >= self.complete else 1 if age >= self.processing else 0


def watch(
    client: httpx.Client, case_id: str, created: float, timeline: Timeline, until: float
) -> list[str]:
    """Read the case until it is complete; every answer must fit the time it was given in."""
    seen: list[str] = []

    def complete() -> bool:
        asked = time.time()
        case = client.get(f"/cases/{case_id}").json()
        answered = time.time()
        rank = RANK[case["status"]]
        # A rank outside these bounds at a running stack: is ORDO_TIME_SCALE the stack's?
        assert timeline.rank(created, asked) <= rank <= timeline.rank(created, answered), case
        assert (case["summary"] is None) == (rank == 0)
        assert bool(case["steps"]) == (rank == 2) == case["is_complete"]
        seen.append(case["status"])
        return rank == 2

    assert eventually(complete, timeout=until, interval=0), (
        f"{case_id} did not complete; saw {seen}"
    )
    return seen


def created_epoch(response: httpx.Response) -> float:
    return datetime.fromisoformat(response.json()["created_at"]).timestamp()


def test_a_case_follows_its_timeline_while_the_task_lane_is_busy(
    api: Api, client: httpx.Client
) -> None:
    timeline = Timeline.of(api)
    # Enough slow tasks to outlast the case's timeline and the reads after it: 60 at the local
    # cloud's scale (as before), a handful at real delays.
    busy = (timeline.complete + 4) / api.seconds(SLOWEST_TASK_SECONDS)
    tasks = [
        client.post("/tasks", json={"type": "repeat_by_position", "data": "abc"}).json()["task_id"]
        for _ in range(min(60, math.ceil(busy) + 1))
    ]
    created = client.post("/cases", json={"procedure_name": "Shoulder Arthroscopy"})
    assert created.status_code == 201, created.text
    case_id = created.json()["case_id"]

    seen = watch(client, case_id, created_epoch(created), timeline, until=10 + timeline.complete)
    last_task = client.get(f"/tasks/{tasks[-1]}").json()
    assert last_task["status"] == "pending", "the lane was not busy: the test proves nothing"
    assert last_task["queue_position"] > 0
    assert [RANK[s] for s in seen] == sorted(RANK[s] for s in seen)  # never backwards
    for task_id in tasks:
        api.wait_for(client, task_id)


@pytest.mark.local_only(reason="reads the local cloud's table (moto's DynamoDB) directly")
def test_the_transitions_are_stored_without_any_reader(api: Api, client: httpx.Client) -> None:
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

    def stored() -> dict[str, Any]:
        item: dict[str, Any] = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)[
            "Item"
        ]
        return item

    # SQS delays are whole seconds: 1 s here, then a poll
    assert eventually(lambda: stored()["status"]["S"] == "complete", timeout=15, interval=0.1)
    item = stored()
    assert item["status"] == {"S": "complete"}
    assert item["steps"]["L"]
    assert item["is_complete"] == {"BOOL": True}


def test_cases_list_newest_first_and_filter_by_status(api: Api, client: httpx.Client) -> None:
    ids = [client.post("/cases").json()["case_id"] for _ in range(3)]
    listed = client.get("/cases", params={"limit": 100}).json()
    assert [item["case_id"] for item in listed["items"]][:3] == ids[::-1]

    def all_complete() -> bool:
        complete = client.get("/cases", params={"status": "complete"}).json()["items"]
        return {item["case_id"] for item in complete} >= set(ids)

    # Every case is complete by its timeline (a little more against a loaded or remote stack)
    assert eventually(all_complete, timeout=Timeline.of(api).complete + 10, interval=0.1)
    assert client.get("/cases", params={"status": "submitted"}).json()["items"] == []
    assert client.get("/cases", params={"limit": 101}).status_code == 422
