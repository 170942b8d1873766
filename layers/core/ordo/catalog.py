"""The product catalog: admins write, anyone lists, filters, sorts, searches and reads.

Reads are served from an in-memory index that each warm container keeps. Every write moves the
catalog's version from *v* to *v+1* and stores a change record for *v+1* (the products as
written) in the same transaction. A read costs one small GetItem of the version while the index
is current; after writes, one Query more brings the change records since the index's version,
applied in place. Only a container that misses a change record (too far behind, or expired)
loads the whole catalog again.

Writes never touch an index: one reads the product it changes from the table, and its new
version is what every index notices at its next read.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator

from ordo.errors import Conflict, InvalidInput, NotFound

PRODUCT_ID = re.compile(r"^[0-9a-f]{32}$")

# Exact decimals in, a JSON number out. Two decimal places and at most 12 digits: its float
# prints back as the same digits, so "19.99" is shown as 19.99.
Price = Annotated[
    Decimal,
    Field(ge=0, max_digits=12, decimal_places=2),
    PlainSerializer(float, return_type=float, when_used="json"),
]
# A price filter: finer than a cent is allowed (it rounds to the cents it can match), but no
# number so long that ``Decimal`` arithmetic on it overflows (``1e999999``).
PriceBound = Annotated[Decimal, Field(ge=0, max_digits=16, decimal_places=4)]


class ProductNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Product not found")


class SkuTaken(Conflict):
    def __init__(self, sku: str) -> None:
        super().__init__(f"SKU {sku!r} is already used by another product")


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=255)
    description: str = Field(default="", max_length=5000)
    price: Price
    stock: int = Field(default=0, ge=0, le=10**9)
    category: str = Field(default="", max_length=100)
    sku: str = Field(min_length=1, max_length=50)


class ProductUpdate(BaseModel):
    """``PUT``: any subset of the fields, with the same rules."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=5000)
    price: Price | None = None
    stock: int | None = Field(default=None, ge=0, le=10**9)
    category: str | None = Field(default=None, max_length=100)
    sku: str | None = Field(default=None, min_length=1, max_length=50)


