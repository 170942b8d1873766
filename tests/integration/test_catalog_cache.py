"""A container's catalog index after writes, on moto through the real adapter and handler.

Each ``CatalogIndex`` is one warm container. Its DynamoDB calls are counted with a botocore
event hook: a current container reads the version (one GetItem); one a few writes behind reads
their change records too (one Query); only one that misses a record loads the whole partition.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from infra.local.inprocess import load_handler_module
from ordo import aws
from ordo.catalog import CatalogIndex, Listing, Product, ProductNotFound, SortBy
from ordo.errors import Conflict
from ordo.storage.catalog import PARTITION, DynamoProductTable, change_sk
from tests.harness import Account, InProcessStack

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@dataclass
class Store:
    """The real adapter on its own client, with that client's calls recorded."""

    table: DynamoProductTable
    name: str
    calls: list[str] = field(default_factory=list)


def _store(
    cloud: InProcessStack, table_class: type[DynamoProductTable] = DynamoProductTable
) -> Store:
    client = boto3.client("dynamodb")
    name = cloud.stack.physical["JobsTable"]["Ref"]
    store = Store(table_class(client, name), name)
    client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: store.calls.append(model.name)
    )
    return store


@pytest.fixture
def store(cloud: InProcessStack) -> Store:
    return _store(cloud)


def _product(n: int, **fields: Any) -> Product:
    return Product(
        id=f"{n:032x}",
        name=f"widget {n}",
        description=f"made for shelf {n % 3}",
        price=Decimal(n % 7) + Decimal("0.99"),
        stock=n % 4,
        category=f"cat{n % 2}",
        sku=f"SKU-{n}",
        created_at=NOW + timedelta(minutes=n),
        updated_at=NOW + timedelta(minutes=n),
    ).model_copy(update=fields)


def _edit(product: Product, **fields: Any) -> Product:
    return product.model_copy(update=fields | {"updated_at": product.updated_at + timedelta(1)})


def _refreshed(index: CatalogIndex, store: Store) -> list[str]:
    """The calls one refresh made."""
    store.calls.clear()
    index.refresh(store.table)
    return list(store.calls)


def _assert_same_as_a_full_load(index: CatalogIndex, store: Store) -> None:
    fresh = CatalogIndex()
    fresh.refresh(store.table)
    assert index.version == fresh.version
    assert {k: e.product for k, e in index.products.items()} == {
        k: e.product for k, e in fresh.products.items()
    }
    for by in SortBy:
        listing = Listing(sort_by=by, page_size=100)
        assert index.select(listing) == fresh.select(listing)
        assert index.select(listing, "shelf 1") == fresh.select(listing, "shelf 1")
    assert index.by_category.keys() == fresh.by_category.keys()


def _seeded(store: Store, count: int) -> list[Product]:
    products = [_product(n) for n in range(count)]
    for product in products:
        store.table.create(product)
    return products


def test_a_container_behind_by_one_write_applies_it_with_one_query(store: Store) -> None:
    products = _seeded(store, 4)
    reader = CatalogIndex()
    reader.refresh(store.table)
    assert _refreshed(reader, store) == ["GetItem"]  # current: the version alone

    store.table.replace(products[1], _edit(products[1], name="renamed", price=Decimal("0.10")))

    assert _refreshed(reader, store) == ["GetItem", "Query"]
    assert (reader.version, reader.reloads, reader.catch_ups) == (5, 1, 1)
    assert reader.get(products[1].id).name == "renamed"
    assert reader.select(Listing(sort_by=SortBy.PRICE, sort_order="asc")).items[0].name == "renamed"
    _assert_same_as_a_full_load(reader, store)


def test_a_deleted_product_disappears_from_a_container_that_catches_up(store: Store) -> None:
    products = _seeded(store, 3)
    reader = CatalogIndex()
    reader.refresh(store.table)
    doomed = products[0]

    store.table.replace(doomed, _edit(doomed, deleted=True))

    assert _refreshed(reader, store) == ["GetItem", "Query"]
    with pytest.raises(ProductNotFound):
        reader.get(doomed.id)
    assert reader.select(Listing()).total == 2
    assert reader.select(Listing(), doomed.name).total == 0
    assert [p.id for p in reader.select(Listing(category=doomed.category)).items] == [
        products[2].id
    ]
    _assert_same_as_a_full_load(reader, store)


def test_a_container_within_its_limit_catches_up_and_one_beyond_loads_everything(
    store: Store,
) -> None:
    products = _seeded(store, 2)
    near, far = CatalogIndex(catch_up_limit=3), CatalogIndex(catch_up_limit=2)
    near.refresh(store.table)
    far.refresh(store.table)

    for n in range(10, 13):
        store.table.create(_product(n))
    store.calls.clear()

    assert _refreshed(near, store) == ["GetItem", "Query"]
    assert _refreshed(far, store) == ["GetItem", "GetItem", "Query"]  # then the full load
    assert (near.reloads, near.catch_ups, far.reloads, far.catch_ups) == (1, 1, 2, 0)
    assert len(near.products) == len(far.products) == len(products) + 3
    _assert_same_as_a_full_load(near, store)
    _assert_same_as_a_full_load(far, store)


