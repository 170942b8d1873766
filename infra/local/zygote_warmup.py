"""What the fork server runs before it forks (``infra.local.zygote``): a throwaway FastAPI app,
sent requests through Mangum as every API function is.

The children then find that code already run: its bytecode specialised, its caches filled, its
lazy imports done. Otherwise each child writes all that into its own copy of the shared pages,
some 5 MB of each API function's init. Nothing here reads the environment (the server records
its reads), and no thread outlives :func:`run`: sync endpoints run in anyio's worker threads,
which stop with Mangum's event loop, and :func:`run` waits for them.

No ``from __future__ import annotations``: FastAPI resolves these signatures at runtime.
"""

import threading
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Query
from fastapi.security import OAuth2PasswordBearer
from mangum import Mangum
from pydantic import BaseModel, Field

from infra.local.context import LambdaContext
from infra.local.events import http_event


class Item(BaseModel):
    name: str = Field(min_length=1, max_length=50)
    count: int = Field(default=0, ge=0)
    tags: list[str] = []


_bearer = OAuth2PasswordBearer(tokenUrl="/token", auto_error=False)


def _caller(token: Annotated[str | None, Depends(_bearer)]) -> str:
    if token is None:
        raise HTTPException(401, "Not authenticated")
    return token


def _read(
    item_id: str,
    who: Annotated[str, Depends(_caller)],
    limit: Annotated[int, Query(ge=1, le=10)] = 5,
) -> Item:
    return Item(name=item_id, count=limit, tags=[who])


def _create(item: Annotated[Item, Body()]) -> Item:
    return item


# method, path, route, authorised, body: answered 200, 401, 201 and 422
REQUESTS = (
    ("GET", "/items/a", "/items/{item_id}", True, None),
    ("GET", "/items/a", "/items/{item_id}", False, None),
    ("POST", "/items", "/items", True, '{"name": "a", "count": 2}'),
    ("POST", "/items", "/items", True, '{"name": ""}'),
)


def run() -> list[int]:
    """Build the app and send it :data:`REQUESTS`; the status codes."""
    threads = set(threading.enumerate())
    app = FastAPI(title="warm-up", docs_url=None, redoc_url=None)
    app.get("/items/{item_id}", response_model=Item)(_read)
    app.post("/items", status_code=201)(_create)
    handler = Mangum(app, lifespan="off")
    statuses = []
    for method, path, route, authorised, body in REQUESTS:
        headers = {"content-type": "application/json"}
        if authorised:
            headers["authorization"] = "Bearer token"
        event = http_event(
            method,
            path,
            route=route,
            path_parameters={"item_id": "a"} if "{" in route else None,
            query="limit=3" if method == "GET" else "",
            headers=headers,
            body=body,
        )
        context: Any = LambdaContext(function_name="warm-up", timeout_seconds=10)  # as runtime's
        answer = handler(event, context)
        statuses.append(int(answer["statusCode"]))
    for thread in set(threading.enumerate()) - threads:
        thread.join(timeout=5)  # anyio's workers, stopping
    return statuses
