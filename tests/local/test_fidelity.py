"""Each test checks one AWS behaviour the local cloud emulates; its docstring names the rule."""

from __future__ import annotations

import base64
import json
import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from infra.local.cloud import LocalCloud
from infra.local.esm import SqsEventSource
from tests.local.conftest import FIXTURE, aws, records
from tests.waiting import eventually

# --- API Gateway (HttpApi, payload format 2.0) ----------------------------------------------


def echo(http: httpx.Client, path: str, **kwargs: Any) -> dict[str, Any]:
    response = http.request(str(kwargs.pop("method", "GET")), path, **kwargs)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_v2_event_carries_raw_path_query_lowercased_headers_and_http_context(
    http: httpx.Client,
) -> None:
    """HttpApi payload 2.0: rawPath, rawQueryString, lowercased headers, requestContext.http."""
    event = echo(http, "/items/42?b=2&a=1&a=3", headers={"X-Custom": "Yes"})["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /items/{item_id}"
    assert event["rawPath"] == "/items/42"
    assert event["rawQueryString"] == "b=2&a=1&a=3"
    assert event["queryStringParameters"] == {"b": "2", "a": "1,3"}
    assert event["pathParameters"] == {"item_id": "42"}
    assert event["headers"]["x-custom"] == "Yes"
    assert all(name == name.lower() for name in event["headers"])
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["requestContext"]["http"]["path"] == "/items/42"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["isBase64Encoded"] is False


def test_greedy_proxy_path_and_any_method(http: httpx.Client) -> None:
    """HttpApi routes: {proxy+} matches the rest of the path; ANY matches every method."""
    event = echo(http, "/echo/a/b/c", method="DELETE")["event"]
    assert event["pathParameters"] == {"proxy": "a/b/c"}
    assert event["routeKey"] == "ANY /echo/{proxy+}"


def test_cookies_are_split_out_and_set_cookie_returned(http: httpx.Client) -> None:
    """Payload 2.0 moves request cookies to `cookies` and response `cookies` to Set-Cookie."""
    response = http.get("/echo/c", headers={"Cookie": "a=1; b=2"})
    assert response.json()["event"]["cookies"] == ["a=1", "b=2"]
    assert "cookie" not in response.json()["event"]["headers"]
    assert response.headers["set-cookie"] == "seen=1; Path=/"


def test_binary_body_arrives_base64_encoded(http: httpx.Client) -> None:
    """API Gateway base64-encodes a body it cannot pass as UTF-8 text (isBase64Encoded)."""
    raw = bytes(range(256))
    event = echo(
        http,
        "/echo/bin",
        method="POST",
        content=raw,
        headers={"content-type": "application/octet-stream"},
    )["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


def test_text_body_arrives_as_text(http: httpx.Client) -> None:
    event = echo(http, "/echo/t", method="POST", json={"ж": 1})["event"]
    assert event["isBase64Encoded"] is False
    assert json.loads(event["body"]) == {"ж": 1}


def test_unknown_route_is_404_message_not_found(http: httpx.Client) -> None:
    """API Gateway answers a request no route matches with 404 {"message":"Not Found"}."""
    response = http.get("/nowhere")
    assert (response.status_code, response.json()) == (404, {"message": "Not Found"})


def test_unhandled_function_error_is_500(http: httpx.Client) -> None:
    """An unhandled function error reaches the client as 500 {"message":"Internal Server Error"}."""
    response = http.get("/boom")
    assert (response.status_code, response.json()) == (500, {"message": "Internal Server Error"})


# --- Lambda: environment, timeout, concurrency, reload ---------------------------------------


def test_function_sees_template_environment_and_shell_overrides(http: httpx.Client) -> None:
    """Lambda environment from the template; ORDO_* from the shell override it (sam --env-vars)."""
    env = echo(http, "/items/1")["env"]
    assert env["FROM_TEMPLATE"] == "template-value"
    assert env["ORDO_FIXTURE"] == "from-shell"
    assert str(env["RECORDS_TABLE"]).endswith("RecordsTable")


def test_timeout_kills_the_invocation_and_a_fresh_process_serves_the_next(
    http: httpx.Client,
) -> None:
    """Lambda stops an invocation at its Timeout (1 s here); the local gateway answers 503."""
    first = http.get("/sleep/0")
    started = time.monotonic()
    response = http.get("/sleep/5")
    assert (response.status_code, response.json()) == (503, {"message": "Service Unavailable"})
    assert time.monotonic() - started < 4
    after = http.get("/sleep/0")
    assert after.status_code == 200
    assert after.text != first.text  # a new process (pid) replaced the killed one


def test_reserved_concurrency_throttles_the_second_concurrent_invocation(
    cloud: LocalCloud, http: httpx.Client
) -> None:
    """ReservedConcurrentExecutions: 1 lets one invocation run; a concurrent one is throttled."""
    http.get("/single/0")  # warm
    host = cloud.functions.hosts["SingleFunction"]
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(http.get, "/single/1.5")
        assert eventually(lambda: host.in_flight() == 1)
        throttled = pool.submit(http.get, "/single/0").result()
        assert slow.result().status_code == 200
    assert throttled.status_code == 500


def test_code_change_reaches_the_next_invocation(cloud: LocalCloud, http: httpx.Client) -> None:
    """Reload: an edit under functions/ is live on the next invocation, with no restart."""
    source = FIXTURE.parent / "functions" / "echo" / "app.py"
    original = source.read_text()
    try:
        assert echo(http, "/items/1")["version"] == 1
        source.write_text(original.replace('"version": 1', '"version": 2'))
        assert eventually(lambda: echo(http, "/items/1")["version"] == 2, timeout=10)
    finally:
        source.write_text(original)
        eventually(lambda: echo(http, "/items/1")["version"] == 1, timeout=10)


# --- SQS event source mapping ----------------------------------------------------------------


def send(cloud: LocalCloud, *bodies: str) -> None:
    """One SendMessageBatch, so the first poll sees every message."""
    aws(cloud, "sqs").send_message_batch(
        QueueUrl=cloud.stack.queue_url("Lane"),
        Entries=[
            {
                "Id": str(n),
                "MessageBody": body,
                "MessageGroupId": "g",
                "MessageDeduplicationId": str(uuid.uuid4()),
            }
            for n, body in enumerate(bodies)
        ],
    )


def went_round(cloud: LocalCloud, function: str) -> None:
    """Wait until ``function``'s mapping has polled with the local clock as it reads now: it
    began two sleeps on the clock since (it sleeps there between polls while it holds back a
    failed batch)."""
    thread = f"esm-{function}"
    begun = cloud.clock.sleeps_begun(thread)
    assert eventually(lambda: cloud.clock.sleeps_begun(thread) >= begun + 2)


def event_source(cloud: LocalCloud, function: str) -> SqsEventSource:
    sources: list[SqsEventSource] = cloud.event_sources
    return next(s for s in sources if s.function == function)


def lane_bodies(cloud: LocalCloud, since: int) -> list[tuple[str, int]]:
    rows = sorted(records(cloud, "seen"), key=lambda r: float(r["sk"]))
    return [(r["body"], int(r["receive_count"])) for r in rows][since:]


def bodies(cloud: LocalCloud, since: int) -> list[str]:
    return [body for body, _ in lane_bodies(cloud, since)]


def test_failed_batch_returns_after_the_visibility_timeout_in_fifo_order(cloud: LocalCloud) -> None:
    """SQS FIFO: failed records reappear only after VisibilityTimeout (30 s), in their order."""
    before = len(records(cloud, "seen"))
    send(cloud, "fail-first", "b", "c")
    assert eventually(lambda: lane_bodies(cloud, before) == [("fail-first", 1)])
    cloud.clock.advance(20)  # less than the visibility timeout
    went_round(cloud, "ConsumerFunction")
    assert lane_bodies(cloud, before) == [("fail-first", 1)]
    cloud.clock.advance(11)
    # b and c ran after fail-first's retry, in order. They may have shared its first batch
    # (receive count 2) or have been held back behind it in the group (count 1): SQS allows both.
    expected = ["fail-first", "fail-first", "b", "c"]
    assert eventually(lambda: bodies(cloud, before) == expected), lane_bodies(cloud, before)
    assert [count for body, count in lane_bodies(cloud, before) if body == "fail-first"] == [1, 2]


def test_message_moves_to_the_dlq_after_max_receive_count(cloud: LocalCloud) -> None:
    """SQS redrive: after maxReceiveCount (2) receives, the message moves to the DLQ."""
    before = len(records(cloud, "seen"))
    send(cloud, "fail-always")
    assert eventually(lambda: lane_bodies(cloud, before) == [("fail-always", 1)])
    cloud.clock.advance(31)
    assert eventually(lambda: len(lane_bodies(cloud, before)) == 2)
    cloud.clock.advance(31)
    sqs = aws(cloud, "sqs")
    dlq = cloud.stack.queue_url("LaneDeadLetters")

    def dead() -> list[str]:
        messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
        return [m["Body"] for m in messages]

    assert eventually(dead) == ["fail-always"]
    assert lane_bodies(cloud, before) == [("fail-always", 1), ("fail-always", 2)]


def test_timed_out_batch_comes_back_after_the_visibility_timeout(cloud: LocalCloud) -> None:
    """Lambda kills a batch at Timeout (2 s); SQS redelivers it after the visibility timeout."""
    source = event_source(cloud, "ConsumerFunction")
    failed = source.stats.failed
    before = len(records(cloud, "seen"))
    send(cloud, "slow-first", "after-slow")
    assert eventually(lambda: lane_bodies(cloud, before) == [("slow-first", 1)])
    # The function's own 2 s timeout ends the invocation (a function runs on real time): the
    # mapping then holds the whole batch back for the visibility timeout, on the local clock.
    assert eventually(lambda: source.stats.failed == failed + 2)
    assert source.awaiting_visibility == 2
    cloud.clock.advance(31)
    expected = ["slow-first", "slow-first", "after-slow"]
    assert eventually(lambda: bodies(cloud, before) == expected, timeout=15), lane_bodies(
        cloud, before
    )
    assert [count for body, count in lane_bodies(cloud, before) if body == "slow-first"] == [1, 2]


# --- EventBridge schedules and DynamoDB TTL --------------------------------------------------


def test_schedule_fires_when_the_clock_passes_it(cloud: LocalCloud) -> None:
    """EventBridge rate(5 minutes) delivers a 'Scheduled Event'; a disabled rule never fires."""
    before = len(records(cloud, "tick"))
    cloud.clock.advance(301)
    assert eventually(lambda: len(records(cloud, "tick")) > before)
    event = json.loads(sorted(records(cloud, "tick"), key=lambda r: float(r["sk"]))[-1]["event"])
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["resources"][0].startswith("arn:aws:events:us-east-1:")
    fired_rules = {rule for rule, _ in cloud.scheduler.fired}
    assert not any("Disabled" in rule for rule in fired_rules)


def test_ttl_deletes_expired_items(cloud: LocalCloud) -> None:
    """DynamoDB TTL deletes items whose TTL attribute (epoch seconds) is in the past."""
    dynamodb = aws(cloud, "dynamodb")
    table = cloud.stack.physical["RecordsTable"]["Ref"]
    now = int(cloud.clock.time())
    for sk, expires in (("old", now - 10), ("new", now + 3600)):
        dynamodb.put_item(
            TableName=table,
            Item={"pk": {"S": "ttl"}, "sk": {"S": sk}, "expires_at": {"N": str(expires)}},
        )
    assert eventually(lambda: [r["sk"] for r in records(cloud, "ttl")] == ["new"])


# --- SQS: visibility the function changes, and a function process that dies -----------------

HANDBACK_VT = 30  # the Handback queue's VisibilityTimeout


def handback_source(cloud: LocalCloud) -> SqsEventSource:
    return event_source(cloud, "HandbackFunction")


def send_handback(cloud: LocalCloud, *bodies: str) -> None:
    """One SendMessageBatch to one group while the mapping is held, so one receive takes all."""
    with handback_source(cloud).paused():
        aws(cloud, "sqs").send_message_batch(
            QueueUrl=cloud.stack.queue_url("Handback"),
            Entries=[
                {"Id": str(n), "MessageBody": body, "MessageGroupId": "h"}
                for n, body in enumerate(bodies)
            ],
        )


def handback_rows(cloud: LocalCloud, since: int = 0) -> list[tuple[str, int]]:
    rows = sorted(records(cloud, "handback"), key=lambda r: float(r["sk"]))
    return [(r["body"], int(r["receive_count"])) for r in rows][since:]


def handback_depth(cloud: LocalCloud, queue: str = "Handback") -> int:
    attributes = aws(cloud, "sqs").get_queue_attributes(
        QueueUrl=cloud.stack.queue_url(queue),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def still(cloud: LocalCloud, since: int, expected: list[tuple[str, int]]) -> None:
    """Nothing more is delivered while the mapping goes round on the clock as it reads now."""
    went_round(cloud, "HandbackFunction")
    assert handback_rows(cloud, since) == expected


def test_messages_handed_back_with_visibility_0_return_at_once_in_order(
    cloud: LocalCloud,
) -> None:
    """SQS ChangeMessageVisibility(0) makes a message visible at once, and Lambda leaves the
    visibility of failed records alone: the FIFO tail a function hands back and reports as
    failures is delivered again without waiting out the visibility timeout, in order, with
    its receive count grown."""
    before = len(handback_rows(cloud))
    offset = cloud.clock.time() - time.time()
    send_handback(cloud, "release:0", "a", "b")
    expected = [("release:0", 1), ("a", 2), ("b", 2)]
    # Well inside the 30 s visibility timeout, on either clock: only the hand-back explains it.
    assert eventually(lambda: handback_rows(cloud, before) == expected), handback_rows(
        cloud, before
    )
    assert abs(cloud.clock.time() - time.time() - offset) < 1  # the clock was not advanced
    assert eventually(lambda: handback_depth(cloud) == 0)
    assert handback_source(cloud).awaiting_visibility == 0


def test_a_failed_message_left_untouched_waits_out_the_visibility_timeout(
    cloud: LocalCloud,
) -> None:
    """SQS: a failed record whose visibility nobody changed comes back only once the queue's
    VisibilityTimeout (30 s) has passed since the receive, in order."""
    before = len(handback_rows(cloud))
    send_handback(cloud, "ok", "fail", "c")
    first = [("ok", 1), ("fail", 1)]
    assert eventually(lambda: handback_rows(cloud, before) == first)
    assert eventually(lambda: handback_source(cloud).awaiting_visibility == 2)
    cloud.clock.advance(HANDBACK_VT - 10)
    still(cloud, before, first)
    cloud.clock.advance(11)
    expected = [*first, ("fail", 2), ("c", 2)]
    assert eventually(lambda: handback_rows(cloud, before) == expected), handback_rows(
        cloud, before
    )


def test_a_message_handed_back_behind_an_in_flight_one_waits_for_its_group(
    cloud: LocalCloud,
) -> None:
    """SQS FIFO: a message group stays locked while any of its messages is in flight. Records
    handed back at once behind a failed record that waits out its visibility timeout are
    delivered after it, in order, once that timeout passes."""
    before = len(handback_rows(cloud))
    send_handback(cloud, "fail+release:0", "a", "b")
    first = [("fail+release:0", 1)]
    assert eventually(lambda: handback_rows(cloud, before) == first)
    assert eventually(lambda: handback_source(cloud).awaiting_visibility == 1)
    still(cloud, before, first)
    cloud.clock.advance(HANDBACK_VT + 1)
    expected = [*first, ("fail+release:0", 2), ("a", 2), ("b", 2)]
    assert eventually(lambda: handback_rows(cloud, before) == expected), handback_rows(
        cloud, before
    )


def test_messages_handed_back_for_n_seconds_return_after_n_seconds(cloud: LocalCloud) -> None:
    """SQS ChangeMessageVisibility(N): the N seconds count from the call, not from the receive,
    and Lambda does not change them: the records come back once the local clock passes N."""
    before = len(handback_rows(cloud))
    send_handback(cloud, "release:10", "a", "b")
    first = [("release:10", 1)]
    assert eventually(lambda: handback_rows(cloud, before) == first)
    assert eventually(lambda: handback_source(cloud).awaiting_visibility == 2)
    cloud.clock.advance(5)
    still(cloud, before, first)
    cloud.clock.advance(6)
    expected = [*first, ("a", 2), ("b", 2)]
    assert eventually(lambda: handback_rows(cloud, before) == expected), handback_rows(
        cloud, before
    )


def test_a_killed_function_process_leaves_its_batch_to_the_visibility_timeout(
    cloud: LocalCloud, http: httpx.Client
) -> None:
    """Lambda: a runtime that dies mid-invocation (SIGKILL, Runtime.ExitError) fails the whole
    batch, so nothing is deleted; SQS delivers it again, in order, only once the queue's
    VisibilityTimeout has passed, and nothing is lost."""
    source = handback_source(cloud)
    before = len(handback_rows(cloud))
    failed = source.stats.failed
    send_handback(cloud, "hang", "x", "y")
    first = [("hang", 1)]
    assert eventually(lambda: handback_rows(cloud, before) == first)
    (pid,) = http.get("/_local/functions").json()["HandbackFunction"]
    os.kill(pid, signal.SIGKILL)
    assert eventually(lambda: source.awaiting_visibility == 3)
    assert source.stats.failed == failed + 3
    cloud.clock.advance(HANDBACK_VT - 10)
    still(cloud, before, first)
    assert handback_depth(cloud) == 3  # in flight, not deleted
    cloud.clock.advance(11)
    expected = [*first, ("hang", 2), ("x", 2), ("y", 2)]
    assert eventually(lambda: handback_rows(cloud, before) == expected), handback_rows(
        cloud, before
    )
    assert eventually(lambda: handback_depth(cloud) == 0)
    assert handback_depth(cloud, "HandbackDeadLetters") == 0
    assert pid not in http.get("/_local/functions").json()["HandbackFunction"]


# --- the generic emulator ---------------------------------------------------------------------


def test_the_generic_cloud_runs_the_fixture_without_an_application_hook(
    cloud: LocalCloud, http: httpx.Client
) -> None:
    """No StackSetup: the template runs as it is, with nothing of ordo's (no token keys, no
    admin) to wait for."""
    assert cloud.setup is None
    assert cloud.bootstrap is not None
    assert cloud.bootstrap.steps == []
    assert cloud.bootstrap.succeeded
    assert "Admin" not in cloud.banner()
    assert echo(http, "/items/7")["event"]["pathParameters"] == {"item_id": "7"}
