"""The product catalog through the real handler on moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.local.inprocess import load_handler_module
from tests.harness import Account, InProcessStack

WIDGET = {
    "name": "Blue Widget",
    "description": "A widget, in blue",
    "price": "19.99",
    "stock": 5,
    "category": "widgets",
    "sku": "WID-001",
}


@pytest.fixture
def admin(cloud: InProcessStack) -> Account:
    return cloud.sign_up("root", admin=True)


def create(cloud: InProcessStack, admin: Account, **changes: Any) -> dict[str, Any]:
    response = cloud.request("POST", "/products", WIDGET | changes, token=admin.access_token)
    assert response.status == 201, response.body
    body: dict[str, Any] = response.body
    return body


def listed(cloud: InProcessStack, query: str) -> dict[str, Any]:
    response = cloud.request("GET", "/products", query=query, token=None)
    assert response.status == 200, response.body
    body: dict[str, Any] = response.body
    return body


def names(page: dict[str, Any]) -> list[str]:
    return [item["name"] for item in page["items"]]


def test_create_returns_the_product_with_an_exact_price(
    cloud: InProcessStack, admin: Account
) -> None:
    product = create(cloud, admin)
    assert set(product) == {
        "id",
        "name",
        "description",
        "price",
        "stock",
        "category",
        "sku",
        "created_at",
        "updated_at",
    }
    assert product["price"] == 19.99
    raw = cloud.dynamodb.get_item(
        TableName=cloud.stack.physical["JobsTable"]["Ref"],
        Key={"pk": {"S": "CATALOG"}, "sk": {"S": f"PRODUCT#{product['id']}"}},
    )["Item"]
    assert raw["price"] == {"N": "19.99"}  # a DynamoDB number, exactly
    shown = cloud.request("GET", f"/products/{product['id']}", token=None)
    assert json.dumps(shown.body["price"]) == "19.99"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"sku": ""}, "sku"),
        ({"sku": "x" * 51}, "sku"),
        ({"price": "-0.01"}, "price"),
        ({"price": "1.001"}, "price"),
        ({"price": "abc"}, "price"),
        ({"stock": -1}, "stock"),
        ({"stock": 1.5}, "stock"),
        ({"category": "x" * 101}, "category"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_products_are_422(
    cloud: InProcessStack, admin: Account, changes: dict[str, Any], problem: str
) -> None:
    response = cloud.request("POST", "/products", WIDGET | changes, token=admin.access_token)
    assert response.status == 422
    assert problem in response.body["detail"]


def test_the_boundaries_are_accepted(cloud: InProcessStack, admin: Account) -> None:
    edge = create(
        cloud, admin, name="x" * 255, sku="s" * 50, price="0", stock=0, category="c" * 100
    )
    assert (edge["price"], edge["stock"]) == (0, 0)
    bare = cloud.request(
        "POST", "/products", {"name": "n", "price": 1, "sku": "B-1"}, token=admin.access_token
    )
    assert (bare.status, bare.body["stock"], bare.body["category"]) == (201, 0, "")


def test_a_duplicate_sku_is_409_and_a_deleted_products_sku_is_free(
    cloud: InProcessStack, admin: Account
) -> None:
    first = create(cloud, admin)
    twin = cloud.request("POST", "/products", WIDGET | {"sku": "wid-001"}, token=admin.access_token)
    assert twin.status == 409
    assert "WID-001" in twin.body["detail"] or "wid-001" in twin.body["detail"]
    assert (
        cloud.request("DELETE", f"/products/{first['id']}", token=admin.access_token).status == 204
    )
    gone = cloud.request("GET", f"/products/{first['id']}", token=None)
    assert (gone.status, gone.body) == (404, {"detail": "Product not found"})
    assert listed(cloud, "")["total"] == 0
    assert cloud.request("GET", "/products/search", query="q=widget", token=None).body["total"] == 0
    create(cloud, admin)  # the SKU again


def test_update_is_partial_and_validated(cloud: InProcessStack, admin: Account) -> None:
    product = create(cloud, admin)
    other = create(cloud, admin, sku="OTHER-1", name="Other")
    url = f"/products/{product['id']}"
    changed = cloud.request("PUT", url, {"price": "5.50", "stock": 0}, token=admin.access_token)
    assert (changed.status, changed.body["price"], changed.body["name"]) == (
        200,
        5.5,
        "Blue Widget",
    )
    assert changed.body["updated_at"] > product["updated_at"]
    assert cloud.request("PUT", url, {"price": "-1"}, token=admin.access_token).status == 422
    taken = cloud.request("PUT", url, {"sku": other["sku"]}, token=admin.access_token)
    assert taken.status == 409
    moved = cloud.request("PUT", url, {"sku": "NEW-9"}, token=admin.access_token)
    assert moved.status == 200
    create(cloud, admin)  # WID-001 was released by the move


def test_who_may_write(cloud: InProcessStack, admin: Account) -> None:
    product = create(cloud, admin)
    url = f"/products/{product['id']}"
    for token, expected in ((None, 401), (cloud.token, 403)):
        assert (
            cloud.request("POST", "/products", WIDGET | {"sku": "Z"}, token=token).status
            == expected
        )
        assert cloud.request("PUT", url, {"stock": 1}, token=token).status == expected
        assert cloud.request("DELETE", url, token=token).status == expected
    for path in ("/products", f"/products/{product['id']}", "/products/search?q=blue"):
        route, _, query = path.partition("?")
        assert cloud.request("GET", route, query=query, token=None).status == 200


def _catalog(cloud: InProcessStack, admin: Account) -> None:
    for name, price, stock, category in [
        ("Apple", "1.50", 10, "fruit"),
        ("banana", "0.25", 0, "fruit"),
        ("Cherry", "5.00", 3, "fruit"),
        ("Drill", "49.99", 1, "tools"),
        ("Hammer", "15.00", 0, "tools"),
    ]:
        create(
            cloud,
            admin,
            name=name,
            price=price,
            stock=stock,
            category=category,
            sku=f"SKU-{name}",
            description=f"a fine {name.lower()}",
        )


def test_filters_sorts_and_pages(cloud: InProcessStack, admin: Account) -> None:
    _catalog(cloud, admin)
    assert names(listed(cloud, "")) == ["Hammer", "Drill", "Cherry", "banana", "Apple"]
    assert names(listed(cloud, "sort_by=name&sort_order=asc")) == [
        "Apple",
        "banana",
        "Cherry",
        "Drill",
        "Hammer",
    ]
    assert names(listed(cloud, "sort_by=price&sort_order=asc"))[0] == "banana"
    assert names(listed(cloud, "sort_by=stock&sort_order=desc"))[0] == "Apple"
    assert names(listed(cloud, "name=AN&sort_by=name&sort_order=asc")) == ["banana"]
    assert names(listed(cloud, "category=tools&sort_by=name&sort_order=asc")) == ["Drill", "Hammer"]
    assert names(listed(cloud, "min_price=1.5&max_price=15&sort_by=price&sort_order=asc")) == [
        "Apple",
        "Cherry",
        "Hammer",
    ]
    assert names(
        listed(cloud, "in_stock_only=true&category=fruit&sort_by=name&sort_order=asc")
    ) == ["Apple", "Cherry"]
    page = listed(cloud, "page=2&page_size=2&sort_by=name&sort_order=asc")
    assert (names(page), page["total"], page["total_pages"], page["page"]) == (
        ["Cherry", "Drill"],
        5,
        3,
        2,
    )
    assert listed(cloud, "page=9")["items"] == []


@pytest.mark.parametrize(
    "query",
    [
        "sort_by=colour",
        "sort_order=up",
        "min_price=5&max_price=1",
        "page=0",
        "page_size=101",
        "min_price=-1",
    ],
)
def test_bad_listing_queries_are_422(cloud: InProcessStack, admin: Account, query: str) -> None:
    response = cloud.request("GET", "/products", query=query, token=None)
    assert response.status == 422
    assert response.body["detail"]


def test_search_looks_in_name_description_and_sku(cloud: InProcessStack, admin: Account) -> None:
    _catalog(cloud, admin)

    def found(q: str) -> list[str]:
        response = cloud.request(
            "GET", "/products/search", query=f"q={q}&sort_by=name&sort_order=asc", token=None
        )
        assert response.status == 200, response.body
        return names(response.body)

    assert found("APPLE") == ["Apple"]  # name
    assert found("fine%20dri") == ["Drill"]  # description
    assert found("sku-ham") == ["Hammer"]  # sku
    for bad in ("", "x" * 101):
        assert cloud.request("GET", "/products/search", query=f"q={bad}", token=None).status == 422


def test_etag_and_304(cloud: InProcessStack, admin: Account) -> None:
    product = create(cloud, admin)
    for path, query in (("/products", "page_size=5"), (f"/products/{product['id']}", "")):
        first = cloud.request("GET", path, query=query, token=None)
        etag = first.headers["etag"]
        again = cloud.request("GET", path, query=query, token=None, headers={"if-none-match": etag})
        assert (again.status, again.body) == (304, None)
    cloud.request("PUT", f"/products/{product['id']}", {"stock": 9}, token=admin.access_token)
    stale = cloud.request(
        "GET", "/products", query="page_size=5", token=None, headers={"if-none-match": etag}
    )
    assert stale.status == 200


def test_a_write_through_one_instance_is_seen_by_another_at_once(
    cloud: InProcessStack, admin: Account
) -> None:
    """Two containers: each handler module has its own index."""
    reader = load_handler_module(cloud.functions["ProductsFunction"])
    first = create(cloud, admin, name="Before")
    other_index = reader.index

    def read_through_other(path: str, query: str = "") -> Any:
        from infra.local.context import LambdaContext
        from infra.local.events import http_event

        event = http_event(
            "GET",
            path,
            route="/products" if path == "/products" else "/products/{product_id}",
            path_parameters={} if path == "/products" else {"product_id": path.rsplit("/", 1)[1]},
            query=query,
            headers={"host": "api.local"},
        )
        raw = reader.handler(event, LambdaContext("ProductsFunction", 10, 1024))
        return raw["statusCode"], json.loads(raw["body"]) if raw.get("body") else None

    assert read_through_other("/products")[1]["total"] == 1
    loads = other_index.reloads
    cloud.request("PUT", f"/products/{first['id']}", {"name": "After"}, token=admin.access_token)
    status, body = read_through_other(f"/products/{first['id']}")
    assert (status, body["name"]) == (200, "After")
    assert other_index.reloads == loads  # caught up from the change record, not reloaded
    cloud.request("DELETE", f"/products/{first['id']}", token=admin.access_token)
    assert read_through_other(f"/products/{first['id']}")[0] == 404
    assert read_through_other("/products")[1]["total"] == 0


def test_a_read_costs_one_dynamodb_call_while_the_index_is_current(
    cloud: InProcessStack, admin: Account
) -> None:
    from ordo import aws

    create(cloud, admin)
    listed(cloud, "")  # loads the index
    calls: list[str] = []
    aws.dynamodb().meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    listed(cloud, "name=blue&sort_by=price")
    cloud.request("GET", "/products/search", query="q=widget", token=None)
    assert calls == ["GetItem", "GetItem"]  # the version, once per request


def test_a_write_reads_its_product_from_the_table_not_the_containers_index(
    cloud: InProcessStack, admin: Account
) -> None:
    from ordo import aws

    product = create(cloud, admin)
    calls: list[str] = []
    aws.dynamodb().meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    url = f"/products/{product['id']}"
    edited = cloud.request("PUT", url, {"stock": 9}, token=admin.access_token)
    assert (edited.status, edited.body["stock"]) == (200, 9)
    assert "Query" not in calls  # no catalog loaded to find the product
    assert cloud.module("ProductsFunction").index.version == -1  # the index was never read
    assert cloud.request("DELETE", url, token=admin.access_token).status == 204
    # a deleted, an unknown and a malformed product are all missing to a write
    for missing in (url, f"/products/{'0' * 32}", "/products/not-an-id"):
        put = cloud.request("PUT", missing, {"stock": 1}, token=admin.access_token)
        assert (put.status, put.body) == (404, {"detail": "Product not found"})
        assert cloud.request("DELETE", missing, token=admin.access_token).status == 404
