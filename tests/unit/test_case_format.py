"""Case responses have the format of the assets: keys, types and nesting at every level.

``tests/fixtures/cases/response-{1,2,3}.json`` are the assets' skeletons: the three example
responses (``../shared/assets/cases/``) with every string replaced and lists cut to examples,
so the structure is kept and none of their prose is.
"""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ordo.cases import CaseRequest, Timeline, create_case, get_case
from tests.fakes_accounts import make_user
from tests.fakes_cases import InMemoryCaseTable

FIXTURES = Path(__file__).parents[1] / "fixtures" / "cases"
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
EXTRA = {"created_at", "updated_at"}  # ordo adds these two to the assets' format


def conforms(ours: Any, theirs: Any, path: str = "$") -> list[str]:
    """Every way ``ours`` differs in structure from the example ``theirs``."""
    if isinstance(theirs, dict):
        if not isinstance(ours, dict):
            return [f"{path}: {type(ours).__name__}, expected an object"]
        keys = set(ours) - (EXTRA if path == "$" else set())
        if keys != set(theirs):
            return [f"{path}: keys {sorted(keys ^ set(theirs))} differ"]
        return [p for key in theirs for p in conforms(ours[key], theirs[key], f"{path}.{key}")]
    if isinstance(theirs, list):
        if not isinstance(ours, list):
            return [f"{path}: {type(ours).__name__}, expected a list"]
        if not theirs:
            return [] if not ours else [f"{path}: not empty"]
        problems = []
        for index, item in enumerate(ours):  # each item must match one of the examples
            tries = [conforms(item, example, f"{path}[{index}]") for example in theirs]
            if all(tries):
                problems += tries[0]
        return problems
    if theirs is None:
        return [] if ours is None else [f"{path}: {ours!r}, expected null"]
    if type(ours) is not type(theirs):
        return [f"{path}: {type(ours).__name__}, expected {type(theirs).__name__}"]
    return []


@pytest.mark.parametrize(("stage", "seconds"), [(1, 0), (2, 10), (3, 30)])
def test_each_stage_has_the_assets_format(stage: int, seconds: int) -> None:
    theirs = json.loads((FIXTURES / f"response-{stage}.json").read_text())
    table, alice = InMemoryCaseTable(), make_user("alice")
    case = create_case(table, CaseRequest(), owner=alice.id, now=T0, timeline=Timeline())
    view = get_case(table, alice, case.case_id, T0 + timedelta(seconds=seconds), Timeline())
    ours = view.model_dump(mode="json")

    assert conforms(ours, theirs) == []
    assert set(ours) >= EXTRA
    assert ours["status"] == ("submitted", "processing", "complete")[stage - 1]


def test_the_first_step_has_no_logic_as_in_the_assets() -> None:
    theirs = json.loads((FIXTURES / "response-3.json").read_text())["steps"]
    assert "logic" not in theirs[0]
    assert all("logic" in step for step in theirs[1:])
    table, alice = InMemoryCaseTable(), make_user("alice")
    case = create_case(table, CaseRequest(), owner=alice.id, now=T0, timeline=Timeline())
    steps = get_case(table, alice, case.case_id, T0 + timedelta(seconds=30), Timeline()).model_dump(
        mode="json"
    )["steps"]
    assert "logic" not in steps[0]
    assert all("logic" in step for step in steps[1:])


def test_the_checker_catches_a_wrong_type_a_missing_key_and_an_extra_key() -> None:
    theirs = {"a": 1, "b": [{"c": "x"}]}
    assert conforms({"a": 1, "b": [{"c": "y"}]}, theirs) == []
    assert conforms({"a": "1", "b": [{"c": "y"}]}, theirs) == ["$.a: str, expected int"]
    assert conforms({"a": 1, "b": [{}]}, theirs) == ["$.b[0]: keys ['c'] differ"]
    assert conforms({"a": 1, "b": [], "d": 2}, theirs) == ["$: keys ['d'] differ"]
