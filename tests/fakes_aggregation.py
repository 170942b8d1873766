"""In-memory fakes of the aggregation ports, held to the DynamoDB adapters' rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ordo.aggregation import FetchCounts, Post, PostPage, SourceFailed
from ordo.errors import InvalidInput


class ListSource:
    def __init__(self, items: list[Any] | None = None, error: str | None = None) -> None:
        self.items = items or []
        self.error = error
        self.calls = 0

    def fetch(self) -> list[Any]:
        self.calls += 1
        if self.error:
            raise SourceFailed(self.error)
        return list(self.items)


class InMemoryPostStore:
    def __init__(self) -> None:
        self.posts: dict[int, Post] = {}

    def upsert(self, posts: list[Post]) -> tuple[int, int]:
        created = sum(1 for p in posts if p.id not in self.posts)
        updated = sum(1 for p in posts if p.id in self.posts and self.posts[p.id] != p)
        self.posts.update({p.id: p for p in posts})
        return created, updated

    def page(self, user_id: int | None, limit: int, cursor: str | None) -> PostPage:
        """By id; a cursor (``<listing>#<last id>``) pages only the listing it came from, as
        the adapter's does."""
        listing = "POSTS" if user_id is None else f"POSTS#USER#{user_id}"
        chosen = sorted(
            (p for p in self.posts.values() if user_id is None or p.user_id == user_id),
            key=lambda p: p.id,
        )
        after = 0
        if cursor:
            named, _, last = cursor.rpartition("#")
            if named != listing or not last.isdigit():
                raise InvalidInput("cursor is not valid")
            after = int(last)
        rest = [p for p in chosen if p.id > after]
        page = rest[:limit]
        next_cursor = f"{listing}#{page[-1].id}" if len(rest) > limit else None
        return PostPage(items=page, next_cursor=next_cursor)


class InMemoryFetchLock:
    def __init__(self) -> None:
        self.holder: str | None = None
        self.expires: datetime | None = None

    def acquire(self, holder: str, now: datetime, ttl: timedelta) -> bool:
        if self.holder is not None and self.expires is not None and self.expires > now:
            return False
        self.holder, self.expires = holder, now + ttl
        return True

    def release(self, holder: str) -> None:
        if self.holder == holder:
            self.holder = self.expires = None


class InMemoryFetchLog:
    def __init__(self) -> None:
        self.last: datetime | None = None
        self.counts: FetchCounts | None = None

    def last_success(self) -> datetime | None:
        return self.last

    def record_success(self, now: datetime, counts: FetchCounts) -> None:
        self.last, self.counts = now, counts
