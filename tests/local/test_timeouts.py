"""``ORDO_LOCAL_TIMEOUTS``: a function's timeout replaced locally, without editing the template."""

from __future__ import annotations

import pytest

from infra.local.cloud import LocalCloud
from infra.local.ordo_app import shell_overrides
from infra.local.stack import Stack
from tests.local.conftest import FIXTURE


def test_timeouts_are_read_as_function_equals_seconds() -> None:
    environ = {"ORDO_LOCAL_TIMEOUTS": "SleepyFunction=2, EchoFunction=30"}
    assert LocalCloud.timeouts_from(environ) == {"SleepyFunction": 2, "EchoFunction": 30}
    assert LocalCloud.timeouts_from({}) == {}


@pytest.mark.parametrize("value", ["Sleepy", "Sleepy=", "Sleepy=0", "Sleepy=901", "Sleepy=1.5"])
def test_a_malformed_timeout_is_refused_naming_it(value: str) -> None:
    with pytest.raises(ValueError, match=f"ORDO_LOCAL_TIMEOUTS: '{value}' is not FUNCTION=SECONDS"):
        LocalCloud.timeouts_from({"ORDO_LOCAL_TIMEOUTS": value})


def test_a_timeout_replaces_the_templates_for_that_function_only() -> None:
    definitions = Stack.load(path=FIXTURE).functions()
    (name, function), *others = definitions.items()
    cloud = LocalCloud(template=FIXTURE, timeouts={name: function.timeout + 7})
    replaced = cloud._with_timeouts(definitions)
    assert replaced[name].timeout == function.timeout + 7
    assert all(replaced[lid] == fn for lid, fn in others)


def test_a_timeout_for_a_function_the_template_lacks_is_refused() -> None:
    cloud = LocalCloud(template=FIXTURE, timeouts={"NoSuchFunction": 5})
    with pytest.raises(ValueError, match="no such function: NoSuchFunction"):
        cloud._with_timeouts(Stack.load(path=FIXTURE).functions())


def test_the_timeouts_stay_with_the_local_cloud_and_never_reach_a_function() -> None:
    overrides = shell_overrides({"ORDO_LOCAL_TIMEOUTS": "X=5", "ORDO_TIME_SCALE": "0.1"})
    assert overrides == {"ORDO_TIME_SCALE": "0.1"}
