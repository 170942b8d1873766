"""``ordo local invoke``: every function of the template, once, with its sample event from
``infra/events/``, as the installed ``ordo`` runs it (a subprocess each) against one local
cloud of this module; and its error paths, on the fixture application of ``tests/local``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.common import free_port
from infra.local.stack import Stack
from tests.e2e.conftest import ROOT, SOURCE_POSTS, local_cloud, posts_source

pytestmark = pytest.mark.local_only(
    reason="runs `ordo local invoke`, each function once in a process of its own, with no stack"
)
ORDO = Path(sys.executable).with_name("ordo")
EVENTS = ROOT / "infra" / "events"
FIXTURE = ROOT / "tests" / "local" / "fixture" / "template.yaml"
NO_TOKEN = {"detail": "Could not validate credentials"}  # the samples' tokens are placeholders
HEALTHY = {"status": "healthy", "checks": {"table": "ok", "queue": "ok"}}

# Each sample event: the function it is for, and what that function answers.
HTTP_SAMPLES: dict[str, tuple[str, int, dict[str, Any]]] = {
    "submit": ("SubmitFunction", 401, NO_TOKEN),
    "status": ("StatusFunction", 401, NO_TOKEN),
    "result": ("ResultFunction", 401, NO_TOKEN),
    "admin": ("AdminFunction", 401, NO_TOKEN),
    "users": ("UsersFunction", 401, NO_TOKEN),
    "cases": ("CasesFunction", 401, NO_TOKEN),
    "documents": ("DocumentsFunction", 401, NO_TOKEN),
    "fetch": ("FetchFunction", 401, NO_TOKEN),
    "auth": ("AuthFunction", 401, {"detail": "Incorrect username or password"}),
    "health": ("HealthFunction", 200, HEALTHY),
    "products": ("ProductsFunction", 200, {"items": [], "total": 0, "page": 1, "total_pages": 0}),
}
OTHER_SAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    # Unknown jobs and cases: acknowledged, so no record is reported back.
    "worker": ("WorkerFunction", {"batchItemFailures": []}),
    "dead_letters": ("DeadLetterFunction", {"batchItemFailures": []}),
    "case_timer": ("CaseTimerFunction", {"batchItemFailures": []}),
    "reconciler": ("ReconcilerFunction", {"pending_ended": 0, "processing_ended": 0}),
    "fetch_schedule": (
        "FetchFunction",
        {"status": "ok", "fetched": len(SOURCE_POSTS), "created": len(SOURCE_POSTS), "updated": 0},
    ),
}
SAMPLES = {event: spec[0] for event, spec in (HTTP_SAMPLES | OTHER_SAMPLES).items()}


@dataclass
class Cloud:
    port: int
    aws_endpoint: str


def shell(**extra: str) -> dict[str, str]:
    """This test's environment without AWS_ENDPOINT_URL or ordo's own variables, and ``extra``."""
    kept = {
        k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL" and not k.startswith("ORDO_")
    }
    return kept | extra


def ordo_invoke(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ORDO), "local", "invoke", *args],
        input=stdin,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    assert ORDO.exists(), "the ordo console script is not installed (pip install -e .)"
    with local_cloud(tmp_path_factory.mktemp("invoke-cloud")) as api:
        health = httpx.get(f"{api.url}/_local/health", timeout=10).json()
        yield Cloud(api.port, health["aws_endpoint"])


@pytest.fixture(scope="module")
def samples(cloud: Cloud) -> Iterator[dict[str, subprocess.CompletedProcess[str]]]:
    """Every sample event, invoked at once: found through the local cloud's port."""
    with posts_source() as source_url:
        env = shell(ORDO_PORT=str(cloud.port), ORDO_FETCH_SOURCE_URL=source_url)
        with ThreadPoolExecutor(max_workers=4) as pool:
            runs = {
                event: pool.submit(
                    ordo_invoke, function, "--event", f"infra/events/{event}.json", env=env
                )
                for event, function in SAMPLES.items()
            }
            yield {event: run.result() for event, run in runs.items()}


def _answer(run: subprocess.CompletedProcess[str]) -> Any:
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("\n") == 1, run.stdout  # one JSON document: the logs went to stderr
    return json.loads(run.stdout)


def test_every_function_has_a_sample_event_and_every_event_a_function() -> None:
    functions = set(Stack.load(path=ROOT / "template.yaml").functions())
    assert set(SAMPLES.values()) == functions
    assert {path.stem for path in EVENTS.glob("*.json")} == set(SAMPLES)


