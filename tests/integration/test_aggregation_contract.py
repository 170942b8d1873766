"""One contract, two implementations of the aggregation ports (posts, the fetch lock, the fetch
log): the DynamoDB adapters on moto and the in-memory fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ordo.aggregation import FetchCounts, FetchLock, FetchLog, Post, PostStore
from ordo.errors import InvalidInput
from ordo.storage.aggregation import DynamoFetchLock, DynamoFetchLog, DynamoPostStore
from tests.fakes_aggregation import InMemoryFetchLock, InMemoryFetchLog, InMemoryPostStore
from tests.harness import InProcessStack

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=90)


def _on_moto(request: pytest.FixtureRequest) -> tuple[Any, str] | None:
    """None for the fake; else the stack's DynamoDB client and table, made on moto."""
    if request.param == "fake":
        return None
    cloud: InProcessStack = request.getfixturevalue("anonymous_cloud")
    return cloud.dynamodb, cloud.stack.physical["JobsTable"]["Ref"]


@pytest.fixture(params=["dynamodb", "fake"])
def posts(request: pytest.FixtureRequest) -> PostStore:
    real = _on_moto(request)
    return InMemoryPostStore() if real is None else DynamoPostStore(*real, sleep=lambda _: None)


@pytest.fixture(params=["dynamodb", "fake"])
def lock(request: pytest.FixtureRequest) -> FetchLock:
    real = _on_moto(request)
    return InMemoryFetchLock() if real is None else DynamoFetchLock(*real)


@pytest.fixture(params=["dynamodb", "fake"])
def log(request: pytest.FixtureRequest) -> FetchLog:
    real = _on_moto(request)
    return InMemoryFetchLog() if real is None else DynamoFetchLog(*real)


def post(post_id: int, user_id: int = 1, title: str = "t") -> Post:
    return Post(id=post_id, user_id=user_id, title=title, body=f"body {post_id}")


def every_page(store: PostStore, user_id: int | None, limit: int) -> list[Post]:
    found: list[Post] = []
    cursor: str | None = None
    for _ in range(20):
        page = store.page(user_id, limit, cursor)
        found += page.items
        cursor = page.next_cursor
        if cursor is None:
            return found
    raise AssertionError("the pages never end")


def test_upsert_counts_new_and_changed_posts_and_skips_the_same(posts: PostStore) -> None:
    assert posts.upsert([post(1), post(2)]) == (2, 0)
    assert posts.upsert([post(1), post(2, title="new"), post(3)]) == (1, 1)
    assert posts.upsert([post(3)]) == (0, 0)
    assert every_page(posts, None, 10) == [post(1), post(2, title="new"), post(3)]


def test_pages_list_posts_by_id_for_everyone_or_one_user(posts: PostStore) -> None:
    made = [post(n, user_id=1 + n % 2) for n in (12, 3, 7, 100, 1, 9)]
    posts.upsert(made)
    assert every_page(posts, None, 2) == sorted(made, key=lambda p: p.id)
    assert every_page(posts, 2, 1) == sorted(
        (p for p in made if p.user_id == 2), key=lambda p: p.id
    )
    assert every_page(posts, 3, 2) == []


def test_a_cursor_is_valid_only_for_the_listing_it_came_from(posts: PostStore) -> None:
    posts.upsert([post(n, user_id=1 + n % 2) for n in range(1, 7)])
    cursor = posts.page(2, 1, None).next_cursor
    assert cursor is not None
    with pytest.raises(InvalidInput):
        posts.page(1, 1, cursor)
    with pytest.raises(InvalidInput):
        posts.page(None, 1, cursor)
    with pytest.raises(InvalidInput):
        posts.page(None, 1, "garbage")


def test_the_lock_has_one_holder_until_it_releases_or_expires(lock: FetchLock) -> None:
    assert lock.acquire("a", NOW, TTL)
    assert not lock.acquire("b", NOW + TTL - timedelta(seconds=1), TTL)
    lock.release("b")  # not its holder: nothing happens
    assert not lock.acquire("b", NOW, TTL)
    lock.release("a")
    assert lock.acquire("b", NOW, TTL)
    assert lock.acquire("c", NOW + TTL, TTL)  # b crashed holding it: expired, taken over
    lock.release("b")  # b's release comes too late to free c's lock
    assert not lock.acquire("a", NOW + TTL, TTL)


def test_the_log_keeps_the_last_success(log: FetchLog) -> None:
    assert log.last_success() is None
    counts = FetchCounts(fetched=3, created=2, updated=1, skipped=0)
    log.record_success(NOW, counts)
    log.record_success(NOW + timedelta(minutes=1), counts)
    assert log.last_success() == NOW + timedelta(minutes=1)
