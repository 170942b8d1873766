"""``ordo local invoke --env-vars``: SAM's file format and SAM's rules for it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from infra.local.invoke_cli import EnvVars, UsageError, pick_function, read_event
from infra.local.stack import Function


def function(logical_id: str = "WorkerFunction", **environment: str) -> Function:
    return Function(
        logical_id=logical_id,
        code_uri=Path("functions/worker"),
        handler="app.handler",
        timeout=3,
        memory=128,
        reserved_concurrency=None,
        environment=environment,
    )


def test_parameters_apply_to_every_function_and_its_own_object_wins() -> None:
    env_vars = EnvVars.parse(
        '{"Parameters": {"TABLE": "global", "STAGE": "dev"}, "WorkerFunction": {"TABLE": "own"}}'
    )
    worker = function(TABLE="template", STAGE="template")
    other = function("OtherFunction", TABLE="template")
    assert env_vars.for_function(worker, "ordo-WorkerFunction") == {"TABLE": "own", "STAGE": "dev"}
    assert env_vars.for_function(other, "ordo-OtherFunction") == {"TABLE": "global"}


def test_only_variables_the_template_declares_are_overridden() -> None:
    env_vars = EnvVars.parse(
        '{"Parameters": {"UNDECLARED": "x"}, "WorkerFunction": {"TABLE": "t", "EXTRA": "y"}}'
    )
    worker = function(TABLE="template")
    assert env_vars.for_function(worker, "ordo-WorkerFunction") == {"TABLE": "t"}
    assert env_vars.ignored(worker, "ordo-WorkerFunction") == ["EXTRA"]


def test_the_logical_id_is_looked_up_before_the_function_name() -> None:
    by_name = EnvVars.parse('{"ordo-WorkerFunction": {"TABLE": "by-name"}}')
    both = EnvVars.parse(
        '{"ordo-WorkerFunction": {"TABLE": "by-name"}, "WorkerFunction": {"TABLE": "by-id"}}'
    )
    worker = function(TABLE="template")
    assert by_name.for_function(worker, "ordo-WorkerFunction") == {"TABLE": "by-name"}
    assert both.for_function(worker, "ordo-WorkerFunction") == {"TABLE": "by-id"}


def test_an_empty_object_under_the_logical_id_still_wins_over_the_function_name() -> None:
    env_vars = EnvVars.parse('{"WorkerFunction": {}, "ordo-WorkerFunction": {"TABLE": "by-name"}}')
    worker = function(TABLE="template")
    assert env_vars.for_function(worker, "ordo-WorkerFunction") == {}
    assert env_vars.ignored(worker, "ordo-WorkerFunction") == []


def test_values_are_stringified_as_sam_does() -> None:
    env_vars = EnvVars.parse(
        '{"WorkerFunction": {"ON": true, "OFF": false, "N": 3, "NONE": null, "OBJ": {"a": 1},'
        ' "LIST": [1], "TEXT": "text"}}'
    )
    names = ("ON", "OFF", "N", "NONE", "OBJ", "LIST", "TEXT")
    worker = function(**dict.fromkeys(names, "template"))
    assert env_vars.for_function(worker, "ordo-WorkerFunction") == {
        "ON": "true",
        "OFF": "false",
        "N": "3",
        "NONE": "",
        "OBJ": "",
        "LIST": "",
        "TEXT": "text",
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[]", "expected a JSON object"),
        ('{"WorkerFunction": "TABLE=x"}', "'WorkerFunction' must be an object of variables"),
        ('{"Parameters": ["TABLE"]}', "'Parameters' must be an object of variables"),
        ('{"WorkerFunction": ', "Expecting value"),
    ],
)
def test_a_malformed_file_is_refused_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        EnvVars.parse(text)


def test_an_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--env-vars: cannot read"):
        EnvVars.load(str(tmp_path / "missing.json"))


def test_no_event_is_an_empty_object_and_dash_reads_stdin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert read_event(None) == {}
    monkeypatch.setattr("sys.stdin", io.StringIO('{"Records": []}'))
    assert read_event("-") == {"Records": []}


def test_an_unknown_function_names_the_ones_there_are() -> None:
    functions = {"WorkerFunction": function(), "OtherFunction": function("OtherFunction")}
    with pytest.raises(UsageError, match="choose one of: WorkerFunction, OtherFunction"):
        pick_function(functions, "Worker")
