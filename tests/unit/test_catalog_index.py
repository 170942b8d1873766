"""The in-memory catalog index answers exactly as a plain filter-then-sort over every product."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ordo.catalog import (
    CatalogHead,
    CatalogIndex,
    Change,
    Listing,
    Product,
    SortBy,
    SortOrder,
    TextIndex,
    changes_to_apply,
)

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


# --- catching up from change records ----------------------------------------------------------


def _changed(product: Product, **fields: object) -> Product:
    return product.model_copy(update=fields)


def _ids(index: CatalogIndex, listing: Listing, query: str | None = None) -> list[str]:
    every = listing.model_copy(update={"page_size": 100})
    found: list[str] = []
    page = 1
    while True:
        chunk = index.select(every.model_copy(update={"page": page}), query).items
        found += [p.id for p in chunk]
        if len(chunk) < every.page_size:
            return found
        page += 1


def _assert_same_as_a_full_load(index: CatalogIndex, live: list[Product]) -> None:
    fresh = CatalogIndex()
    fresh._build(index.version, live)
    assert index.products.keys() == fresh.products.keys()
    assert {key: e.product for key, e in index.products.items()} == {
        key: e.product for key, e in fresh.products.items()
    }
    for by in SortBy:
        assert [e.product.id for e in index.orders[by]] == [e.product.id for e in fresh.orders[by]]
    assert {
        category: {by: [e.product.id for e in ordered] for by, ordered in orders.items()}
        for category, orders in index.by_category.items()
    } == {
        category: {by: [e.product.id for e in ordered] for by, ordered in orders.items()}
        for category, orders in fresh.by_category.items()
    }
    for needle in (None, "", "e", "STEEL", "ss", "a\x00b", "sku-"):
        for listing in (Listing(), Listing(sort_by=SortBy.NAME, category="tools", name="e")):
            assert _ids(index, listing, needle) == _ids(fresh, listing, needle)


@pytest.mark.parametrize("seed", range(4))
def test_applying_writes_in_place_equals_a_full_load(seed: int) -> None:
    rng = random.Random(seed)
    pool = _products(400, seed + 100)
    live = {p.id: p for p in pool[:150]}
    index = CatalogIndex()
    index._build(1, list(live.values()))
    fresh_products = iter(pool[150:])
    for version in range(2, 80):
        written: list[Product] = []
        for _ in range(rng.randint(1, 4)):
            action = rng.random()
            if action < 0.3 or not live:  # create
                product = next(fresh_products)
            elif action < 0.5:  # delete
                product = _changed(live[rng.choice(list(live))], deleted=True)
            else:  # update: a sort key, the category, the searched text
                before = live[rng.choice(list(live))]
                product = _changed(
                    before,
                    name=rng.choice([before.name, *WORDS]),
                    price=Decimal(rng.randrange(0, 2_000)) / 100,
                    stock=rng.choice([0, 3, before.stock]),
                    category=rng.choice(["", "tools", "toys", "new"]),
                    description=rng.choice(["", "STEEL gear", before.description]),
                )
            written.append(product)
            if product.deleted:
                live.pop(product.id, None)
            else:
                live[product.id] = product
        index.apply(version, written)
        assert index.version == version
        if version % 13 == 0 or version == 79:
            _assert_same_as_a_full_load(index, list(live.values()))
    assert (index.reloads, index.catch_ups) == (1, 78)


def test_text_index_replaces_and_forgets_texts_and_stays_compact() -> None:
    texts = TextIndex({"a": "Apple", "b": "Banana"})
    texts.put("a", "Cherry")
    texts.put("c", "apple pie")
    texts.discard("b")
    texts.discard("missing")
    assert texts.matching("apple") == {"c"}  # "a" no longer says Apple
    assert texts.matching("e") == {"a", "c"}
    assert texts.matching("") == {"a", "c"}
    assert texts.matching("ana") == set()
    for n in range(500):
        texts.put("a", f"cherry {n}")
    assert len(texts.ids) < 2 * len(texts.positions) + 66  # dead places are swept away
    assert texts.matching("cherry") == {"a"}
    assert texts.matching("cherry 499") == {"a"}
    assert texts.matching("cherry 498") == set()
    empty = TextIndex({})
    empty.put("x", "")
    empty.put("y", "ab")
    assert (empty.matching("ab"), empty.matching(""), empty.matching("\x00")) == (
        {"y"},
        {"x", "y"},
        set(),
    )


def _change(version: int, *products: Product) -> Change:
    return Change(version, products)


def test_changes_to_apply_in_version_order_whatever_order_they_came_in() -> None:
    one, two, three = _products(3, 9)
    gone = _changed(one, deleted=True)
    head = CatalogHead(7, (_change(7, gone), _change(5, one), _change(6, two, three)))
    assert changes_to_apply(4, head) == [one, two, three, gone]
    assert changes_to_apply(6, head) == [gone]
    assert changes_to_apply(7, head) == []


@pytest.mark.parametrize(
    ("since", "head"),
    [
        (4, CatalogHead(7, (_change(7), _change(5)))),  # 6 missing: expired, or not visible
        (2, CatalogHead(7, (_change(7), _change(6), _change(5)))),  # too far behind
        (9, CatalogHead(7, (_change(7),))),  # the catalog went back: a new table
        (0, CatalogHead(1, ())),  # a version with no record at all
    ],
)
def test_a_missing_change_record_means_a_full_load(since: int, head: CatalogHead) -> None:
    assert changes_to_apply(since, head) is None


def test_a_record_newer_than_the_version_read_waits_for_the_next_read() -> None:
    (product,) = _products(1, 3)
    assert changes_to_apply(4, CatalogHead(5, (_change(6, product), _change(5)))) == []


class _ScriptedTable:
    """Answers as told, and records what was asked."""

    def __init__(self, head: CatalogHead, live: list[Product]) -> None:
        self.answer, self.live, self.asked = head, live, list[str]()

    def version(self) -> int:
        self.asked.append("version")
        return self.answer.version

    def changes(self, after: int, through: int) -> tuple[Change, ...]:
        self.asked.append(f"changes({after}, {through})")
        return self.answer.changes

    def load(self) -> tuple[int, list[Product]]:
        self.asked.append("load")
        return self.answer.version, self.live

    def create(self, product: Product) -> None:
        raise NotImplementedError

    def replace(self, before: Product, after: Product) -> None:
        raise NotImplementedError


def test_refresh_catches_up_in_place_or_loads_everything() -> None:
    old, new = _products(2, 5)
    index = CatalogIndex(catch_up_limit=3)
    first = _ScriptedTable(CatalogHead(4), [old])
    index.refresh(first)  # a cold container loads
    assert (first.asked, index.version, index.reloads) == (["version", "load"], 4, 1)

    current = _ScriptedTable(CatalogHead(4), [])
    index.refresh(current)
    assert (current.asked, index.version) == (["version"], 4)

    behind = _ScriptedTable(CatalogHead(5, (_change(5, new),)), [])
    index.refresh(behind)
    assert (behind.asked, index.reloads, index.catch_ups) == (["version", "changes(4, 5)"], 1, 1)
    assert set(index.products) == {old.id, new.id}

    gap = _ScriptedTable(CatalogHead(7, (_change(7, _changed(old, deleted=True)),)), [new])
    index.refresh(gap)
    assert gap.asked == ["version", "changes(5, 7)", "load"]
    assert (index.version, index.reloads) == (7, 2)
    assert set(index.products) == {new.id}

    far = _ScriptedTable(CatalogHead(11), [old])  # beyond the limit: not even asked
    index.refresh(far)
    assert (far.asked, index.version, index.reloads) == (["version", "load"], 11, 3)

    reset = _ScriptedTable(CatalogHead(2, (_change(2, new),)), [old, new])  # a new table
    index.refresh(reset)
    assert (reset.asked, index.version, index.reloads) == (["version", "load"], 2, 4)