def test_an_expired_change_record_means_a_full_load(cloud: InProcessStack, store: Store) -> None:
    products = _seeded(store, 2)
    reader = CatalogIndex()
    reader.refresh(store.table)
    for product in products:
        store.table.replace(product, _edit(product, stock=99))
    cloud.dynamodb.delete_item(  # what TTL does to an old record
        TableName=store.name, Key={"pk": {"S": PARTITION}, "sk": {"S": change_sk(3)}}
    )

    assert _refreshed(reader, store) == ["GetItem", "Query", "GetItem", "Query"]
    assert [reader.get(p.id).stock for p in products] == [99, 99]
    _assert_same_as_a_full_load(reader, store)


def test_every_version_has_one_change_record_that_expires(
    cloud: InProcessStack, store: Store
) -> None:
    products = _seeded(store, 2)
    store.table.replace(products[0], _edit(products[0], deleted=True))
    records = cloud.dynamodb.query(
        TableName=store.name,
        KeyConditionExpression="pk = :catalog AND begins_with(sk, :change)",
        ExpressionAttributeValues={":catalog": {"S": PARTITION}, ":change": {"S": "#CHANGE#"}},
    )["Items"]

    assert [int(r["version"]["N"]) for r in records] == [1, 2, 3]
    written = [r["products"]["L"][0]["M"] for r in records]
    assert [(w["id"]["S"], w["deleted"]["BOOL"]) for w in written] == [
        (products[0].id, False),
        (products[1].id, False),
        (products[0].id, True),
    ]
    ttl = cloud.dynamodb.describe_time_to_live(TableName=store.name)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at"
    expected = products[1].updated_at + timedelta(days=1)
    assert int(records[1]["expires_at"]["N"]) == int(expected.timestamp())


class _ReadsTheVersionEarly(DynamoProductTable):
    """An admin whose rival commits between its reading the version and its transaction."""

    rival: Callable[[], None] | None = None

    def version(self) -> int:
        seen = super().version()
        if self.rival is not None:
            rival, self.rival = self.rival, None
            rival()
        return seen


def test_two_admins_writing_at_once_both_land_each_at_its_own_version(
    cloud: InProcessStack, store: Store
) -> None:
    products = _seeded(store, 2)
    reader = CatalogIndex()
    reader.refresh(store.table)
    late = _store(cloud, _ReadsTheVersionEarly)
    assert isinstance(late.table, _ReadsTheVersionEarly)
    late.table.rival = lambda: store.table.replace(products[0], _edit(products[0], stock=7))

    late.table.replace(products[1], _edit(products[1], stock=8))

    # its first transaction lost on the version, the second one landed at the next
    assert late.calls.count("TransactWriteItems") == 2
    assert _refreshed(reader, store) == ["GetItem", "Query"]
    assert (reader.version, reader.catch_ups) == (4, 1)
    assert [reader.get(p.id).stock for p in products] == [7, 8]
    _assert_same_as_a_full_load(reader, store)


def test_two_admins_editing_one_product_at_once_is_still_a_conflict(
    cloud: InProcessStack, store: Store
) -> None:
    (product,) = _seeded(store, 1)
    late = _store(cloud, _ReadsTheVersionEarly)
    assert isinstance(late.table, _ReadsTheVersionEarly)
    late.table.rival = lambda: store.table.replace(product, _edit(product, stock=7))

    with pytest.raises(Conflict):
        late.table.replace(product, _edit(product, stock=8))

    reader = CatalogIndex()
    reader.refresh(store.table)
    assert (reader.version, reader.get(product.id).stock) == (2, 7)


# --- through the handler: two containers -----------------------------------------------------

WIDGET = {"name": "Blue Widget", "price": "19.99", "stock": 5, "category": "w", "sku": "W-1"}


def test_a_second_container_sees_an_admins_write_with_one_query(cloud: InProcessStack) -> None:
    from infra.local.context import LambdaContext
    from infra.local.events import http_event

    admin: Account = cloud.sign_up("root", admin=True)
    reader = load_handler_module(cloud.functions["ProductsFunction"])

    def search(q: str) -> Any:
        event = http_event(
            "GET", "/products/search", route="/products/search", query=f"q={q}", headers={}
        )
        raw = reader.handler(event, LambdaContext("ProductsFunction", 10, 1024))
        assert raw["statusCode"] == 200, raw
        return json.loads(raw["body"])

    for n in range(3):
        body = WIDGET | {"sku": f"W-{n}", "name": f"Widget {n}"}
        created = cloud.request("POST", "/products", body, token=admin.access_token).body
    assert search("widget")["total"] == 3
    calls: list[str] = []
    aws.dynamodb().meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    edited = cloud.request(
        "PUT", f"/products/{created['id']}", {"name": "Gadget"}, token=admin.access_token
    )
    assert edited.status == 200
    calls.clear()

    assert [p["name"] for p in search("gadget")["items"]] == ["Gadget"]
    assert calls == ["GetItem", "Query"]
    assert (reader.index.reloads, reader.index.catch_ups) == (1, 1)