class Product(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    description: str
    price: Price
    stock: int
    category: str
    sku: str
    created_at: datetime
    updated_at: datetime
    deleted: bool = Field(default=False, exclude=True)


class SortBy(StrEnum):
    NAME = "name"
    PRICE = "price"
    CREATED_AT = "created_at"
    STOCK = "stock"


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"


class Listing(BaseModel):
    """The query of ``GET /products`` (and the paging of search)."""

    model_config = ConfigDict(frozen=True)

    page: int = Field(default=1, ge=1, le=100_000)
    page_size: int = Field(default=10, ge=1, le=100)
    name: str | None = Field(default=None, max_length=255)
    category: str | None = Field(default=None, max_length=100)
    min_price: PriceBound | None = None
    max_price: PriceBound | None = None
    in_stock_only: bool = False
    sort_by: SortBy = SortBy.CREATED_AT
    sort_order: SortOrder = SortOrder.DESC

    @model_validator(mode="after")
    def _price_range(self) -> Listing:
        if (
            self.min_price is not None
            and self.max_price is not None
            and self.min_price > self.max_price
        ):
            raise ValueError("min_price is above max_price")
        return self


class ProductPage(BaseModel):
    items: list[Product]
    total: int
    page: int
    page_size: int
    total_pages: int


# --- ports ------------------------------------------------------------------------------------

# How many versions a container may fall behind and still catch up from change records.
CATCH_UP_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Change:
    """What one write stored beside its products: the version it made, and them as written."""

    version: int
    products: tuple[Product, ...]


@dataclass(frozen=True, slots=True)
class CatalogHead:
    """The catalog's version, and the change records read to reach it."""

    version: int
    changes: tuple[Change, ...] = ()


class CatalogVersions(Protocol):
    """What an index reads."""

    def version(self) -> int:
        """One strongly consistent GetItem: the version of the newest write."""
        ...

    def changes(self, after: int, through: int) -> tuple[Change, ...]:
        """One Query: the change records of versions ``after``+1 … ``through`` that still
        exist (TTL removes old ones)."""
        ...

    def load(self) -> tuple[int, list[Product]]:
        """Every live product, with the version they are at least as new as."""
        ...


class ProductTable(CatalogVersions, Protocol):
    def product(self, product_id: str) -> Product | None:
        """One strongly consistent GetItem: the product as stored (deleted ones too)."""
        ...

    def create(self, product: Product) -> None:
        """Raises ``SkuTaken``; SKU uniqueness holds under concurrent writes.

        Each write makes exactly one new version, with its change record, in one transaction.
        """
        ...

    def replace(self, before: Product, after: Product) -> None:
        """Raises ``SkuTaken``, or ``Conflict`` if the product changed meanwhile."""
        ...


# --- the index -------------------------------------------------------------------------------


class TextIndex:
    """Case-insensitive substring search over many texts, at the speed of one ``str.find``.

    The texts are joined, with a separator, into one string. A needle without the separator
    can never match across two texts, so each hit belongs to the text it starts in. A changed
    text is appended and its old place left dead (``None``), until dead places outnumber live.
    Appended texts are joined on the next search, once for a whole catch-up, not once each.
    """

    SEPARATOR = "\x00"

    def __init__(self, texts: dict[str, str]) -> None:
        self._lay_out({key: text.casefold() for key, text in texts.items()})

    def _lay_out(self, folded: dict[str, str]) -> None:
        self.ids: list[str | None] = list(folded)
        self.positions = {key: n for n, key in enumerate(folded)}
        self.starts: list[int] = []
        offset = 0
        for text in folded.values():
            self.starts.append(offset)
            offset += len(text) + 1
        self._joined = self.SEPARATOR.join(folded.values())
        self._appended: list[str] = []  # put's texts, each after its separator, not yet joined
        self._length = len(self._joined)

    @property
    def joined(self) -> str:
        """Every text, separated (dead ones included)."""
        if self._appended:
            self._joined = "".join([self._joined, *self._appended])
            self._appended.clear()
        return self._joined

    def put(self, key: str, text: str) -> None:
        """Add ``text`` under ``key``, in place of the one it had."""
        self.discard(key)
        separator = self.SEPARATOR if self.ids else ""
        folded = text.casefold()
        self.positions[key] = len(self.ids)
        self.ids.append(key)
        self.starts.append(self._length + len(separator))
        self._appended.append(f"{separator}{folded}")
        self._length += len(separator) + len(folded)

    def discard(self, key: str) -> None:
        position = self.positions.pop(key, None)
        if position is None:
            return
        self.ids[position] = None
        if len(self.ids) > 2 * len(self.positions) + 64:
            self._lay_out({k: self._text(n) for k, n in self.positions.items()})

    def matching(self, needle: str) -> set[str]:
        needle = needle.casefold()
        if not needle:
            return set(self.positions)
        if self.SEPARATOR in needle:
            return {key for key, n in self.positions.items() if needle in self._text(n)}
        found: set[str] = set()
        at = self.joined.find(needle)
        while at != -1:
            position = bisect_right(self.starts, at) - 1
            key = self.ids[position]
            if key is not None:
                found.add(key)
            at = self.joined.find(needle, self._end(position) + 1)
        return found

    def _end(self, position: int) -> int:
        following = position + 1
        return self.starts[following] - 1 if following < len(self.starts) else self._length

    def _text(self, position: int) -> str:
        return self.joined[self.starts[position] : self._end(position)]


@dataclass(frozen=True, slots=True)
class _Entry:
    """A product as a listing filters it: integers compare far faster than ``Decimal``."""

    product: Product
    cents: int
    stock: int


def _cents_at_least(price: Decimal) -> int:
    return int((price * 100).to_integral_value(rounding=ROUND_CEILING))


def _cents_at_most(price: Decimal) -> int:
    return int((price * 100).to_integral_value(rounding=ROUND_FLOOR))


# Each order's sort key; the id last, so no two entries tie.
_KEYS: dict[SortBy, Callable[[_Entry], tuple[object, str]]] = {
    SortBy.NAME: lambda e: (e.product.name.casefold(), e.product.id),
    SortBy.PRICE: lambda e: (e.cents, e.product.id),
    SortBy.CREATED_AT: lambda e: (e.product.created_at, e.product.id),
    SortBy.STOCK: lambda e: (e.stock, e.product.id),
}


def _entry(product: Product) -> _Entry:
    return _Entry(product, int(product.price * 100), product.stock)


def _searchable(product: Product) -> str:
    return f"{product.name}\n{product.description}\n{product.sku}"


def _remove(ordered: list[_Entry], entry: _Entry, by: SortBy) -> None:
    at = bisect_left(ordered, _KEYS[by](entry), key=_KEYS[by])
    if at < len(ordered) and ordered[at] is entry:
        del ordered[at]


def changes_to_apply(since: int, head: CatalogHead) -> list[Product] | None:
    """The products written in versions ``since``+1 … ``head.version``, oldest first; ``None``
    when any of those versions has no change record here, so only a full load is right.

    Records may come in any order; any above ``head.version`` wait for the next read.
    """
    if head.version < since:
        return None
    records = {change.version: change for change in head.changes}
    products: list[Product] = []
    for version in range(since + 1, head.version + 1):
        change = records.get(version)
        if change is None:
            return None
        products += change.products
    return products


@dataclass
class CatalogIndex:
    """What a warm container keeps: every live product, sorted and searchable in memory.

    Products are kept in four sorted orders, so a listing is a filter over one of them; a text
    query first narrows the candidates to the products that contain it.
    """

    version: int = -1
    products: dict[str, _Entry] = field(default_factory=dict)
    orders: dict[SortBy, list[_Entry]] = field(default_factory=dict)
    ranks: dict[SortBy, dict[str, int]] = field(default_factory=dict)  # filled when needed
    by_category: dict[str, dict[SortBy, list[_Entry]]] = field(default_factory=dict)
    names: TextIndex = field(default_factory=lambda: TextIndex({}))
    texts: TextIndex = field(default_factory=lambda: TextIndex({}))
    catch_up_limit: int = CATCH_UP_LIMIT
    reloads: int = 0  # full loads
    catch_ups: int = 0  # change records applied in place

    def refresh(self, table: CatalogVersions) -> None:
        """One GetItem while current; after writes, one Query more for what changed."""
        version = table.version()
        if version == self.version:
            return
        products = None
        if 0 <= self.version < version <= self.version + self.catch_up_limit:
            head = CatalogHead(version, table.changes(self.version, version))
            products = changes_to_apply(self.version, head)
        if products is None:
            self._build(*table.load())
        else:
            self.apply(version, products)

    def _build(self, version: int, products: list[Product]) -> None:
        self.version = version
        entries = [_entry(p) for p in products]
        self.products = {e.product.id: e for e in entries}
        self.orders = {by: sorted(entries, key=key) for by, key in _KEYS.items()}
        self.ranks = {}
        self.by_category = {}
        for by, ordered in self.orders.items():  # each category's products, in every order
            for entry in ordered:
                category = entry.product.category
                self.by_category.setdefault(category, {}).setdefault(by, []).append(entry)
        self.names = TextIndex({p.id: p.name for p in products})
        self.texts = TextIndex({p.id: _searchable(p) for p in products})
        self.reloads += 1

    def apply(self, version: int, products: list[Product]) -> None:
        """Bring the index to ``version``: each product as written (oldest first), a deleted
        one removed. The result equals a ``_build`` of the catalog at that version."""
        for product in products:
            old = self.products.pop(product.id, None)
            if old is not None:
                self._unlist(old)
            if not product.deleted:
                entry = self.products[product.id] = _entry(product)
                self._list(entry)
        self.version = version
        self.ranks = {}
        self.catch_ups += 1

    def _list(self, entry: _Entry) -> None:
        in_category = self.by_category.setdefault(entry.product.category, {})
        for by, key in _KEYS.items():
            insort(self.orders.setdefault(by, []), entry, key=key)
            insort(in_category.setdefault(by, []), entry, key=key)
        self.names.put(entry.product.id, entry.product.name)
        self.texts.put(entry.product.id, _searchable(entry.product))

    def _unlist(self, entry: _Entry) -> None:
        category = entry.product.category
        for by in _KEYS:
            _remove(self.orders[by], entry, by)
            _remove(self.by_category[category][by], entry, by)
        if not self.by_category[category][SortBy.NAME]:
            del self.by_category[category]
        self.names.discard(entry.product.id)
        self.texts.discard(entry.product.id)

    def _rank(self, by: SortBy) -> dict[str, int]:
        rank = self.ranks.get(by)
        if rank is None:
            ordered = self.orders.get(by, [])
            rank = self.ranks[by] = {e.product.id: n for n, e in enumerate(ordered)}
        return rank

    def get(self, product_id: str) -> Product:
        entry = self.products.get(product_id) if PRODUCT_ID.fullmatch(product_id) else None
        if entry is None:
            raise ProductNotFound()
        return entry.product

    def select(self, listing: Listing, query: str | None = None) -> ProductPage:
        ordered = self._candidates(listing, query)
        if listing.sort_order is SortOrder.DESC:
            ordered = ordered[::-1]
        low, high = listing.min_price, listing.max_price
        if low is None and high is None and not listing.in_stock_only:
            chosen = ordered
        else:
            least = 0 if low is None else _cents_at_least(low)
            most = None if high is None else _cents_at_most(high)
            stocked = 1 if listing.in_stock_only else 0
            chosen = [
                e
                for e in ordered
                if e.cents >= least and (most is None or e.cents <= most) and e.stock >= stocked
            ]
        start = (listing.page - 1) * listing.page_size
        return ProductPage(
            items=[e.product for e in chosen[start : start + listing.page_size]],
            total=len(chosen),
            page=listing.page,
            page_size=listing.page_size,
            total_pages=math.ceil(len(chosen) / listing.page_size),
        )

    def _candidates(self, listing: Listing, query: str | None) -> list[_Entry]:
        """The products a listing may show, in ascending ``sort_by`` order, before the filters."""
        if listing.name is None and query is None:
            if listing.category is None:
                return self.orders.get(listing.sort_by, [])
            return self.by_category.get(listing.category, {}).get(listing.sort_by, [])
        hits = [
            text_index.matching(needle)
            for needle, text_index in ((listing.name, self.names), (query, self.texts))
            if needle is not None
        ]
        found = set.intersection(*hits)
        rank = self._rank(listing.sort_by)
        entries = (self.products[key] for key in found)
        return sorted(
            (e for e in entries if listing.category in (None, e.product.category)),
            key=lambda e: rank[e.product.id],
        )

    def etag(self, *parts: object) -> str:
        digest = hashlib.sha256(repr((self.version, *parts)).encode()).hexdigest()[:20]
        return f'W/"{digest}"'


# --- use cases --------------------------------------------------------------------------------


def create_product(table: ProductTable, request: ProductCreate, now: datetime) -> Product:
    product = Product(
        id=secrets.token_hex(16), created_at=now, updated_at=now, **request.model_dump()
    )
    table.create(product)
    return product


def _current(table: ProductTable, product_id: str) -> Product:
    """The live product a write starts from, as the table holds it now."""
    product = table.product(product_id) if PRODUCT_ID.fullmatch(product_id) else None
    if product is None or product.deleted:
        raise ProductNotFound()
    return product


def update_product(
    table: ProductTable, product_id: str, changes: ProductUpdate, now: datetime
) -> Product:
    before = _current(table, product_id)
    fields = changes.model_dump(exclude_unset=True, exclude_none=True)
    if not fields:
        raise InvalidInput("nothing to change: give at least one field")
    after = before.model_copy(update=fields | {"updated_at": now})
    table.replace(before, after)
    return after


def delete_product(table: ProductTable, product_id: str, now: datetime) -> None:
    """Soft delete: gone from every read, and its SKU free for another product."""
    before = _current(table, product_id)
    table.replace(before, before.model_copy(update={"deleted": True, "updated_at": now}))
