"""The speed patches of ``infra.local.moto_fidelity`` and the local cloud's moto server answer
every call the lane makes exactly as moto does unpatched, behind werkzeug's own server:
the same items, counts and attributes, and the same condition failures. A client served in
process (``motoserver.InProcess``) hands moto the same requests and gets the same answers.

Each run starts from moto's reset state and makes the same calls; the answers are compared
with what changes from run to run (request ids, message ids, receipts, dates) masked.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.session import get_session

from bench.common import free_port
from infra.local import moto_fidelity
from infra.local.motoserver import MotoServer
from infra.local.stack import Stack

SPEED = (
    "dispatch_lookups",
    "attribute_values",
    "update_expressions",
    "expression_traversal",
    "condition_expressions",
    "camelcase_names",
    "message_signals",
)
REGION = "us-east-1"
MASKED = {
    "RequestId",
    "MessageId",
    "ReceiptHandle",
    "SequenceNumber",
    "HTTPHeaders",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
}
BINARY = base64.b64encode(b"\x00\xffbinary").decode()


def _client(service: str, url: str) -> Any:
    return get_session().create_client(
        service,
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"total_max_attempts": 1}),  # moto's 500s answer once
    )


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "<masked>" if k in MASKED else _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, str):  # a receipt or message id quoted in an error message
        return re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<id>", value)
    return value


def _answer(call: Callable[[], Any]) -> Any:
    try:
        return _masked(call())
    except ClientError as error:
        return _masked({"error": error.response})


def lane_calls(url: str, attach: Callable[[Any], Any] = lambda client: client) -> list[Any]:
    """What the lane asks of DynamoDB and SQS, with every attribute type and every failure."""
    dynamodb, sqs = attach(_client("dynamodb", url)), attach(_client("sqs", url))
    stack = Stack.load(region=REGION)
    stack.provision(dynamodb, sqs)
    table = stack.physical["JobsTable"]["Ref"]
    queue = stack.queue_url("JobsQueue")
    key = {"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}}
    quota = {"pk": {"S": "QUOTA#o"}, "sk": {"S": "PENDING"}}
    item = key | {
        "status": {"S": "pending"},
        "attempt": {"N": "0"},
        "lane": {"S": "LANE#jobs"},
        "seq": {"N": "5"},
        "flag": {"BOOL": True},
        "none": {"NULL": True},
        "tags": {"SS": ["a", "b"]},
        "sizes": {"NS": ["1", "2.5"]},
        "blob": {"B": BINARY},
        "blobs": {"BS": [BINARY]},
        "nested": {"M": {"list": {"L": [{"S": "x"}, {"N": "1"}, {"B": BINARY}]}, "m": {"M": {}}}},
        "plain": {"M": {"empty": {"L": []}, "text": {"S": ""}}},
    }
    other = {"pk": {"S": "JOB#2"}, "sk": {"S": "JOB"}, "lane": {"S": "LANE#jobs"}}
    claim = {
        "TableName": table,
        "Key": key,
        "UpdateExpression": "SET #status = :processing, #attempt = :next REMOVE #lane",
        "ConditionExpression": "attribute_exists(pk) AND #status = :pending AND #attempt = :zero",
        "ExpressionAttributeNames": {"#status": "status", "#attempt": "attempt", "#lane": "lane"},
        "ExpressionAttributeValues": {
            ":processing": {"S": "processing"},
            ":pending": {"S": "pending"},
            ":next": {"N": "1"},
            ":zero": {"N": "0"},
        },
    }
    count = {
        "TableName": table,
        "IndexName": "queue",
        "KeyConditionExpression": "lane = :lane AND seq < :seq",
        "ExpressionAttributeValues": {":lane": {"S": "LANE#jobs"}, ":seq": {"N": "9"}},
    }
    answers = [
        _answer(lambda: dynamodb.put_item(TableName=table, Item=item)),
        _answer(lambda: dynamodb.put_item(TableName=table, Item=other | {"seq": {"N": "3"}})),
        _answer(lambda: dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)),
        _answer(lambda: dynamodb.get_item(TableName=table, Key=quota, ConsistentRead=True)),
        _answer(lambda: dynamodb.query(**count, Select="COUNT")),
        _answer(lambda: dynamodb.query(**count)),
        _answer(
            lambda: dynamodb.transact_write_items(
                TransactItems=[
                    {"Update": claim},
                    {
                        "Update": {
                            "TableName": table,
                            "Key": quota,
                            "UpdateExpression": "ADD pending :minus_one",
                            "ExpressionAttributeValues": {":minus_one": {"N": "-1"}},
                        }
                    },
                ]
            )
        ),
        # The same claim again: its condition fails, in a transaction and alone.
        _answer(
            lambda: dynamodb.transact_write_items(
                TransactItems=[
                    {"Update": claim | {"ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}
                ]
            )
        ),
        _answer(lambda: dynamodb.update_item(**claim, ReturnValues="ALL_NEW")),
        _answer(
            lambda: dynamodb.update_item(
                **claim, ReturnValuesOnConditionCheckFailure="ALL_OLD", ReturnValues="ALL_NEW"
            )
        ),
        _answer(
            lambda: dynamodb.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET #status = :done, #result = :result",
                ConditionExpression="#status = :processing",
                ExpressionAttributeNames={"#status": "status", "#result": "result"},
                ExpressionAttributeValues={
                    ":done": {"S": "completed"},
                    ":processing": {"S": "processing"},
                    ":result": {"S": "tlusér"},
                },
                ReturnValues="ALL_NEW",
            )
        ),
        _answer(lambda: dynamodb.query(**count, Select="COUNT")),
        _answer(lambda: dynamodb.scan(TableName=table)),
        # Malformed, twice: an error is never remembered as a parsed expression.
        *[
            _answer(
                lambda: dynamodb.update_item(
                    TableName=table, Key=key, UpdateExpression="SET #a = = :b"
                )
            )
            for _ in range(2)
        ],
        # One condition with other values each time: a kept parse answers for its own values.
        *[
            _answer(
                partial(
                    dynamodb.update_item,
                    TableName=table,
                    Key={"pk": {"S": "JOB#2"}, "sk": {"S": "JOB"}},
                    UpdateExpression="SET #seq = :seq",
                    ConditionExpression="#lane = :lane AND attribute_exists(#seq)",
                    ExpressionAttributeNames={"#lane": "lane", "#seq": "seq"},
                    ExpressionAttributeValues={":lane": {"S": lane}, ":seq": {"N": "4"}},
                    ReturnValues="ALL_NEW",
                )
            )
            for lane in ("LANE#jobs", "LANE#other", "LANE#jobs")
        ],
        # A malformed condition (moto fails) and one naming a value not given, each twice.
        *[
            _answer(
                partial(
                    dynamodb.update_item,
                    TableName=table,
                    Key=key,
                    UpdateExpression="SET #a = :b",
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#a": "a"},
                    ExpressionAttributeValues={":b": {"S": "x"}},
                )
            )
            for condition in ("#a = = :b", "#a = = :b", "#a = :b", "#a = :missing", "#a = :missing")
        ],
    ]
    for body in ("one", "two", "three"):
        answers.append(
            _masked(
                sqs.send_message(
                    QueueUrl=queue,
                    MessageBody=body,
                    MessageGroupId="jobs",
                    MessageDeduplicationId=body,
                )
            )
        )
    received = sqs.receive_message(
        QueueUrl=queue, MaxNumberOfMessages=2, MessageSystemAttributeNames=["All"]
    )["Messages"]
    answers.append(
        _masked([(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in received])
    )
    answers.append(
        _answer(
            lambda: sqs.change_message_visibility(
                QueueUrl=queue, ReceiptHandle=received[1]["ReceiptHandle"], VisibilityTimeout=0
            )
        )
    )
    answers.append(
        _answer(
            lambda: sqs.delete_message_batch(
                QueueUrl=queue,
                Entries=[
                    {"Id": "0", "ReceiptHandle": received[0]["ReceiptHandle"]},
                    {"Id": "1", "ReceiptHandle": "not-a-receipt"},
                ],
            )
        )
    )
    again = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    answers.append([m["Body"] for m in again])
    answers.append(
        _answer(lambda: sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"]))
    )
    return answers


def _reset(url: str) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).close()


@contextmanager
def _moto() -> Iterator[tuple[MotoServer, str]]:
    """A started MotoServer, reset, and its URL; stopped afterwards."""
    server = MotoServer()
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        _reset(url)
        yield server, url
    finally:
        server.stop()


@pytest.fixture
def patched() -> Iterator[None]:
    moto_fidelity.apply()
    yield
    moto_fidelity.apply()  # as the other tests expect it


def _unpatched_answers() -> list[Any]:
    """The calls against werkzeug's server, with the speed patches undone."""
    from moto.server import ThreadedMotoServer

    with moto_fidelity.undone(*SPEED):
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            _reset(f"http://{host}:{port}")
            return lane_calls(f"http://{host}:{port}")
        finally:
            server.stop()


