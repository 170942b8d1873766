"""The in-process invoker the integration tests run functions with: the process pool's
outcomes, without a process."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from infra.local.inprocess import InProcessFunctions
from infra.local.invoke import Outcome
from infra.local.stack import Stack

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Probe:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: probe/
      Handler: app.handler
      Runtime: python3.12
      Timeout: 7
      MemorySize: 256
      ReservedConcurrentExecutions: 1
"""

HANDLER = """\
calls = 0
inner = None  # set by a test: called while the invocation runs


class Killed(BaseException):
    pass


def handler(event, context):
    global calls
    calls += 1
    if event.get("raise") == "error":
        raise ValueError("boom")
    if event.get("raise") == "killed":
        raise Killed()
    return {
        "calls": calls,
        "function": context.function_name,
        "memory": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "inner": inner() if inner else None,
    }
"""


@pytest.fixture
def functions(tmp_path: Path) -> InProcessFunctions:
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "app.py").write_text(HANDLER)
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    return InProcessFunctions(
        Stack.load(name="fixture", path=tmp_path / "template.yaml").functions()
    )


def test_the_handler_is_loaded_once_and_called_with_a_real_context(
    functions: InProcessFunctions,
) -> None:
    first = functions.invoke("Probe", {})
    second = functions.invoke("Probe", {})
    assert (first.outcome, second.outcome) == (Outcome.OK, Outcome.OK)
    assert (first.payload["calls"], second.payload["calls"]) == (1, 2)  # one cold start
    assert (first.payload["function"], first.payload["memory"]) == ("Probe", 256)
    assert 0 < first.payload["remaining_ms"] <= 7000


def test_a_handler_that_raises_is_an_error_outcome(functions: InProcessFunctions) -> None:
    result = functions.invoke("Probe", {"raise": "error"})
    assert (result.outcome, result.error) == (Outcome.ERROR, "ValueError: boom")


def test_an_invocation_ended_as_a_killed_process_is_an_exit_error(
    functions: InProcessFunctions,
) -> None:
    result = functions.invoke("Probe", {"raise": "killed"})
    assert result.outcome is Outcome.ERROR
    assert result.error is not None
    assert result.error.startswith("Runtime.ExitError: ")
    assert result.error.endswith("Killed")


def test_past_the_reserved_concurrency_one_more_call_is_throttled(
    functions: InProcessFunctions,
) -> None:
    probe: Any = functions.module("Probe")
    probe.inner = lambda: str(functions.invoke("Probe", {}).outcome)
    result = functions.invoke("Probe", {})
    assert result.payload["inner"] == Outcome.THROTTLED
    probe.inner = None
    assert functions.invoke("Probe", {}).outcome is Outcome.OK  # the slot was given back


def test_a_call_that_outlived_its_timeout_is_a_timeout(functions: InProcessFunctions) -> None:
    probe = dataclasses.replace(functions.functions["Probe"], timeout=0)
    result = InProcessFunctions({"Probe": probe}).invoke("Probe", {})
    assert (result.outcome, result.payload) == (Outcome.TIMEOUT, None)
    assert result.error == "Task timed out after 0.00 seconds"
