"""Who an account is: usernames, emails, credential changes and the admin bootstrap."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from ordo import accounts
from ordo.accounts import (
    EmailTaken,
    NotAnAdmin,
    RegisterRequest,
    Role,
    User,
    UsernameTaken,
    UserUpdate,
    UserView,
)
from ordo.errors import Forbidden, InvalidInput, TooManyRequests
from tests.fakes_accounts import InMemoryLoginGuard, InMemoryUserTable, make_user

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CLIENT = "198.51.100.7"
PASSWORD = "Secret123"


def register(users: InMemoryUserTable, username: str, email: str | None = None) -> UserView:
    request = RegisterRequest(
        email=email or f"{len(users.users)}@example.com", username=username, password=PASSWORD
    )
    return accounts.register(users, InMemoryLoginGuard(), request, now=NOW, client=CLIENT)


@pytest.mark.parametrize(
    "taken", ["Admin", "ADMIN", "\uff41dmin", "\uff21\uff24\uff2d\uff29\uff2e"]
)
def test_usernames_that_read_the_same_cannot_coexist(taken: str) -> None:
    users = InMemoryUserTable()
    register(users, "admin")
    with pytest.raises(UsernameTaken):
        register(users, taken)


def test_a_full_width_username_is_stored_in_its_nfkc_form() -> None:
    assert register(InMemoryUserTable(), "\uff41lice").username == "alice"


@pytest.mark.parametrize(
    "username",
    [
        "admin\u200d",
        "adm\u0131n",
        "jos\u00e9",
        "a b",
        "al@ce",
        "al+ce",
    ],
)
def test_usernames_outside_the_documented_characters_are_refused(username: str) -> None:
    with pytest.raises(ValidationError, match="ASCII letters, digits"):
        RegisterRequest(email="a@example.com", username=username, password=PASSWORD)


@pytest.mark.parametrize(
    "taken",
    [
        "alice@EXAMPLE.com",
        "ALICE@example.com",
        "alice@\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com",
    ],
)
def test_emails_compare_case_insensitively(taken: str) -> None:
    users = InMemoryUserTable()
    register(users, "alice", "alice@example.com")
    with pytest.raises(EmailTaken):
        register(users, "bob", taken)


def test_a_stored_username_the_new_rule_refuses_keeps_signing_in() -> None:
    users = InMemoryUserTable()
    legacy = make_user("Jos\u00e9.M")  # allowed before usernames became ASCII
    users.create(legacy)
    assert users.find_by_username("Jos\u00e9.M") == legacy
    assert users.find_by_username("jos\u00e9.m") == legacy
    with pytest.raises(ValidationError):  # but nobody can take such a name any more
        UserUpdate(username="Jos\u00e9.N")


def update(
    users: InMemoryUserTable,
    viewer: User,
    target: User,
    changes: dict[str, object],
    guard: InMemoryLoginGuard | None = None,
) -> UserView:
    return accounts.update_user(
        users,
        guard or InMemoryLoginGuard(),
        viewer,
        target.id,
        UserUpdate.model_validate(changes),
        now=NOW,
        client=CLIENT,
    )


@pytest.mark.parametrize(
    "change", [{"email": "new@example.com"}, {"username": "alice2"}, {"password": "Changed123"}]
)
def test_changing_your_own_credentials_needs_the_current_password(
    change: dict[str, object],
) -> None:
    users = InMemoryUserTable()
    alice = users.users[register(users, "alice").id]
    with pytest.raises(InvalidInput, match="current_password is required"):
        update(users, alice, alice, change)
    with pytest.raises(Forbidden, match="current_password is wrong"):
        update(users, alice, alice, change | {"current_password": "Wrong1234"})
    assert users.users[alice.id] == alice

    update(users, alice, alice, change | {"current_password": PASSWORD})
    changed = users.users[alice.id]
    assert changed.token_generation == alice.token_generation + 1


def test_an_admin_resets_another_users_password_without_theirs() -> None:
    users = InMemoryUserTable()
    root = make_user("root", Role.ADMIN)
    users.create(root)
    alice = users.users[register(users, "alice").id]
    update(users, root, alice, {"password": "Changed123"})
    assert users.users[alice.id].token_generation == alice.token_generation + 1
    with pytest.raises(InvalidInput):  # their own still needs it
        update(users, root, root, {"password": "Changed123"})


def test_guessing_the_current_password_is_limited_like_sign_in() -> None:
    users, guard = InMemoryUserTable(), InMemoryLoginGuard()
    alice = users.users[register(users, "alice").id]
    for _ in range(5):
        with pytest.raises(Forbidden):
            update(users, alice, alice, {"password": "Changed1", "current_password": "No"}, guard)
    with pytest.raises(TooManyRequests):
        update(users, alice, alice, {"password": "Changed1", "current_password": PASSWORD}, guard)


def test_the_admin_bootstrap_promotes_an_existing_user_only_when_forced() -> None:
    users = InMemoryUserTable()
    alice = users.users[register(users, "alice").id]
    request = RegisterRequest(email="x@example.com", username="ALICE", password="Other1234")
    with pytest.raises(NotAnAdmin, match="--force"):
        accounts.ensure_admin(users, request, NOW)
    assert users.users[alice.id] == alice
    admin, created = accounts.ensure_admin(users, request, NOW, force=True)
    assert (admin.id, admin.role, created) == (alice.id, Role.ADMIN, False)
