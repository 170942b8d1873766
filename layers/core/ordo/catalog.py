"""The product catalog: admins write, anyone lists, filters, sorts, searches and reads.

Reads are served from an in-memory index that each warm container keeps. A version number,
bumped in the same transaction as every write, says when the index is stale: a read costs one
small GetItem while it is current, and a reload (one strongly consistent Query) after a write.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
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
    min_price: Decimal | None = Field(default=None, ge=0)
    max_price: Decimal | None = Field(default=None, ge=0)
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


class ProductTable(Protocol):
    def version(self) -> int:
        """The catalog's version: bumped by every write, in the same transaction."""
        ...

    def load(self) -> tuple[int, list[Product]]:
        """Every live product, with the version they are at least as new as."""
        ...

    def create(self, product: Product) -> None:
        """Raises ``SkuTaken``; SKU uniqueness holds under concurrent writes."""
        ...

    def replace(self, before: Product, after: Product) -> None:
        """Raises ``SkuTaken``, or ``Conflict`` if the product changed meanwhile."""
        ...


# --- the index -------------------------------------------------------------------------------


@dataclass
class CatalogIndex:
    """What a warm container keeps: every live product, sorted and searchable in memory.

    Products are kept in four sorted orders, so a listing is a filter over one of them.
    """

    version: int = -1
    products: dict[str, Product] = field(default_factory=dict)
    orders: dict[SortBy, list[Product]] = field(default_factory=dict)
    by_category: dict[str, dict[SortBy, list[Product]]] = field(default_factory=dict)
    haystacks: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (name, all)
    reloads: int = 0

    def refresh(self, table: ProductTable) -> None:
        """One GetItem; a reload only if a write happened since the last one."""
        if table.version() != self.version:
            version, products = table.load()
            self._build(version, products)

    def _build(self, version: int, products: list[Product]) -> None:
        self.version = version
        self.products = {p.id: p for p in products}
        keys = {
            SortBy.NAME: lambda p: (p.name.casefold(), p.id),
            SortBy.PRICE: lambda p: (p.price, p.id),
            SortBy.CREATED_AT: lambda p: (p.created_at, p.id),
            SortBy.STOCK: lambda p: (p.stock, p.id),
        }
        self.orders = {by: sorted(products, key=key) for by, key in keys.items()}
        self.by_category = {}
        for by, ordered in self.orders.items():  # each category's products, in every order
            for product in ordered:
                self.by_category.setdefault(product.category, {}).setdefault(by, []).append(product)
        self.haystacks = {
            p.id: (p.name.casefold(), f"{p.name}\n{p.description}\n{p.sku}".casefold())
            for p in products
        }
        self.reloads += 1

    def get(self, product_id: str) -> Product:
        product = self.products.get(product_id) if PRODUCT_ID.fullmatch(product_id) else None
        if product is None:
            raise ProductNotFound()
        return product

    def select(self, listing: Listing, query: str | None = None) -> ProductPage:
        needle = listing.name.casefold() if listing.name else None
        wanted = query.casefold() if query else None
        if listing.category is None:
            ordered = self.orders.get(listing.sort_by, [])
        else:  # a category narrows the candidates before anything is compared
            ordered = self.by_category.get(listing.category, {}).get(listing.sort_by, [])
        candidates = reversed(ordered) if listing.sort_order is SortOrder.DESC else iter(ordered)
        low, high, stocked = listing.min_price, listing.max_price, listing.in_stock_only
        haystacks = self.haystacks
        chosen = [
            p
            for p in candidates
            if (low is None or p.price >= low)
            and (high is None or p.price <= high)
            and (not stocked or p.stock > 0)
            and (needle is None or needle in haystacks[p.id][0])
            and (wanted is None or wanted in haystacks[p.id][1])
        ]
        start = (listing.page - 1) * listing.page_size
        return ProductPage(
            items=chosen[start : start + listing.page_size],
            total=len(chosen),
            page=listing.page,
            page_size=listing.page_size,
            total_pages=math.ceil(len(chosen) / listing.page_size),
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


def _current(table: ProductTable, index: CatalogIndex, product_id: str) -> Product:
    index.refresh(table)
    return index.get(product_id)


def update_product(
    table: ProductTable,
    index: CatalogIndex,
    product_id: str,
    changes: ProductUpdate,
    now: datetime,
) -> Product:
    before = _current(table, index, product_id)
    fields = changes.model_dump(exclude_unset=True, exclude_none=True)
    if not fields:
        raise InvalidInput("nothing to change: give at least one field")
    after = before.model_copy(update=fields | {"updated_at": now})
    table.replace(before, after)
    return after


def delete_product(
    table: ProductTable, index: CatalogIndex, product_id: str, now: datetime
) -> None:
    """Soft delete: gone from every read, and its SKU free for another product."""
    before = _current(table, index, product_id)
    table.replace(before, before.model_copy(update={"deleted": True, "updated_at": now}))
