"""What an API function's cold start leaves for later (ordo.boot): the pydantic models defined
before the first request are built on first use (FastAPI's OpenAPI models only when the document
is asked for), and in Lambda the collector stays off until the first request, which freezes the
cold start's objects. Each case is a fresh interpreter.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infra.local.stack import Stack
from tests.probe import run_probe

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "core"
FUNCTIONS = Stack.load().functions()
API_FUNCTIONS = sorted(lid for lid, fn in FUNCTIONS.items() if fn.http_routes)
OTHER_FUNCTIONS = sorted(lid for lid, fn in FUNCTIONS.items() if not fn.http_routes)
SCHEDULE_EVENT = ROOT / "infra" / "events" / "fetch_schedule.json"

# Imports the handler module; sends one request that no route takes (enough to pass through the
# app's middleware); then asks for the OpenAPI document.
PROBE = """\
import gc, json, os, sys
frozen_at_start = gc.get_freeze_count()
import app
import fastapi.openapi.models as models
from pydantic import BaseModel
def ordo_models_built():
    found, more = [], [BaseModel]
    while more:
        more += (subclasses := more.pop().__subclasses__())
        found += [model for model in subclasses if model.__module__.startswith("ordo.")]
    return sorted({model.__qualname__ for model in found if model.__pydantic_complete__})
state = {"imported": {
    "gc": gc.isenabled(),
    "openapi_built": models.OpenAPI.__pydantic_complete__,
    "ordo_built": ordo_models_built(),
    "defer_build": BaseModel.model_config.get("defer_build"),
    "plugins": os.environ.get("PYDANTIC_DISABLE_PLUGINS"),
}}
from fastapi.testclient import TestClient
client = TestClient(app.app)
status = client.get("/no-such-route").status_code
frozen = gc.get_freeze_count() - frozen_at_start
state["requested"] = {
    "gc": gc.isenabled(),
    "frozen": frozen,
    "status": status,
    "defer_build": BaseModel.model_config.get("defer_build", "unset"),
}
document = app.app.openapi()
state["document"] = {"paths": len(document["paths"]), "built": models.OpenAPI.__pydantic_complete__}
print(json.dumps(state))
"""


# Imports a function that serves no HTTP: nothing settles it later, so the collector must be on.
IMPORT_PROBE = """\
import gc, json
import app
print(json.dumps({"imported": {"gc": gc.isenabled()}}))
"""

# FetchFunction's schedule, its aggregation stubbed (no AWS, no sockets): the handler runs.
SCHEDULE_PROBE = f"""\
import gc, json, pathlib
import app
state = {{"imported": {{"gc": gc.isenabled()}}}}
def fetch_on_schedule(fetcher, holder, now):
    state["fetching"] = {{"gc": gc.isenabled()}}
    return app.aggregation.ScheduledFetch(status="locked")
class Context:
    function_name = "FetchFunction"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:FetchFunction"
    aws_request_id = "req-1"
app.aggregator = lambda: None
app.aggregation.fetch_on_schedule = fetch_on_schedule
event = json.loads(pathlib.Path({str(SCHEDULE_EVENT)!r}).read_text())
outcome = app.handler(event, Context())
state["invoked"] = {{"gc": gc.isenabled(), "status": outcome["status"]}}
print(json.dumps(state))
"""


def _probe(function: str, *, in_lambda: bool, probe: str = PROBE) -> dict[str, dict[str, object]]:
    definition = FUNCTIONS[function]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDO_", "AWS_LAMBDA_"))}
    env.pop("PYDANTIC_DISABLE_PLUGINS", None)
    env |= definition.environment | {
        "PYTHONPATH": os.pathsep.join([str(definition.code_uri), str(LAYER)]),
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    if in_lambda:
        env["AWS_LAMBDA_FUNCTION_NAME"] = function
    state: dict[str, dict[str, object]] = run_probe(probe, cwd=definition.code_uri, env=env)
    return state


@pytest.mark.parametrize("function", API_FUNCTIONS)
def test_models_are_built_on_first_use_and_fastapis_openapi_models_for_the_document(
    function: str,
) -> None:
    state = _probe(function, in_lambda=True)

    assert state["imported"]["ordo_built"] == []
    assert state["imported"]["defer_build"] is True
    assert state["imported"]["plugins"] == "__all__"
    assert state["requested"]["defer_build"] == "unset"  # as pydantic has it, for models to come
    assert state["imported"]["openapi_built"] is False
    assert state["document"]["built"] is True
    assert state["document"]["paths"] == len({path for _, path in FUNCTIONS[function].http_routes})


def test_in_lambda_the_collector_waits_for_the_first_request_then_freezes_the_cold_start() -> None:
    state = _probe("StatusFunction", in_lambda=True)

    assert state["imported"]["gc"] is False
    assert state["requested"]["status"] == 404
    assert state["requested"]["gc"] is True
    assert isinstance(frozen := state["requested"]["frozen"], int)
    assert frozen > 10_000  # the modules, classes and functions of the cold start


def test_outside_lambda_the_collector_is_left_alone() -> None:
    state = _probe("StatusFunction", in_lambda=False)

    assert state["imported"]["gc"] is True
    assert state["requested"]["frozen"] == 0


@pytest.mark.parametrize("function", OTHER_FUNCTIONS)
def test_in_lambda_a_function_without_http_collects_from_its_import(function: str) -> None:
    state = _probe(function, in_lambda=True, probe=IMPORT_PROBE)

    assert state["imported"]["gc"] is True


def test_in_lambda_fetchs_schedule_turns_the_collector_on_before_it_fetches() -> None:
    state = _probe("FetchFunction", in_lambda=True, probe=SCHEDULE_PROBE)

    assert state["imported"]["gc"] is False
    assert state["fetching"]["gc"] is True
    assert state["invoked"] == {"gc": True, "status": "locked"}
