"""Writes ordo's trimmed botocore service models: ``python -m infra.botocore_models``.

Creating a botocore client parses its service's whole model: SSM's is ~0.95 MB of JSON, ~15 ms
of every cold start that reads a token key, for one operation (GetParameter). ordo's session
(``ordo.aws``) searches ``layers/core/ordo/botocore_data`` before botocore's own data, and finds
there, for each service of ``ordo.aws.TRIMMED``, a model holding only the operations ordo calls,
every shape they reach, the model's ``version`` and ``metadata``, and no documentation: ~2 ms.
Everything else (endpoints, endpoint rule sets, paginators) still comes from botocore.

Run it after upgrading botocore or calling a new operation (add it to ``ordo.aws.TRIMMED``);
tests/unit/test_botocore_models.py fails while the files differ from what it writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ordo.aws import DATA_PATH, TRIMMED

DATA = Path(DATA_PATH)
MODEL = "service-2"


def _referenced(shape: Mapping[str, Any]) -> Iterator[str]:
    """The shapes one shape names: members, list members, map keys and values."""
    for member in shape.get("members", {}).values():
        yield member["shape"]
    for key in ("member", "key", "value"):
        if key in shape:
            yield shape[key]["shape"]


def _undocumented(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _undocumented(v) for k, v in value.items() if k != "documentation"}
    if isinstance(value, list):
        return [_undocumented(item) for item in value]
    return value


def trim(model: Mapping[str, Any], operations: Iterable[str]) -> dict[str, Any]:
    """``model`` with only ``operations`` and the shapes they reach, without documentation."""
    kept = {name: model["operations"][name] for name in operations}
    pending = [
        ref["shape"]
        for operation in kept.values()
        for ref in (operation.get("input"), operation.get("output"), *operation.get("errors", ()))
        if ref
    ]
    shapes: dict[str, Any] = {}
    while pending:
        name = pending.pop()
        if name not in shapes:
            shapes[name] = model["shapes"][name]
            pending.extend(_referenced(shapes[name]))
    trimmed = {
        "version": model["version"],
        "metadata": model["metadata"],
        "operations": kept,
        "shapes": shapes,
    }
    return {key: _undocumented(value) for key, value in trimmed.items()}


def render(model: Mapping[str, Any]) -> str:
    return json.dumps(model, indent=1, sort_keys=True) + "\n"


def models() -> dict[Path, str]:
    """Each trimmed model's file (under :data:`DATA`) and text, from the installed botocore."""
    from botocore.loaders import Loader

    # botocore's own data alone: not ~/.aws/models, nor the files this writes.
    loader = Loader(
        extra_search_paths=[Loader.BUILTIN_DATA_PATH], include_default_search_paths=False
    )
    written = {}
    for service, operations in TRIMMED.items():
        version = loader.determine_latest_version(service, MODEL)
        model = loader.load_service_model(service, MODEL, version)
        written[DATA / service / version / f"{MODEL}.json"] = render(trim(model, operations))
    return written


def main() -> int:
    written = models()
    for path in set(DATA.rglob("*.json")) - set(written):
        path.unlink()  # a service no longer trimmed, or an older API version of it
        print(f"removed {path.relative_to(DATA.parent)}")
    for path, text in written.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(DATA.parent)} ({len(text) / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
