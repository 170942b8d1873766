"""infra/openapi.json is the merged OpenAPI of every API function, and must be current."""

from infra.local.openapi import EXPORTED, documents_in_process, merge, render
from infra.local.stack import Stack


def test_exported_openapi_is_current() -> None:
    current = render(merge(documents_in_process(Stack.load())))
    assert EXPORTED.read_text() == current, "infra/openapi.json is stale: run `make openapi`"
