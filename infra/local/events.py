"""Real Lambda events, built from the generated samples in ``infra/events/``.

Used by the local cloud's gateway and event source mappings, and by the integration tests.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parents[1] / "events"


@cache
def _sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())  # type: ignore[no-any-return]


def http_event(
    method: str,
    path: str,
    *,
    route: str,
    route_method: str | None = None,
    path_parameters: Mapping[str, str] | None = None,
    query: str = "",
    headers: Mapping[str, str] | None = None,
    body: bytes | str | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An API Gateway HttpApi (payload format 2.0) event, as API Gateway builds it.

    ``route_method`` is the method of the matched route (``ANY`` for an any-method route);
    ``routeKey`` carries it, while ``requestContext.http.method`` has the request's.
    """
    event = copy.deepcopy(_sample("status"))
    lowered: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in (headers or {}).items():
        if name.lower() == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    route_key = f"{route_method or method} {route}"
    context = event["requestContext"]
    now = datetime.now(UTC)
    context.update(
        {
            "routeKey": route_key,
            "requestId": uuid.uuid4().hex[:16],
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
            "domainName": lowered.get("host", context["domainName"]),
        }
    )
    context["http"].update(
        {
            "method": method,
            "path": path,
            "sourceIp": source_ip,
            "userAgent": lowered.get("user-agent", ""),
        }
    )
    event.update({"routeKey": route_key, "rawPath": path, "rawQueryString": query})
    event["headers"] = lowered
    for key in ("cookies", "pathParameters", "queryStringParameters", "body"):
        event.pop(key, None)
    if cookies:
        event["cookies"] = cookies
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if query:
        event["queryStringParameters"] = _query_parameters(query)
    event["isBase64Encoded"] = False
    if body:
        raw = body.encode() if isinstance(body, str) else body
        if _is_text(lowered.get("content-type", ""), raw):
            event["body"] = raw.decode()
        else:
            event["body"] = base64.b64encode(raw).decode()
            event["isBase64Encoded"] = True
    return event


def _query_parameters(query: str) -> dict[str, str]:
    from urllib.parse import parse_qsl

    merged: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        merged[name] = f"{merged[name]},{value}" if name in merged else value
    return merged


def _is_text(content_type: str, raw: bytes) -> bool:
    """API Gateway base64-encodes any body it cannot pass on as UTF-8 text."""
    textual = content_type.startswith("text/") or any(
        kind in content_type for kind in ("json", "xml", "x-www-form-urlencoded", "javascript")
    )
    if not textual:
        return False
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


def sqs_event(messages: Iterable[Mapping[str, Any]], queue_arn: str) -> dict[str, Any]:
    """A Lambda SQS event from ``ReceiveMessage`` results (asked with all attributes)."""
    region = queue_arn.split(":")[3]
    return {"Records": [_sqs_record(message, queue_arn, region) for message in messages]}


def _sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    body = message["Body"]
    attributes = dict(message.get("Attributes", {}))
    attributes.setdefault("SentTimestamp", str(int(time.time() * 1000)))
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": attributes,
        "messageAttributes": {
            name: _lambda_message_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _lambda_message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """SQS API casing (StringValue) to Lambda event casing (stringValue)."""
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": value.get("BinaryValue"),
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": value.get("BinaryListValues", []),
        "dataType": value.get("DataType"),
    }
