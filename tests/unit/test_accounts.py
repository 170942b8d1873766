"""Accounts on in-memory fakes: password policy, sign-in, rotation, token attacks, roles."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from ordo import accounts
from ordo.accounts import (
    LoginRequest,
    RegisterRequest,
    Role,
    TokenPair,
    TokenPolicy,
    User,
    UserUpdate,
)
from ordo.errors import Forbidden, TooManyRequests, Unauthorized
from ordo.security import TokenType, decode_token, issue_token
from tests.fakes_accounts import InMemoryLoginGuard, InMemoryRefreshTokens, InMemoryUserTable

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
POLICY = TokenPolicy(secret="s" * 32)


def setup() -> tuple[InMemoryUserTable, InMemoryRefreshTokens, InMemoryLoginGuard]:
    return InMemoryUserTable(), InMemoryRefreshTokens(), InMemoryLoginGuard()


def sign_in(
    users: InMemoryUserTable,
    tokens: InMemoryRefreshTokens,
    guard: InMemoryLoginGuard,
    username: str = "alice",
    password: str = "Secret123",
) -> TokenPair:
    request = LoginRequest(username=username, password=password)
    return accounts.login(users, tokens, guard, request, policy=POLICY, now=NOW)


def sign_up(users: InMemoryUserTable, name: str = "alice", role: Role = Role.USER) -> User:
    view = accounts.register(
        users,
        RegisterRequest(email=f"{name}@example.com", username=name, password="Secret123"),
        NOW,
    )
    user = users.users[view.id]
    if role is not Role.USER:
        users.users[view.id] = user.model_copy(update={"role": role})
    return users.users[view.id]


@pytest.mark.parametrize(
    "password",
    ["Short1a", "alllowercase1", "ALLUPPERCASE1", "NoDigitsHere", "A1" + "a" * 99],
)
def test_password_policy_rejects(password: str) -> None:
    with pytest.raises(ValidationError):
        RegisterRequest(email="a@example.com", username="abc", password=password)


@pytest.mark.parametrize("password", ["Abcdefg1", "A1" + "b" * 98])
def test_password_policy_accepts_its_boundaries(password: str) -> None:
    assert RegisterRequest(email="a@example.com", username="abc", password=password)


@pytest.mark.parametrize("username", ["ab", "x" * 101, "bad name"])
def test_username_rules(username: str) -> None:
    with pytest.raises(ValidationError):
        RegisterRequest(email="a@example.com", username=username, password="Secret123")


def test_invalid_email_is_rejected() -> None:
    with pytest.raises(ValidationError):
        RegisterRequest(email="not-an-email", username="abc", password="Secret123")


def test_login_then_authenticate() -> None:
    users, tokens, guard = setup()
    alice = sign_up(users)
    pair = sign_in(users, tokens, guard)
    assert accounts.authenticate(users, pair.access_token, POLICY, NOW).id == alice.id


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "Wrong1234"), ("nobody", "Secret123")]
)
def test_wrong_password_and_unknown_user_get_the_same_401(username: str, password: str) -> None:
    users, tokens, guard = setup()
    sign_up(users)
    with pytest.raises(Unauthorized) as raised:
        sign_in(users, tokens, guard, username, password)
    assert raised.value.detail == "Incorrect username or password"


def test_refresh_rotates_and_a_used_refresh_token_stops_working() -> None:
    users, tokens, guard = setup()
    sign_up(users)
    pair = sign_in(users, tokens, guard)
    fresh = accounts.refresh(users, tokens, pair.refresh_token, policy=POLICY, now=NOW)
    assert fresh.refresh_token != pair.refresh_token
    with pytest.raises(Unauthorized):
        accounts.refresh(users, tokens, pair.refresh_token, policy=POLICY, now=NOW)


def test_access_token_is_not_a_refresh_token_and_vice_versa() -> None:
    users, tokens, guard = setup()
    sign_up(users)
    pair = sign_in(users, tokens, guard)
    with pytest.raises(Unauthorized):
        accounts.refresh(users, tokens, pair.access_token, policy=POLICY, now=NOW)
    with pytest.raises(Unauthorized):
        accounts.authenticate(users, pair.refresh_token, policy=POLICY, now=NOW)


def test_expired_tampered_and_alg_none_tokens_are_rejected() -> None:
    token, _ = issue_token(
        "u", "user", TokenType.ACCESS, now=NOW, lifetime=timedelta(minutes=15), secret=POLICY.secret
    )
    with pytest.raises(Unauthorized):
        decode_token(token, TokenType.ACCESS, POLICY.secret, NOW + timedelta(minutes=16))
    header, payload, signature = token.split(".")
    with pytest.raises(Unauthorized):
        decode_token(f"{header}.{payload}.{signature[::-1]}", TokenType.ACCESS, POLICY.secret, NOW)
    none_header = base64.urlsafe_b64encode(
        json.dumps({"alg": "none", "typ": "JWT"}).encode()
    ).rstrip(b"=")
    with pytest.raises(Unauthorized):
        decode_token(f"{none_header.decode()}.{payload}.", TokenType.ACCESS, POLICY.secret, NOW)
    with pytest.raises(Unauthorized):
        decode_token(token, TokenType.ACCESS, "another-secret-of-32-characters!", NOW)


def test_deleted_users_token_and_login_stop_working() -> None:
    users, tokens, guard = setup()
    alice = sign_up(users)
    admin = sign_up(users, "admin1", Role.ADMIN)
    pair = sign_in(users, tokens, guard)
    accounts.delete_user(users, admin, alice.id, NOW)
    with pytest.raises(Unauthorized):
        accounts.authenticate(users, pair.access_token, policy=POLICY, now=NOW)
    with pytest.raises(Unauthorized):
        accounts.refresh(users, tokens, pair.refresh_token, policy=POLICY, now=NOW)


def test_a_password_change_signs_the_account_out_everywhere() -> None:
    users, tokens, guard = setup()
    alice = sign_up(users)
    before = sign_in(users, tokens, guard)
    accounts.update_user(users, alice, alice.id, UserUpdate(password="Changed123"), NOW)
    with pytest.raises(Unauthorized):
        accounts.authenticate(users, before.access_token, policy=POLICY, now=NOW)
    with pytest.raises(Unauthorized):
        accounts.refresh(users, tokens, before.refresh_token, policy=POLICY, now=NOW)
    after = sign_in(users, tokens, guard, password="Changed123")
    assert accounts.authenticate(users, after.access_token, policy=POLICY, now=NOW).id == alice.id
    assert accounts.refresh(users, tokens, after.refresh_token, policy=POLICY, now=NOW)


def test_other_changes_keep_the_account_signed_in() -> None:
    users, tokens, guard = setup()
    alice = sign_up(users)
    pair = sign_in(users, tokens, guard)
    accounts.update_user(users, alice, alice.id, UserUpdate(email="new@example.com"), NOW)
    assert accounts.authenticate(users, pair.access_token, policy=POLICY, now=NOW).id == alice.id
    assert accounts.refresh(users, tokens, pair.refresh_token, policy=POLICY, now=NOW)


def test_resetting_an_admins_password_signs_it_out_everywhere() -> None:
    users, tokens, guard = setup()
    request = RegisterRequest(email="root@example.com", username="root", password="Secret123")
    accounts.ensure_admin(users, request, NOW)
    before = sign_in(users, tokens, guard, "root")
    accounts.ensure_admin(users, request.model_copy(update={"password": "Other1234"}), NOW)
    with pytest.raises(Unauthorized):
        accounts.authenticate(users, before.access_token, policy=POLICY, now=NOW)
    with pytest.raises(Unauthorized):
        accounts.refresh(users, tokens, before.refresh_token, policy=POLICY, now=NOW)


def test_only_admins_change_roles_and_users_see_only_themselves() -> None:
    users, _, _ = setup()
    alice, bob = sign_up(users), sign_up(users, "bob")
    with pytest.raises(Forbidden):
        accounts.update_user(users, alice, alice.id, UserUpdate(role=Role.ADMIN), NOW)
    with pytest.raises(accounts.UserNotFound):
        accounts.get_user(users, alice, bob.id)
    assert (
        accounts.update_user(users, alice, alice.id, UserUpdate(username="alice2"), NOW).username
        == "alice2"
    )


def test_repeated_failures_lock_the_username_for_a_while() -> None:
    users, tokens, guard = setup()
    sign_up(users)
    bad = LoginRequest(username="alice", password="Wrong1234")
    for _ in range(5):
        with pytest.raises(Unauthorized):
            accounts.login(users, tokens, guard, bad, policy=POLICY, now=NOW)
    good = LoginRequest(username="alice", password="Secret123")
    with pytest.raises(TooManyRequests) as raised:
        accounts.login(users, tokens, guard, good, policy=POLICY, now=NOW)
    assert raised.value.retry_after
    assert raised.value.retry_after <= 30
    assert accounts.login(
        users, tokens, guard, good, policy=POLICY, now=NOW + timedelta(seconds=31)
    )
