"""Accounts on in-memory fakes: password policy, sign-in, rotation, token attacks, roles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from pydantic import ValidationError

from ordo import accounts
from ordo.accounts import (
    EmailTaken,
    LoginRequest,
    RefreshTokenReused,
    RegisterRequest,
    Role,
    SessionRevoked,
    TokenPair,
    TokenPolicy,
    User,
    UserUpdate,
)
from ordo.errors import Forbidden, TooManyRequests, Unauthorized
from ordo.tokens import SigningKey, TokenType, TokenVerifier
from tests.fakes_accounts import InMemoryLoginGuard, InMemoryRefreshTokens, InMemoryUserTable

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CLIENT = "198.51.100.7"
KEY = SigningKey.generate()
VERIFIER = TokenVerifier.of(KEY.public_keys())
POLICY = TokenPolicy(signing_key=KEY, verifier=VERIFIER)


def update(
    users: InMemoryUserTable, viewer: User, user_id: str, changes: UserUpdate, *, at: str = CLIENT
) -> accounts.UserView:
    guard = InMemoryLoginGuard()
    return accounts.update_user(users, guard, viewer, user_id, changes, now=NOW, client=at)


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
    return accounts.login(users, tokens, guard, request, policy=POLICY, now=NOW, client=CLIENT)


def sign_up(users: InMemoryUserTable, name: str = "alice", role: Role = Role.USER) -> User:
    view = accounts.register(
        users,
        InMemoryLoginGuard(),
        RegisterRequest(email=f"{name}@example.com", username=name, password="Secret123"),
        now=NOW,
        client=CLIENT,
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


@pytest.mark.parametrize(
    ("email", "normalized"),
    [
        ("Bob@EXAMPLE.com", "Bob@example.com"),  # the domain is case-folded, the local part kept
        ("a.b+tag@mail.example.co.uk", "a.b+tag@mail.example.co.uk"),
        ("o'hara_{x}@example.org", "o'hara_{x}@example.org"),
        ("n\u0303andu@B\u00fccher.DE", "\u00f1andu@b\u00fccher.de"),  # NFC, IDN domain
        # combining vowel signs inside labels: Devanagari's are category Mc/Mn
        ("user@\u0909\u0926\u093e\u0939\u0930\u0923.\u092d\u093e\u0930\u0924",) * 2,
        ("a@xn--bcher-kva.de", "a@b\u00fccher.de"),  # an A-label is stored as its U-label
        ("a@XN--BCHER-KVA.DE", "a@b\u00fccher.de"),
        ("a@example.xn--zckzah", "a@example.\u30c6\u30b9\u30c8"),
        (
            "a@\u4f8b\u3048\u3002\u30c6\u30b9\u30c8",
            "a@\u4f8b\u3048.\u30c6\u30b9\u30c8",
        ),  # ideographic dot
        ("a@\u05d0\u05d1.com", "a@\u05d0\u05d1.com"),  # right-to-left, each label from a letter
        ("caf\u00e9@example.com", "caf\u00e9@example.com"),
        ("a@" + "b" * 63 + ".com", "a@" + "b" * 63 + ".com"),
    ],
)
def test_an_email_address_is_kept_normalized(email: str, normalized: str) -> None:
    request = RegisterRequest(email=email, username="abc", password="Secret123")

    assert request.email == normalized


@pytest.mark.parametrize(
    ("email", "problem"),
    [
        ("not-an-email", "it has no @"),
        ("@example.com", "1 to 64 characters"),
        ("@@@example.com", "a character an address cannot have"),
        ("a b@example.com", "a character an address cannot have"),
        ('"quoted"@example.com', "a character an address cannot have"),
        (".a@example.com", "start or end with a dot"),
        ("a..b@example.com", "start or end with a dot"),
        ("a@localhost", "must have a dot"),
        ("a@-example.com", "labels of letters, digits and hyphens"),
        ("a@exa_mple.com", "labels of letters, digits and hyphens"),
        ("a@" + "b" * 64 + ".com", "labels of letters, digits and hyphens (1 to 63)"),
        ("a@example.com.", "cannot start or end with a dot"),
        ("a@ab--cd.com", "cannot have '--' as its 3rd and 4th characters"),
        ("a@xn--zz.com", "the domain label xn--zz is not valid IDNA"),  # not punycode
        ("a@xn--Bcher-kva.de.xn--a.com", "xn--a is not valid IDNA"),
        (
            "a@\u00fc" + "b" * 62 + ".com",
            "is not a valid internationalised name",
        ),  # 64 once encoded
        ("\u0301abc@example.com", "before the @ cannot start with a combining mark"),
        ("a@\u0301example.com", "a label of the domain cannot start with a combining mark"),
        ("a@1.xn--4dbc.com", "in a right-to-left domain, every label must start with a letter"),
        ("a@stra\u00dfe.de", "U+00DF, which IDNA versions read as different domains"),
        ("a@a\u200db.com", "U+200D"),
        ("a@[127.0.0.1]", "labels of letters, digits and hyphens"),
        ("a@example.test", "not a domain email can be sent to"),
        ("a@10.0.0.1", "not a domain email can be sent to"),
    ],
)
def test_a_bad_email_address_is_refused_saying_why(email: str, problem: str) -> None:
    with pytest.raises(ValidationError) as refused:
        RegisterRequest(email=email, username="abc", password="Secret123")

    (error,) = refused.value.errors()
    assert error["loc"] == ("email",)
    assert "email must be an address like name@example.com" in error["msg"]
    assert problem in error["msg"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("alice@xn--bcher-kva.de", "Alice@B\u00dcCHER.de"),
        ("alice@b\u00fccher.de", "alice@XN--BCHER-KVA.de"),
        ("alice@example.com", "ALICE@EXAMPLE.COM"),
    ],
)
def test_one_mailbox_written_two_ways_is_one_account(first: str, second: str) -> None:
    users = InMemoryUserTable()
    register = partial(accounts.register, users, InMemoryLoginGuard(), now=NOW, client=CLIENT)
    register(RegisterRequest(email=first, username="alice", password="Secret123"))

    with pytest.raises(EmailTaken):
        register(RegisterRequest(email=second, username="alice2", password="Secret123"))


def test_login_then_authenticate() -> None:
    users, tokens, guard = setup()
    alice = sign_up(users)
    pair = sign_in(users, tokens, guard)
    assert accounts.authenticate(users, pair.access_token, VERIFIER, NOW).id == alice.id


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
        accounts.authenticate(users, pair.refresh_token, VERIFIER, NOW)


def test_reusing_a_spent_refresh_token_revokes_the_family() -> None:
    # Given a sign-in that refreshed once, and a second sign-in of the same user
    users, tokens, guard = setup()
    alice = sign_up(users)
    stolen = sign_in(users, tokens, guard)
    other = sign_in(users, tokens, guard)
    current = accounts.refresh(users, tokens, stolen.refresh_token, policy=POLICY, now=NOW)
    # When the spent token comes back
    with pytest.raises(RefreshTokenReused):
        accounts.refresh(users, tokens, stolen.refresh_token, policy=POLICY, now=NOW)
    # Then the family's current refresh token is refused as well; the other sign-in is not
    with pytest.raises(SessionRevoked):
        accounts.refresh(users, tokens, current.refresh_token, policy=POLICY, now=NOW)
    assert accounts.refresh(users, tokens, other.refresh_token, policy=POLICY, now=NOW)
    # Access tokens are not checked against the family: they expire on their own
    assert accounts.authenticate(users, current.access_token, VERIFIER, NOW).id == alice.id


def test_both_tokens_of_a_pair_name_one_new_family_per_sign_in() -> None:
    users, tokens, guard = setup()
    sign_up(users)
    first, second = sign_in(users, tokens, guard), sign_in(users, tokens, guard)
    access = VERIFIER.verify(first.access_token, TokenType.ACCESS, NOW)
    refresh = VERIFIER.verify(first.refresh_token, TokenType.REFRESH, NOW)
    assert access.fam == refresh.fam
    assert VERIFIER.verify(second.refresh_token, TokenType.REFRESH, NOW).fam != refresh.fam
    assert tokens.families[refresh.fam].current == refresh.jti
    assert (access.iss, access.aud) == ("ordo", "ordo-api")


def test_logout_revokes_the_family_of_either_token_and_is_idempotent() -> None:
    users, tokens, guard = setup()
    sign_up(users)
    by_refresh, by_access = sign_in(users, tokens, guard), sign_in(users, tokens, guard)
    accounts.logout(tokens, VERIFIER, NOW, refresh_token=by_refresh.refresh_token)
    accounts.logout(tokens, VERIFIER, NOW, refresh_token=by_refresh.refresh_token)
    accounts.logout(
        tokens, VERIFIER, NOW, refresh_token="junk", access_token=by_access.access_token
    )
    for pair in (by_refresh, by_access):
        with pytest.raises(SessionRevoked):
            accounts.refresh(users, tokens, pair.refresh_token, policy=POLICY, now=NOW)
    with pytest.raises(Unauthorized):
        accounts.logout(tokens, VERIFIER, NOW)
    with pytest.raises(Unauthorized):  # the wrong kind in each place names nothing
        accounts.logout(
            tokens,
            VERIFIER,
            NOW,
            refresh_token=by_access.access_token,
            access_token=by_access.refresh_token,
        )


def test_deleted_users_token_and_login_stop_working() -> None:
    users, tokens, guard = setup()
    alice = sign_up(users)
    admin = sign_up(users, "admin1", Role.ADMIN)
    pair = sign_in(users, tokens, guard)
    accounts.delete_user(users, admin, alice.id, NOW)
    with pytest.raises(Unauthorized):
        accounts.authenticate(users, pair.access_token, VERIFIER, NOW)
    with pytest.raises(Unauthorized):
        accounts.refresh(users, tokens, pair.refresh_token, policy=POLICY, now=NOW)


def test_a_password_change_signs_the_account_out_everywhere() -> None:
    users, tokens, guard = setup()
    alice = sign_up(users)
    before = sign_in(users, tokens, guard)
    update(users, alice, alice.id, UserUpdate(password="Changed123", current_password="Secret123"))
    with pytest.raises(Unauthorized):
        accounts.authenticate(users, before.access_token, VERIFIER, NOW)
    with pytest.raises(Unauthorized):
        accounts.refresh(users, tokens, before.refresh_token, policy=POLICY, now=NOW)
    after = sign_in(users, tokens, guard, password="Changed123")
    assert accounts.authenticate(users, after.access_token, VERIFIER, NOW).id == alice.id
    assert accounts.refresh(users, tokens, after.refresh_token, policy=POLICY, now=NOW)


@pytest.mark.parametrize(
    "change", [{"email": "new@example.com"}, {"username": "alice2"}, {"password": "Changed123"}]
)
def test_an_email_username_or_password_change_signs_the_account_out(
    change: dict[str, str],
) -> None:
    users, tokens, guard = setup()
    alice = sign_up(users)
    pair = sign_in(users, tokens, guard)
    update(users, alice, alice.id, UserUpdate(**change, current_password="Secret123"))
    with pytest.raises(Unauthorized):
        accounts.authenticate(users, pair.access_token, VERIFIER, NOW)


def test_other_changes_keep_the_account_signed_in() -> None:
    users, tokens, guard = setup()
    root, alice = sign_up(users, "root", Role.ADMIN), sign_up(users)
    pair = sign_in(users, tokens, guard)
    update(users, root, alice.id, UserUpdate(role=Role.ADMIN))
    assert accounts.authenticate(users, pair.access_token, VERIFIER, NOW).id == alice.id
    assert accounts.refresh(users, tokens, pair.refresh_token, policy=POLICY, now=NOW)


def test_resetting_an_admins_password_signs_it_out_everywhere() -> None:
    users, tokens, guard = setup()
    request = RegisterRequest(email="root@example.com", username="root", password="Secret123")
    accounts.ensure_admin(users, request, NOW)
    before = sign_in(users, tokens, guard, "root")
    accounts.ensure_admin(users, request.model_copy(update={"password": "Other1234"}), NOW)
    with pytest.raises(Unauthorized):
        accounts.authenticate(users, before.access_token, VERIFIER, NOW)
    with pytest.raises(Unauthorized):
        accounts.refresh(users, tokens, before.refresh_token, policy=POLICY, now=NOW)


def test_only_admins_change_roles_and_users_see_only_themselves() -> None:
    users, _, _ = setup()
    alice, bob = sign_up(users), sign_up(users, "bob")
    with pytest.raises(Forbidden):
        update(users, alice, alice.id, UserUpdate(role=Role.ADMIN))
    with pytest.raises(accounts.UserNotFound):
        accounts.get_user(users, alice, bob.id)
    renamed = update(
        users, alice, alice.id, UserUpdate(username="alice2", current_password="Secret123")
    )
    assert renamed.username == "alice2"


def test_repeated_failures_lock_the_username_for_a_while() -> None:
    users, tokens, guard = setup()
    sign_up(users)
    bad = LoginRequest(username="alice", password="Wrong1234")
    for _ in range(5):
        with pytest.raises(Unauthorized):
            accounts.login(users, tokens, guard, bad, policy=POLICY, now=NOW, client=CLIENT)
    good = LoginRequest(username="alice", password="Secret123")
    with pytest.raises(TooManyRequests) as raised:
        accounts.login(users, tokens, guard, good, policy=POLICY, now=NOW, client=CLIENT)
    assert raised.value.retry_after
    assert raised.value.retry_after <= 30
    later = NOW + timedelta(seconds=31)
    assert accounts.login(users, tokens, guard, good, policy=POLICY, now=later, client=CLIENT)
