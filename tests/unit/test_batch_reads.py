"""``base_items``: a page of index keys becomes the table's items, in order, whatever
BatchGetItem does with them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest

from ordo.errors import Unavailable
from ordo.storage.batch import ATTEMPTS, base_items

TABLE = "jobs"


def key(n: int) -> dict[str, Any]:
    return {"pk": {"S": f"JOB#{n}"}, "sk": {"S": "JOB"}}


def index_entry(n: int) -> dict[str, Any]:
    return key(n) | {"gsi1pk": {"S": "JOBS#alice"}, "gsi1sk": {"S": f"{n:04d}"}}


class FakeBatchGet:
    """A table of items, served in reverse order and at most ``per_call`` keys per call; the
    rest come back as UnprocessedKeys, as DynamoDB does when a response would pass 16 MB."""

    def __init__(self, items: dict[int, str], per_call: int = 100) -> None:
        self.items = items
        self.per_call = per_call
        self.calls: list[dict[str, Any]] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        request = RequestItems[TABLE]
        self.calls.append(request)
        assert request["ConsistentRead"] is True
        assert len(request["Keys"]) <= 100
        served, left = request["Keys"][: self.per_call], request["Keys"][self.per_call :]
        found = []
        for k in served:
            n = int(k["pk"]["S"].removeprefix("JOB#"))
            if n in self.items:
                found.append(k | {"data": {"S": self.items[n]}})
        response: dict[str, Any] = {"Responses": {TABLE: found[::-1]}}
        if left:
            response["UnprocessedKeys"] = {TABLE: {"Keys": left, "ConsistentRead": True}}
        return response


def no_wait(_: float) -> None:
    """Unit tests never sleep."""


def read(
    client: FakeBatchGet, entries: list[dict[str, Any]], sleep: Callable[[float], None] = no_wait
) -> list[dict[str, Any]]:
    return base_items(cast(Any, client), TABLE, entries, sleep=sleep)


def test_items_come_back_in_the_index_order_without_the_missing_ones() -> None:
    client = FakeBatchGet({1: "one", 2: "two", 4: "four"})

    items = read(client, [index_entry(n) for n in (4, 3, 2, 1)])

    assert [item["data"]["S"] for item in items] == ["four", "two", "one"]
    assert "gsi1pk" not in client.calls[0]["Keys"][0]  # only the table's key is sent


def test_unprocessed_keys_are_asked_again_with_backoff() -> None:
    client = FakeBatchGet({n: str(n) for n in range(5)}, per_call=2)
    waits: list[float] = []

    items = read(client, [index_entry(n) for n in range(5)], sleep=waits.append)

    assert [item["data"]["S"] for item in items] == ["0", "1", "2", "3", "4"]
    assert [len(call["Keys"]) for call in client.calls] == [5, 3, 1]
    assert len(waits) == 2


def test_more_than_a_hundred_keys_go_in_batches_of_a_hundred() -> None:
    client = FakeBatchGet({n: str(n) for n in range(250)})

    items = read(client, [index_entry(n) for n in range(250)])

    assert [int(item["data"]["S"]) for item in items] == list(range(250))
    assert [len(call["Keys"]) for call in client.calls] == [100, 100, 50]


def test_keys_still_unprocessed_after_every_attempt_are_a_503() -> None:
    client = FakeBatchGet({1: "one"}, per_call=0)

    with pytest.raises(Unavailable):
        read(client, [index_entry(1)])
    assert len(client.calls) == ATTEMPTS


def test_an_empty_page_reads_nothing() -> None:
    client = FakeBatchGet({})

    assert read(client, []) == []
    assert client.calls == []