@pytest.mark.parametrize("event", sorted(HTTP_SAMPLES))
def test_api_function_answers_its_sample_event(
    event: str, samples: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    _, status, expected = HTTP_SAMPLES[event]
    answer = _answer(samples[event])
    body = json.loads(answer["body"])
    assert (answer["statusCode"], {key: body.get(key) for key in expected}) == (status, expected)
    assert '"message":"request"' in samples[event].stderr  # the function's own log line
    assert "ordo: using the local cloud on port" in samples[event].stderr


@pytest.mark.parametrize("event", sorted(OTHER_SAMPLES))
def test_event_function_answers_its_sample_event(
    event: str, samples: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    _, expected = OTHER_SAMPLES[event]
    answer = _answer(samples[event])
    assert {key: answer.get(key) for key in expected} == expected


def test_aws_endpoint_url_is_used_and_stdin_carries_the_event(cloud: Cloud) -> None:
    # Given AWS_ENDPOINT_URL, and no local cloud where ORDO_PORT points
    env = shell(AWS_ENDPOINT_URL=cloud.aws_endpoint, ORDO_PORT=str(free_port()))
    # When the event comes on stdin
    run = ordo_invoke(
        "HealthFunction", "--event", "-", env=env, stdin=(EVENTS / "health.json").read_text()
    )
    # Then the deep health check reached that endpoint's table and queue
    body = json.loads(_answer(run)["body"])
    assert body["checks"] == {"table": "ok", "queue": "ok"}
    assert "ordo: using" not in run.stderr


def test_without_an_endpoint_it_runs_against_fresh_resources() -> None:
    # Given neither AWS_ENDPOINT_URL nor a local cloud on ORDO_PORT
    env = shell(ORDO_PORT=str(free_port()))
    # When the deep health check runs
    run = ordo_invoke("HealthFunction", "--event", "infra/events/health.json", env=env)
    # Then it found the template's table and queue, made for it in moto
    body = json.loads(_answer(run)["body"])
    assert body["checks"] == {"table": "ok", "queue": "ok"}
    assert "using fresh resources" in run.stderr


def test_a_handler_error_exits_1_naming_it(cloud: Cloud) -> None:
    run = ordo_invoke(
        "BoomFunction", "-t", str(FIXTURE), env=shell(AWS_ENDPOINT_URL=cloud.aws_endpoint)
    )
    assert (run.returncode, run.stdout) == (1, "")
    assert "ordo: BoomFunction: handler error: boom" in run.stderr
    assert "RuntimeError: boom" in run.stderr  # the function's traceback, as its log


def test_a_timeout_kills_the_process_and_exits_124(cloud: Cloud, tmp_path: Path) -> None:
    # Given SleepyFunction (Timeout: 1) asked to sleep far longer, its process id recorded
    pid_file = tmp_path / "pid"
    env = shell(
        AWS_ENDPOINT_URL=cloud.aws_endpoint,
        ORDO_LOCAL_PRELOAD="tests.e2e.invoke_probe",
        ORDO_PROBE_PID_FILE=str(pid_file),
    )
    event = json.dumps({"pathParameters": {"seconds": "300"}})
    # When it is invoked
    run = ordo_invoke("SleepyFunction", "-t", str(FIXTURE), "-e", "-", env=env, stdin=event)
    # Then the command says it timed out, and the process is gone
    assert (run.returncode, run.stdout) == (124, "")
    assert "ordo: SleepyFunction timed out after 1 s" in run.stderr
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_an_unknown_function_exits_2_listing_the_functions() -> None:
    run = ordo_invoke("NoSuchFunction", env=shell())
    assert (run.returncode, run.stdout) == (2, "")
    assert "no function 'NoSuchFunction' in the template; choose one of: " in run.stderr
    assert "WorkerFunction" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "cannot read"), ('{"Records": [', "is not valid JSON")],
    ids=["missing", "not-json"],
)
def test_a_bad_event_file_exits_2(tmp_path: Path, content: str | None, problem: str) -> None:
    event = tmp_path / "event.json"
    if content is not None:
        event.write_text(content)
    run = ordo_invoke("HealthFunction", "--event", str(event), env=shell())
    assert (run.returncode, run.stdout) == (2, "")
    assert "ordo: --event: " in run.stderr
    assert f"{problem} {event}" in run.stderr or f"{event} {problem}" in run.stderr


@pytest.mark.parametrize(
    "content", ['{"EchoFunction": ', '{"EchoFunction": "FROM_TEMPLATE=x"}', "[]"]
)
def test_a_bad_env_vars_file_exits_2(tmp_path: Path, content: str) -> None:
    env_vars = tmp_path / "env.json"
    env_vars.write_text(content)
    run = ordo_invoke("EchoFunction", "-t", str(FIXTURE), "-n", str(env_vars), env=shell())
    assert (run.returncode, run.stdout) == (2, "")
    assert f"ordo: --env-vars: {env_vars}: " in run.stderr


def test_env_vars_override_only_what_the_template_declares(cloud: Cloud, tmp_path: Path) -> None:
    # Given Parameters for every function and EchoFunction's own, which take precedence
    env_vars = tmp_path / "env.json"
    env_vars.write_text(
        json.dumps(
            {
                "Parameters": {"RECORDS_TABLE": "from-parameters", "FROM_TEMPLATE": "global"},
                "EchoFunction": {"FROM_TEMPLATE": "from-env-vars", "ORDO_FIXTURE": "undeclared"},
                "BoomFunction": {"RECORDS_TABLE": "not-echo"},
            }
        )
    )
    # When EchoFunction runs with no event
    run = ordo_invoke(
        "EchoFunction",
        "-t",
        str(FIXTURE),
        "-n",
        str(env_vars),
        env=shell(AWS_ENDPOINT_URL=cloud.aws_endpoint),
    )
    # Then the declared variables changed, the undeclared one did not appear, and it was said
    body = json.loads(_answer(run)["body"])
    assert body["env"] == {
        "FROM_TEMPLATE": "from-env-vars",
        "RECORDS_TABLE": "from-parameters",
        "ORDO_FIXTURE": None,
    }
    assert body["event"] == {}
    assert "not in EchoFunction's template environment, so ignored" in run.stderr
    assert "ORDO_FIXTURE" in run.stderr
