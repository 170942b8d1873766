"""The accounts adapters on moto, with the table made from template.yaml."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ordo.accounts import EmailTaken, User, UsernameTaken, new_user_id
from ordo.errors import Conflict
from ordo.security import TokenType, issue_token
from ordo.storage.accounts import DynamoLoginGuard, DynamoRefreshTokens, DynamoUserTable
from tests.harness import Cloud

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def cloud(anonymous_cloud: Cloud) -> Cloud:
    """No one signed in: these tests count and name every user themselves."""
    return anonymous_cloud


def table_name(cloud: Cloud) -> str:
    return cloud.stack.physical["JobsTable"]["Ref"]


def user(name: str, email: str | None = None) -> User:
    return User(
        id=new_user_id(),
        email=email or f"{name}@example.com",
        username=name,
        password_hash="x",
        created_at=NOW,
        updated_at=NOW,
    )


def test_create_get_and_find_case_insensitively(cloud: Cloud) -> None:
    users = DynamoUserTable(cloud.dynamodb, table_name(cloud))
    alice = user("Alice")
    users.create(alice)
    assert users.get(alice.id) == alice
    assert users.find_by_username("alice") == alice


def test_duplicate_username_and_email_are_named(cloud: Cloud) -> None:
    users = DynamoUserTable(cloud.dynamodb, table_name(cloud))
    users.create(user("alice"))
    with pytest.raises(UsernameTaken):
        users.create(user("ALICE", email="other@example.com"))
    with pytest.raises(EmailTaken):
        users.create(user("bob", email="Alice@example.com"))


def test_save_moves_name_claims_and_refuses_a_stale_copy(cloud: Cloud) -> None:
    users = DynamoUserTable(cloud.dynamodb, table_name(cloud))
    alice = user("alice")
    users.create(alice)
    renamed = alice.model_copy(
        update={"username": "alicia", "updated_at": NOW + timedelta(seconds=1)}
    )
    users.save(alice, renamed)
    assert users.find_by_username("alicia") == renamed
    assert users.find_by_username("alice") is None
    users.create(user("alice", email="new@example.com"))  # the old name is free again
    with pytest.raises(Conflict):
        users.save(alice, alice.model_copy(update={"is_active": False}))


def test_users_page_through_the_index(cloud: Cloud) -> None:
    users = DynamoUserTable(cloud.dynamodb, table_name(cloud))
    for n in range(5):
        users.create(user(f"user{n}"))
    first, cursor = users.page(3, None)
    second, last = users.page(3, cursor)
    assert len(first) == 3
    assert len(second) == 2
    assert last is None
    assert {u.username for u in first + second} == {f"user{n}" for n in range(5)}


def test_refresh_token_is_spent_once(cloud: Cloud) -> None:
    tokens = DynamoRefreshTokens(cloud.dynamodb, table_name(cloud))
    _, claims = issue_token(
        "u", "user", TokenType.REFRESH, now=NOW, lifetime=timedelta(days=7), secret="s" * 32
    )
    tokens.remember(claims)
    assert tokens.consume(claims.jti) is True
    assert tokens.consume(claims.jti) is False


def test_login_guard_locks_after_five_failures_and_success_clears_it(cloud: Cloud) -> None:
    guard = DynamoLoginGuard(cloud.dynamodb, table_name(cloud))
    for _ in range(4):
        guard.failed("alice", NOW)
    assert guard.retry_after("alice", NOW) == 0
    guard.failed("alice", NOW)
    assert guard.retry_after("alice", NOW) == 30
    guard.failed("alice", NOW)
    assert guard.retry_after("alice", NOW) == 60
    guard.succeeded("alice")
    assert guard.retry_after("alice", NOW) == 0


def test_login_guard_forgets_failures_once_its_window_passed(cloud: Cloud) -> None:
    guard = DynamoLoginGuard(cloud.dynamodb, table_name(cloud))
    for _ in range(4):
        guard.failed("bob", NOW)
    later = NOW + timedelta(minutes=16)  # the window expired; TTL has not removed the record
    guard.failed("bob", later)
    assert guard.retry_after("bob", later) == 0
