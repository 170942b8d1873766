"""/products: admins write; anyone lists, filters, sorts, searches and reads.

Reads come from ``index``, this container's copy of the catalog: one GetItem of the catalog's
version per request while it is current; after writes, one Query more for their change
records, applied in place (a full load only when some are missing). Writes go to the table
alone: each moves the catalog's version, which every container's index notices at its next read.

The read path is ``async def``, its dependency too. A Lambda container serves one request at a
time, so the blocking GetItem holds up no one. A sync route would cost a new thread per request:
FastAPI runs it on an anyio worker thread, and anyio stops those when Mangum's task ends.
"""

import ordo.boot  # noqa: F401  (first, before FastAPI: see ordo/boot.py)

# isort: split
from typing import Annotated, Any

from fastapi import Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ordo import catalog
from ordo.accounts import require_admin
from ordo.catalog import (
    CatalogIndex,
    Listing,
    Product,
    ProductCreate,
    ProductPage,
    ProductUpdate,
)
from ordo.clock import utcnow
from ordo.deps import CurrentUser, Products
from ordo.http import api_app, lambda_handler

app = api_app(title="products")
index = CatalogIndex()
_ADMIN: dict[int | str, dict[str, Any]] = {403: {"description": "Admin role required"}}
_CACHED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified (If-None-Match)"}}


def _cached(request: Request, etag: str, body: BaseModel) -> Response:
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return JSONResponse(body.model_dump(mode="json"), headers=headers)


@app.post("/products", status_code=201, response_model=Product, responses=_ADMIN)
def create(request: ProductCreate, user: CurrentUser, table: Products) -> Product:
    require_admin(user)
    return catalog.create_product(table, request, utcnow())


@app.get("/products", response_model=ProductPage, responses=_CACHED)
async def list_products(
    listing: Annotated[Listing, Query()], request: Request, table: Products
) -> Response:
    index.refresh(table)
    return _cached(request, index.etag("list", listing), index.select(listing))


class SearchQuery(Listing):
    q: str = Query(min_length=1, max_length=100)


@app.get("/products/search", response_model=ProductPage, responses=_CACHED)
async def search(
    query: Annotated[SearchQuery, Query()], request: Request, table: Products
) -> Response:
    """Name, description or SKU containing `q`, case-insensitively; filters apply too."""
    index.refresh(table)
    return _cached(request, index.etag("search", query), index.select(query, query.q))


@app.get("/products/{product_id}", response_model=Product, responses=_CACHED)
async def get_product(product_id: str, request: Request, table: Products) -> Response:
    index.refresh(table)
    product = index.get(product_id)
    return _cached(request, index.etag("detail", product.id, product.updated_at), product)


@app.put("/products/{product_id}", response_model=Product, responses=_ADMIN)
def update(product_id: str, changes: ProductUpdate, user: CurrentUser, table: Products) -> Product:
    require_admin(user)
    return catalog.update_product(table, product_id, changes, utcnow())


@app.delete("/products/{product_id}", status_code=204, responses=_ADMIN)
def delete(product_id: str, user: CurrentUser, table: Products) -> Response:
    require_admin(user)
    catalog.delete_product(table, product_id, utcnow())
    return Response(status_code=204)


handler = lambda_handler(app)
