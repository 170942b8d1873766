"""Faults injected into the local cloud's functions, through their real code paths.

Preloaded into every function process with ``ORDO_LOCAL_PRELOAD=tests.faults`` (see
``infra/local/runtime.py``). It

* registers the ``fault`` job kind (``tests/kinds/fault.py``) with one registration line, as
  any new kind is added, so ``POST /jobs`` accepts it and the worker runs it;
* answers AWS calls with a real ``ThrottlingException`` response, through botocore's event
  hooks, while the JSON file named by ``ORDO_FAULTS_FILE`` asks for it::

      {"throttle": {"id": "t1", "function": "WorkerFunction", "service": "dynamodb",
                    "operation": "UpdateItem", "times": 3}}

  Each refusal is appended to ``<ORDO_FAULTS_FILE>.log``, one line per call.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders

from ordo import aws
from ordo.registry import KINDS
from tests.kinds.fault import FAULT

KINDS.register(FAULT)

_CONTROL = os.environ.get("ORDO_FAULTS_FILE", "")
_FUNCTION = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
_refused: dict[str, int] = {}  # refusals so far, per throttle id


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


def _plan() -> dict[str, Any]:
    try:
        plan: dict[str, Any] = json.loads(Path(_CONTROL).read_text()).get("throttle") or {}
    except (OSError, ValueError):
        return {}
    return plan


def _throttle(request: Any, event_name: str, **_: Any) -> AWSResponse | None:
    plan = _plan()
    operation = event_name.rsplit(".", 1)[-1]
    wanted = (plan.get("service"), plan.get("operation"))
    if (
        not plan
        or plan.get("function", "") not in _FUNCTION
        or wanted != tuple(event_name.split(".")[1:3])
    ):
        return None
    key = str(plan.get("id"))
    if _refused.get(key, 0) >= int(plan.get("times", 0)):
        return None
    _refused[key] = _refused.get(key, 0) + 1
    with Path(f"{_CONTROL}.log").open("a") as log:
        log.write(f"{key} {_FUNCTION} {operation}\n")
    body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException",'
    body += b'"message":"Rate of requests exceeds the allowed throughput."}'
    headers = HTTPHeaders()
    headers["x-amzn-errortype"] = "ThrottlingException"
    headers["content-type"] = "application/x-amz-json-1.0"
    return AWSResponse(request.url, 400, headers, _Body(body))


if _CONTROL:
    # Registered on the session before any client exists: each client copies its handlers.
    aws._session().register("before-send", _throttle)  # type: ignore[arg-type]
