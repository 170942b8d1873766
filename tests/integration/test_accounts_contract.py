"""One contract, two implementations of ``UserTable``: the DynamoDB adapter on moto and the
in-memory fake. (Refresh-token families: ``test_accounts_storage.py``; sign-in counters:
``test_login_guard_contract.py``.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ordo.accounts import EmailTaken, User, UsernameTaken, UserTable, new_user_id
from ordo.errors import Conflict, InvalidInput
from ordo.storage.accounts import DynamoUserTable
from tests.fakes_accounts import InMemoryUserTable
from tests.harness import InProcessStack

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["dynamodb", "fake"])
def users(request: pytest.FixtureRequest) -> UserTable:
    if request.param == "fake":
        return InMemoryUserTable()
    cloud: InProcessStack = request.getfixturevalue("anonymous_cloud")
    return DynamoUserTable(cloud.dynamodb, cloud.stack.physical["JobsTable"]["Ref"])


def user(name: str, email: str | None = None, at: datetime = NOW) -> User:
    return User(
        id=new_user_id(),
        email=email or f"{name}@example.com",
        username=name,
        password_hash="x",
        created_at=at,
        updated_at=at,
    )


def test_a_user_is_found_by_id_and_by_any_spelling_of_its_name(users: UserTable) -> None:
    street = user("Straße")
    users.create(street)
    assert users.get(street.id) == street
    assert users.find_by_username("STRASSE") == street
    assert users.find_by_username("straße") == street
    assert users.get(new_user_id()) is None
    assert users.find_by_username("nobody") is None


def test_a_taken_name_or_email_is_named_the_email_first(users: UserTable) -> None:
    users.create(user("alice"))
    with pytest.raises(UsernameTaken):
        users.create(user("ALICE", email="other@example.com"))
    with pytest.raises(EmailTaken):
        users.create(user("bob", email="Alice@Example.com"))
    with pytest.raises(EmailTaken):
        users.create(user("Alice"))
    assert users.find_by_username("bob") is None


def test_save_moves_the_name_and_refuses_a_stale_copy_or_a_taken_name(users: UserTable) -> None:
    alice, carol = user("alice"), user("carol")
    users.create(alice)
    users.create(carol)
    later = NOW + timedelta(seconds=1)
    renamed = users.save(
        alice, alice.model_copy(update={"username": "alicia", "updated_at": later})
    )
    assert users.find_by_username("alicia") == renamed
    assert users.find_by_username("alice") is None
    users.create(user("alice", email="new@example.com"))  # the old name is free again
    with pytest.raises(Conflict):
        users.save(alice, alice.model_copy(update={"is_active": False}))
    with pytest.raises(UsernameTaken):
        users.save(renamed, renamed.model_copy(update={"username": "Carol", "updated_at": NOW}))
    with pytest.raises(EmailTaken):
        users.save(renamed, renamed.model_copy(update={"email": "carol@example.com"}))
    assert users.get(renamed.id) == renamed


def test_pages_list_every_user_once_oldest_first(users: UserTable) -> None:
    made = [user(f"user{n}", at=NOW + timedelta(seconds=n)) for n in range(5)]
    for one in reversed(made):
        users.create(one)
    seen: list[User] = []
    cursor: str | None = None
    for _ in range(5):
        page, cursor = users.page(2, cursor)
        seen += page
        if cursor is None:
            break
    assert seen == made


@pytest.mark.parametrize("cursor", ["garbage", "3", "eyJwayI6IDF9"])
def test_a_forged_cursor_is_invalid_input(users: UserTable, cursor: str) -> None:
    users.create(user("alice"))
    with pytest.raises(InvalidInput):
        users.page(2, cursor)
