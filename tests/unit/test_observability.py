"""Powertools' Logger and Metrics (ordo.observability) are built on first use, from the
environment of that moment: importing the layer reads none of a function's settings, so the
local cloud's fork server can import it once for every function. The service, the namespace and
the level are the ``POWERTOOLS_*`` variables the template sets, never names in the code. Each
probe is a fresh interpreter."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from infra.local.stack import Stack
from tests.probe import run_probe

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "core"

# Imports what the fork server imports, then sets a function's environment, then asks.
PROBE = """\
import json, logging, os, sys
import ordo.http, ordo.worker, ordo.recovery, ordo.cases
os.environ |= json.loads(sys.argv[1])
from ordo import observability
built_at_import = vars(observability.logger)["_built"] is not None
app = ordo.http.api_app("probe")  # an API function's init: builds both
print(json.dumps({
    "built_at_import": bool(built_at_import),
    "level": observability.logger.log_level,
    "name": observability.logger.name,
    "service": observability.logger.service,
    "underlying_level": logging.getLogger(observability.logger.name).level,
    "namespace": observability.metrics.namespace,
    "metrics_service": observability.metrics.service,
}))
"""

# Two invocations of an observed handler: one adds no metric, one adds one.
FLUSH_PROBE = """\
import contextlib, io, json, os, sys, warnings
os.environ |= json.loads(sys.argv[1])
from ordo.observability import MetricUnit, metrics, observed

class Context:
    function_name = "Probe"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:Probe"
    aws_request_id = "req-1"

@observed
def quiet(event, context):
    return {}

@observed
def counted(event, context):
    metrics.add_metric(name="Probe", unit=MetricUnit.Count, value=1)
    return {}

state = {}
for handler in (quiet, counted):
    out = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out):
        handler({}, Context())
    state[handler.__name__] = {
        "printed": [json.loads(line) for line in out.getvalue().splitlines()],
        "warnings": [str(w.message) for w in caught],
    }
print(json.dumps(state))
"""


def _probe(probe: str, settings: dict[str, str]) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "LOG_"))}
    env |= {"PYTHONPATH": os.pathsep.join([str(ROOT), str(LAYER)])}
    state: dict[str, object] = run_probe(probe, json.dumps(settings), env=env)
    return state


def test_the_template_names_every_functions_service_and_namespace() -> None:
    for function in Stack.load().functions().values():
        env = function.environment
        assert env["POWERTOOLS_SERVICE_NAME"] == "ordo", function.logical_id
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "ordo", function.logical_id


@pytest.mark.parametrize(("service", "namespace"), [("ordo", "ordo"), ("billing", "acme/jobs")])
def test_the_logger_and_metrics_take_their_settings_from_the_environment_at_init(
    service: str, namespace: str
) -> None:
    state = _probe(
        PROBE,
        {
            "POWERTOOLS_LOG_LEVEL": "ERROR",
            "POWERTOOLS_SERVICE_NAME": service,
            "POWERTOOLS_METRICS_NAMESPACE": namespace,
        },
    )
    assert state["built_at_import"] is False
    assert state["level"] == state["underlying_level"] == 40  # ERROR, set after the import
    assert state["name"] == state["service"] == state["metrics_service"] == service
    assert state["namespace"] == namespace


def test_an_invocation_prints_its_metrics_once_and_one_without_prints_nothing() -> None:
    state = _probe(
        FLUSH_PROBE,
        {"POWERTOOLS_SERVICE_NAME": "svc", "POWERTOOLS_METRICS_NAMESPACE": "ns"},
    )
    assert state["quiet"] == {"printed": [], "warnings": []}
    counted = state["counted"]
    assert isinstance(counted, dict)
    assert counted["warnings"] == []
    (emf,) = counted["printed"]
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "ns"
    assert directive["Metrics"] == [{"Name": "Probe", "Unit": "Count"}]
    assert (emf["Probe"], emf["service"]) == ([1.0], "svc")


def test_the_metrics_stand_in_records_into_powertools_metric_set() -> None:
    from ordo.observability import metrics

    metrics.add_metric(name="Probe", unit="Count", value=1)
    assert metrics.metric_set["Probe"]["Value"] == [1.0]
    metrics.clear_metrics()
    assert "Probe" not in metrics.metric_set
