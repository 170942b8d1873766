"""One OpenAPI document for the whole API, merged from every API function's FastAPI app.

The local cloud serves it at ``/openapi.json`` (Swagger UI at ``/docs``, ReDoc at ``/redoc``),
and ``infra/openapi.json`` holds a copy that a test keeps current (``make openapi`` rewrites it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from infra.local.stack import ROOT, Stack

EXPORTED = ROOT / "infra" / "openapi.json"


def merge(
    documents: Iterable[dict[str, Any]], title: str = "ordo", version: str = "0.1.0"
) -> dict[str, Any]:
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": {},
        "components": {"schemas": {}},
    }
    for document in documents:
        for path, operations in document.get("paths", {}).items():
            merged["paths"].setdefault(path, {}).update(operations)
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            known = merged["components"]["schemas"].setdefault(name, schema)
            if known != schema:
                raise ValueError(f"two functions define the schema {name!r} differently")
    merged["paths"] = dict(sorted(merged["paths"].items()))
    merged["components"]["schemas"] = dict(sorted(merged["components"]["schemas"].items()))
    return merged


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def write(document: dict[str, Any], path: Path = EXPORTED) -> None:
    path.write_text(render(document))


def documents_in_process(stack: Stack) -> list[dict[str, Any]]:
    """Each API function's OpenAPI document, from its FastAPI app loaded in this process."""
    from infra.local.inprocess import load_handler_module

    documents = []
    for function in stack.functions().values():
        if not function.http_routes:
            continue
        app = getattr(load_handler_module(function), "app", None)
        if app is not None:
            documents.append(app.openapi())
    return documents


def main() -> None:
    """``make openapi``: rewrite infra/openapi.json from the functions' apps."""
    write(merge(documents_in_process(Stack.load())))
    print(f"wrote {EXPORTED.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
