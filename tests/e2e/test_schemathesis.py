"""Schemathesis over the merged OpenAPI document, against a local cloud of its own.

Every operation gets ``EXAMPLES`` generated requests (valid and invalid ones), from a fixed
seed, half of them as an admin and half as a user. The one check that fails the test is "not a
server error": no input may get a 5xx. Schemathesis' other checks (response schema, status
codes, headers, ...) run too; what they find is printed at the end of the run, not failed.

Alone: ``.venv/bin/pytest -q tests/e2e/test_schemathesis.py`` (``-s`` shows the report live).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import count
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup

from infra.local.openapi import EXPORTED
from tests.e2e.conftest import Api, local_cloud, posts_source

pytestmark = pytest.mark.local_only(
    reason="fuzzes a local cloud of its own (with a stand-in source), never a running stack"
)
SEED = 15
EXAMPLES = 25
TIMEOUT = 30  # seconds for one request: a 5xx is what we look for, not a hang


@dataclass
class Target:
    api: Api
    tokens: list[str]  # admin, user
    turn: count[int] = field(default_factory=count)
    findings: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))

    def next_token(self) -> str:
        return self.tokens[next(self.turn) % len(self.tokens)]


@pytest.fixture(scope="module")
def fuzz_target(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Target]:
    with posts_source() as source_url:  # fetches succeed: no 502 to excuse
        # local_cloud lifts the per-address limit: Schemathesis registers far more than a person.
        env = {"ORDO_FETCH_SOURCE_URL": source_url}
        with local_cloud(tmp_path_factory.mktemp("fuzz-cloud"), env) as api:
            assert api.admin is not None
            _, user_token = api.sign_up()
            target = Target(api, [api.sign_in(*api.admin), user_token])
            yield target
            _report(request, target)


def _report(request: pytest.FixtureRequest, target: Target) -> None:
    """Print what the other checks found: informational, never a failure."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is None or reporter is None:
        return
    with capture.global_and_fixture_disabled():
        _write(reporter.write_line, target)


def _write(write: Any, target: Target) -> None:
    write("")
    requests = sum(sum(seen.values()) for seen in target.statuses.values())
    write(f"schemathesis: {requests} requests, seed {SEED}, {EXAMPLES} examples per operation")
    for operation, seen in sorted(target.statuses.items()):
        answers = " ".join(f"{status}x{times}" for status, times in sorted(seen.items()))
        write(f"schemathesis: {operation}: {answers}")
    if not target.findings:
        write("schemathesis: every other check passed")
    for operation, found in sorted(target.findings.items()):
        for finding, times in found.most_common():
            write(f"schemathesis (not failed): {operation}: {finding} (x{times})")


# The merged document the local cloud serves (tests/test_openapi_export.py keeps it current),
# read at collection: schemathesis' fixture-based loader does not support pytest 9.
schema = schemathesis.openapi.from_path(EXPORTED)


@schema.parametrize()
@hypothesis.seed(SEED)
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_no_input_gets_a_server_error(case: Any, fuzz_target: Target) -> None:
    headers = dict(case.headers or {})
    if "authorization" not in {name.lower() for name in headers}:
        headers["Authorization"] = f"Bearer {fuzz_target.next_token()}"
    case.headers = headers
    response = case.call(base_url=fuzz_target.api.url, timeout=TIMEOUT)
    fuzz_target.statuses[case.operation.label][response.status_code] += 1
    try:
        case.validate_response(response, excluded_checks=[not_a_server_error])
    except (Failure, FailureGroup) as found:
        for failure in found.exceptions if isinstance(found, FailureGroup) else [found]:
            fuzz_target.findings[case.operation.label][failure.title] += 1
    assert response.status_code < 500, (
        f"{response.status_code} {response.text[:500]}\n{case.as_curl_command()}"
    )