def _patched_answers(in_process: bool = False) -> list[Any]:
    with _moto() as (server, url):
        attach = server.attach if in_process else (lambda client: client)
        return lane_calls(url, attach)


def test_patched_moto_answers_the_lanes_calls_as_unpatched_moto_does(patched: None) -> None:
    unpatched = _unpatched_answers()
    answers = _patched_answers()
    assert len(answers) == len(unpatched)
    for number, (mine, theirs) in enumerate(zip(answers, unpatched, strict=True)):
        assert mine == theirs, f"call {number}"
    # The sequence reached every kind of answer it is meant to compare.
    assert "CancellationReasons" in str(unpatched[7])
    assert "ConditionalCheckFailedException" in str(unpatched[8])
    assert unpatched[4]["Count"] == 2
    assert "ValidationException" in str(unpatched[13]) == str(unpatched[14])
    assert [str(a).count("ConditionalCheckFailed") for a in unpatched[15:18]] == [0, 1, 0]
    assert "500" in str(unpatched[18]) == str(unpatched[19])  # moto fails on its ValueError
    assert "ConditionalCheckFailed" in str(unpatched[20])  # a is not set
    assert "500" in str(unpatched[21]) == str(unpatched[22])  # a KeyError in moto
    assert unpatched[-3]["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"


def test_in_process_clients_get_the_servers_answers(patched: None) -> None:
    over_http = _patched_answers()
    in_process = _patched_answers(in_process=True)
    for number, (mine, theirs) in enumerate(zip(in_process, over_http, strict=True)):
        assert mine == theirs, f"call {number}"
    assert in_process[-3]["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"


# Differ from one request to the next, or belong to the socket.
PER_REQUEST = {
    "wsgi.input",
    "werkzeug.socket",
    "REMOTE_PORT",
    "HTTP_AUTHORIZATION",
    "HTTP_X_AMZ_DATE",
    "HTTP_AMZ_SDK_INVOCATION_ID",
}


def test_in_process_requests_reach_moto_as_the_servers_do(
    patched: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto's app gets the environ werkzeug's server builds, and the same body."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    seen: list[dict[str, Any]] = []
    original = DomainDispatcherApplication.__call__

    def capture(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        body = environ["wsgi.input"].getvalue()
        seen.append({k: v for k, v in environ.items() if k not in PER_REQUEST} | {"body": body})
        return original(self, environ, start_response)

    monkeypatch.setattr(DomainDispatcherApplication, "__call__", capture)
    with _moto() as (server, url):
        for sqs in (_client("sqs", url), server.attach(_client("sqs", url))):
            sqs.create_queue(QueueName="same")
            sqs.send_message(QueueUrl=f"{url}/123456789012/same", MessageBody="é ü")
        for dynamodb in (_client("dynamodb", url), server.attach(_client("dynamodb", url))):
            with pytest.raises(ClientError):
                dynamodb.get_item(TableName="none", Key={"pk": {"S": "a b/ü"}})
    requests = seen[1:]  # after the reset
    assert len(requests) == 6
    for over_http, in_process in ((0, 2), (1, 3), (4, 5)):
        assert requests[in_process] == requests[over_http]


def test_a_client_of_another_endpoint_is_not_served_in_process() -> None:
    from botocore.exceptions import EndpointConnectionError

    with _moto() as (server, _):
        elsewhere = _client("sqs", f"http://127.0.0.1:{free_port()}")  # nothing listens
        server.attach(elsewhere)
        with pytest.raises(EndpointConnectionError):
            elsewhere.list_queues()


def test_undo_puts_moto_back(patched: None) -> None:
    from moto.core.serialize import JSONSerializer
    from moto.sqs.models import SQSBackend

    patched_send = SQSBackend.send_message
    patched_structure = JSONSerializer._serialize_type_structure
    with moto_fidelity.undone(*SPEED):
        assert JSONSerializer._serialize_type_structure is not patched_structure
        assert "_serialize_type_structure" not in vars(JSONSerializer)  # inherited, as before
        assert SQSBackend.send_message is not patched_send
    assert SQSBackend.send_message is not patched_send  # a fresh wrapper, same behaviour
    assert "attribute_values" in moto_fidelity.applied()


def test_sends_visibility_zero_and_deletes_are_announced(patched: None) -> None:
    """What may let a receive find a message is announced on its queue, nothing else is."""
    with _moto() as (_, url):
        sqs = _client("sqs", url)
        queue = sqs.create_queue(QueueName="signals")["QueueUrl"]
        signals = moto_fidelity.message_signals

        def announced(call: Callable[[], Any]) -> bool:
            seen = signals.seen("signals")
            call()
            return signals.seen("signals") > seen

        assert announced(lambda: sqs.send_message(QueueUrl=queue, MessageBody="a"))
        assert announced(
            lambda: sqs.send_message_batch(
                QueueUrl=queue, Entries=[{"Id": "b", "MessageBody": "b"}]
            )
        )
        handles = [
            m["ReceiptHandle"]
            for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=2)["Messages"]
        ]
        assert not announced(lambda: sqs.get_queue_attributes(QueueUrl=queue))
        assert not announced(
            lambda: sqs.change_message_visibility(
                QueueUrl=queue, ReceiptHandle=handles[0], VisibilityTimeout=30
            )
        )
        assert announced(
            lambda: sqs.change_message_visibility(
                QueueUrl=queue, ReceiptHandle=handles[0], VisibilityTimeout=0
            )
        )
        assert announced(lambda: sqs.delete_message(QueueUrl=queue, ReceiptHandle=handles[1]))


def test_a_waiter_wakes_on_its_queues_announcement_only() -> None:
    signals = moto_fidelity.MessageSignals()
    woke: list[bool] = []
    seen = signals.seen("lane")
    waiting = threading.Thread(target=lambda: woke.append(signals.wait("lane", seen, 30)))
    waiting.start()
    signals.announce("other")
    assert not signals.wait("lane", seen, 0)
    signals.announce("lane")
    waiting.join(timeout=30)
    assert woke == [True]
    assert signals.wait("lane", seen, 0)  # announced before the wait: not missed


def test_the_server_keeps_connections_open() -> None:
    """Many requests on one connection, a chunked body, and a HEAD without a body."""
    import http.client

    with _moto() as (server, _):
        host, port = server.get_host_and_port()
        connection = http.client.HTTPConnection(host, port, timeout=10)
        sqs = {
            "Content-Type": "application/x-www-form-urlencoded",
            # moto picks the service from the credential scope
            "Authorization": "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/sqs/aws4_request",
        }
        for _ in range(3):
            connection.request(
                "POST",
                "/",
                body=b"Action=ListQueues&Version=2012-11-05",
                headers=sqs,
            )
            response = connection.getresponse()
            assert response.status == 200
            assert b"ListQueuesResponse" in response.read()
        first_socket = connection.sock
        connection.request(
            "POST",
            "/",
            body=iter([b"Action=ListQueues", b"&Version=2012-11-05"]),
            headers=sqs,
            encode_chunked=True,
        )
        chunked = connection.getresponse()
        assert chunked.status == 200
        assert b"ListQueuesResponse" in chunked.read()
        connection.request("HEAD", "/moto-api/")
        head = connection.getresponse()
        assert head.read() == b""
        assert connection.sock is first_socket
        connection.close()
