"""The cache of the SAM transform's output: starts at once share it safely, a damaged entry is
transformed again, and only the most recently used entries are kept."""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from infra.local import stack
from infra.local.stack import CACHE_KEPT, transformed_template

STARTS = 4


@pytest.fixture
def template(tmp_path: Path) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text("Resources: {}\n")
    return path


@pytest.fixture
def transforms(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SAM transform, replaced by one that records its calls; ``STARTS`` calls meet before
    any returns, so that their writes to the cache overlap."""
    calls: list[str] = []
    together = threading.Barrier(STARTS, timeout=30)

    def transform(source: str, region: str) -> dict[str, Any]:
        calls.append(region)
        together.wait()
        return {"Resources": {}, "Region": region}

    monkeypatch.setattr(stack, "_transform", transform)
    return calls


def test_starts_at_once_each_get_the_template_and_leave_one_whole_entry(
    template: Path, tmp_path: Path, transforms: list[str]
) -> None:
    cache = tmp_path / "cache"
    with ThreadPoolExecutor(max_workers=STARTS) as pool:
        loads = [
            pool.submit(transformed_template, template, "eu-west-1", cache) for _ in range(STARTS)
        ]
        results = [load.result() for load in loads]
    assert results == [{"Resources": {}, "Region": "eu-west-1"}] * STARTS
    assert transforms == ["eu-west-1"] * STARTS  # each start transformed: none found an entry
    entries = sorted(path.name for path in cache.iterdir())
    assert len(entries) == 1  # no temporary file left behind
    assert json.loads((cache / entries[0]).read_text()) == results[0]


def test_a_damaged_entry_is_a_miss_and_is_replaced(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setattr(stack, "_transform", lambda source, region: {"Region": region})
    transformed_template(template, "us-east-1", cache)
    [entry] = cache.iterdir()
    entry.write_text('{"Resources": ')  # a start killed mid-write by an older version
    assert transformed_template(template, "us-east-1", cache) == {"Region": "us-east-1"}
    assert json.loads(entry.read_text()) == {"Region": "us-east-1"}


def test_only_the_most_recently_used_entries_are_kept(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    old = [cache / f"template-old{n}.json" for n in range(CACHE_KEPT + 3)]
    for age, entry in enumerate(old):
        entry.write_text("{}")
        os.utime(entry, (1_000_000 - age, 1_000_000 - age))  # old[0] is the newest of them
    monkeypatch.setattr(stack, "_transform", lambda source, region: {"Region": region})
    transformed_template(template, "us-east-1", cache)
    kept = {entry.name for entry in cache.iterdir()}
    assert len(kept) == CACHE_KEPT
    assert {entry.name for entry in old[: CACHE_KEPT - 1]} < kept  # and the new entry
