"""Powertools' Logger and Metrics (ordo.observability) are built on first use, from the
environment of that moment: importing the layer reads none of a function's settings, so the
local cloud's fork server can import it once for every function. Each case is a fresh
interpreter."""

from __future__ import annotations

import os
from pathlib import Path

from tests.probe import run_probe

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "core"

# Imports what the fork server imports, then sets a function's environment, then asks.
PROBE = """\
import json, logging, os
import ordo.http, ordo.worker, ordo.recovery, ordo.cases
os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
from ordo import observability
built_at_import = vars(observability.logger)["_built"] is not None
app = ordo.http.api_app("probe")  # an API function's init: builds both
print(json.dumps({
    "built_at_import": bool(built_at_import),
    "level": observability.logger.log_level,
    "name": observability.logger.name,
    "underlying_level": logging.getLogger("ordo").level,
    "namespace": observability.metrics.namespace,
}))
"""


def _probe() -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "LOG_"))}
    env |= {"PYTHONPATH": os.pathsep.join([str(ROOT), str(LAYER)])}
    state: dict[str, object] = run_probe(PROBE, env=env)
    return state


def test_the_logger_takes_its_settings_from_the_environment_at_init_not_at_import() -> None:
    state = _probe()
    assert state["built_at_import"] is False
    assert state["level"] == state["underlying_level"] == 40  # ERROR, set after the import
    assert state["name"] == "ordo"
    assert state["namespace"] == "ordo"


def test_the_metrics_stand_in_records_into_powertools_metric_set() -> None:
    from ordo.observability import metrics

    metrics.add_metric(name="Probe", unit="Count", value=1)
    assert metrics.metric_set["Probe"]["Value"] == [1.0]
    metrics.clear_metrics()
    assert "Probe" not in metrics.metric_set
