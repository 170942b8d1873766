"""Text tasks over HTTP, exactly as a client sees them."""

import itertools
from typing import Any

import httpx
import pytest

from ordo.tasks import TRANSFORMS, TaskType
from tests.e2e.conftest import Api, busy_lane
from tests.waiting import eventually


def submit(client: httpx.Client, task_type: str, data: str) -> str:
    response = client.post("/tasks", json={"type": task_type, "data": data})
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/tasks/{response.json()['task_id']}"
    return str(response.json()["task_id"])


@pytest.mark.parametrize(
    ("task_type", "data", "expected"),
    [
        ("reverse", "кот", "ток"),
        ("swap_pairs", "abcdef", "badcfe"),
        ("repeat_by_position", "abc", "abbccc"),
    ],
)
def test_each_task_runs_and_its_result_reads_back(
    api: Api, client: httpx.Client, task_type: str, data: str, expected: str
) -> None:
    task_id = submit(client, task_type, data)
    view = api.wait_for(client, task_id)
    assert view["status"] == "completed"
    for _ in range(2):
        response = client.get(f"/tasks/{task_id}/result")
        assert response.status_code == 200
        assert response.json()["result"] == expected


def test_tasks_run_one_at_a_time_in_acceptance_order(api: Api, client: httpx.Client) -> None:
    kinds = list(TaskType)
    submitted = [(submit(client, kinds[n % 3], f"t{n}"), kinds[n % 3], f"t{n}") for n in range(12)]
    views = [api.wait_for(client, task_id) for task_id, _, _ in submitted]
    assert [v["status"] for v in views] == ["completed"] * 12
    for earlier, later in itertools.pairwise(views):
        assert earlier["finished_at"] <= later["started_at"]
    for task_id, kind, data in submitted:
        assert client.get(f"/tasks/{task_id}/result").json()["result"] == TRANSFORMS[kind](data)


def test_a_task_waiting_in_line_reports_its_position_and_no_result(
    api: Api, client: httpx.Client
) -> None:
    # Given a lane busy for a while yet
    busy_lane(api)
    # When a task joins it
    task_id = submit(client, "repeat_by_position", "abc")
    # Then it waits its turn, with tasks ahead of it and no result yet
    waiting = client.get(f"/tasks/{task_id}").json()
    assert waiting["status"] == "pending", waiting
    assert waiting["queue_position"] >= 1, waiting
    response = client.get(f"/tasks/{task_id}/result")
    assert (response.status_code, response.json()["status"]) == (409, "pending"), response.text
    assert api.wait_for(client, task_id)["status"] == "completed"


def test_unknown_task_is_404(client: httpx.Client) -> None:
    for path in ("/tasks/" + "0" * 32, "/tasks/" + "0" * 32 + "/result", "/tasks/bad-id"):
        response = client.get(path)
        assert (response.status_code, response.json()) == (404, {"detail": "Task not found"})


def test_invalid_submission_is_422_naming_the_problem(client: httpx.Client) -> None:
    response = client.post("/tasks", json={"type": "repeat_by_position", "data": "x" * 301})
    assert response.status_code == 422
    assert "at most 300" in response.json()["detail"]
    response = client.post("/tasks", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_my_jobs_lists_the_callers_tasks_newest_first_with_their_results(
    api: Api, client: httpx.Client
) -> None:
    first = submit(client, "reverse", "abc")
    second = submit(client, "swap_pairs", "abcd")
    for task_id in (first, second):
        assert api.wait_for(client, task_id)["status"] == "completed"

    # The listing reads an index, which DynamoDB brings up to date within about a second.
    def listed() -> dict[str, Any]:
        response = client.get("/jobs")
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        return page

    eventually(
        lambda: [item["status"] for item in listed()["items"]] == ["completed"] * 2,
        timeout=10,
        interval=0.1,
    )
    page = listed()
    assert [item["job_id"] for item in page["items"]] == [second, first]
    assert [(item["kind"], item["status"], item["result"]) for item in page["items"]] == [
        ("swap_pairs", "completed", "badc"),
        ("reverse", "completed", "cba"),
    ]
    assert page["next_cursor"] is None
    one = client.get("/jobs", params={"limit": 1}).json()
    assert [item["job_id"] for item in one["items"]] == [second]
    rest = client.get("/jobs", params={"limit": 1, "cursor": one["next_cursor"]}).json()
    assert [item["job_id"] for item in rest["items"]] == [first]
    assert client.get("/jobs", params={"cursor": "nope"}).status_code == 422
