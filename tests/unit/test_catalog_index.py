"""The in-memory catalog index answers exactly as a plain filter-then-sort over every product."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ordo.catalog import CatalogIndex, Listing, Product, SortBy, SortOrder, TextIndex

WORDS = ["Blue", "red", "STEEL", "widget", "Straße", "gear", "a\x00b", "ab", "nut"]


def _products(count: int, seed: int) -> list[Product]:
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        Product(
            id=f"{rng.getrandbits(128):032x}",
            name=" ".join(rng.choices(WORDS, k=rng.randint(1, 3))),
            description=" ".join(rng.choices(WORDS, k=rng.randint(0, 4))),
            price=Decimal(rng.randrange(0, 2_000)) / 100,
            stock=rng.choice([0, 0, 1, 5, 40]),
            category=rng.choice(["", "tools", "fruit", "toys"]),
            sku=f"SKU-{rng.choice(WORDS)}-{n}",
            created_at=start + timedelta(minutes=rng.randrange(0, 50)),
            updated_at=start,
        )
        for n in range(count)
    ]


def _expected(products: list[Product], listing: Listing, query: str | None) -> list[str]:
    def keep(p: Product) -> bool:
        text = f"{p.name}\n{p.description}\n{p.sku}".casefold()
        return (
            (listing.name is None or listing.name.casefold() in p.name.casefold())
            and (query is None or query.casefold() in text)
            and (listing.category is None or p.category == listing.category)
            and (listing.min_price is None or p.price >= listing.min_price)
            and (listing.max_price is None or p.price <= listing.max_price)
            and (not listing.in_stock_only or p.stock > 0)
        )

    def key(p: Product) -> tuple[object, str]:
        value = {
            SortBy.NAME: p.name.casefold(),
            SortBy.PRICE: p.price,
            SortBy.CREATED_AT: p.created_at,
            SortBy.STOCK: p.stock,
        }[listing.sort_by]
        return value, p.id

    chosen = sorted(filter(keep, products), key=key)
    return [p.id for p in (reversed(chosen) if listing.sort_order is SortOrder.DESC else chosen)]


@pytest.mark.parametrize("seed", range(6))
def test_every_listing_and_search_matches_a_plain_filter_and_sort(seed: int) -> None:
    products = _products(300, seed)
    index = CatalogIndex()
    index._build(1, products)
    rng = random.Random(seed)
    needles = [None, "", "e", "STEEL", "sse", "ss", "a\x00b", "\x00", "t w", "b\nr", "sku-n", "zz"]
    prices = [
        None,
        Decimal("0"),
        Decimal("5.5"),
        Decimal("5.505"),
        Decimal("5.51"),
        Decimal("19.99"),
    ]
    for _ in range(300):
        low, high = rng.choice(prices), rng.choice(prices)
        if low is not None and high is not None and low > high:
            low, high = high, low
        listing = (
            Listing(
                page=rng.randint(1, 4),
                page_size=rng.choice([1, 7, 100]),
                name=rng.choice(needles),
                category=rng.choice([None, "", "tools", "toys", "none"]),
                min_price=low,
                max_price=high,
                in_stock_only=rng.random() < 0.3,
                sort_by=rng.choice(list(SortBy)),
                sort_order=rng.choice(list(SortOrder)),
            )
            if rng.random() < 0.9
            else Listing()
        )
        query = rng.choice(needles)
        page = index.select(listing, query)
        expected = _expected(products, listing, query)
        start = (listing.page - 1) * listing.page_size
        assert [p.id for p in page.items] == expected[start : start + listing.page_size]
        assert page.total == len(expected)
        assert page.total_pages == math.ceil(len(expected) / listing.page_size)


def test_text_index_finds_each_text_once_and_never_across_two() -> None:
    texts = TextIndex({"a": "abcabc", "b": "c", "c": "ABC", "d": ""})
    assert texts.matching("abc") == {"a", "c"}
    assert texts.matching("ca") == {"a"}
    assert texts.matching("cc") == set()  # "…abc" + "c" would only match across texts
    assert texts.matching("") == {"a", "b", "c", "d"}
    assert TextIndex({}).matching("x") == set()
    assert TextIndex({}).matching("") == set()


def test_an_empty_index_lists_nothing() -> None:
    page = CatalogIndex().select(Listing(name="x"), "y")
    assert (page.items, page.total, page.total_pages) == ([], 0, 0)
