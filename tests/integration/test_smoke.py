from tests.harness import Cloud


def test_submit_drain_result(cloud: Cloud) -> None:
    accepted = cloud.request("POST", "/tasks", {"type": "reverse", "data": "кот"})
    assert accepted.status == 202, accepted.body
    task_id = accepted.body["task_id"]
    assert accepted.headers["location"] == f"/tasks/{task_id}"
    status = cloud.request("GET", f"/tasks/{task_id}")
    assert status.body["status"] == "pending"
    assert status.body["queue_position"] == 0
    cloud.drain()
    result = cloud.request("GET", f"/tasks/{task_id}/result")
    assert result.status == 200
    assert result.body["result"] == "ток"
