"""The accounts adapters on moto, with the table made from template.yaml."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ordo.accounts import (
    EmailTaken,
    RefreshTokenReused,
    RefreshTokens,
    SessionRevoked,
    User,
    UsernameTaken,
    new_user_id,
)
from ordo.errors import Conflict
from ordo.storage.accounts import DynamoRefreshTokens, DynamoUserTable
from ordo.tokens import Claims, TokenType, new_token_id
from tests.fakes_accounts import InMemoryRefreshTokens
from tests.harness import InProcessStack

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def cloud(anonymous_cloud: InProcessStack) -> InProcessStack:
    """No one signed in: these tests count and name every user themselves."""
    return anonymous_cloud


def table_name(cloud: InProcessStack) -> str:
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


def test_create_get_and_find_case_insensitively(cloud: InProcessStack) -> None:
    users = DynamoUserTable(cloud.dynamodb, table_name(cloud))
    alice = user("Alice")
    users.create(alice)
    assert users.get(alice.id) == alice
    assert users.find_by_username("alice") == alice


def test_a_name_from_before_the_nfkc_rule_is_found_by_its_old_key_first(
    cloud: InProcessStack,
) -> None:
    users = DynamoUserTable(cloud.dynamodb, table_name(cloud))
    legacy = user("Stra\u00dfe")  # claimed as USERNAME#straße; its new key would be strasse
    users.create(legacy)
    cloud.dynamodb.delete_item(
        TableName=table_name(cloud), Key={"pk": {"S": "USERNAME#strasse"}, "sk": {"S": "UNIQUE"}}
    )
    cloud.dynamodb.put_item(
        TableName=table_name(cloud),
        Item={
            "pk": {"S": "USERNAME#stra\u00dfe"},
            "sk": {"S": "UNIQUE"},
            "user_id": {"S": legacy.id},
        },
    )
    newer = user("strasse")
    users.create(newer)
    assert users.find_by_username("Stra\u00dfe") == legacy
    assert users.find_by_username("STRASSE") == newer
    assert users.find_by_username("\uff33trasse") == newer  # full width S


def test_duplicate_username_and_email_are_named(cloud: InProcessStack) -> None:
    users = DynamoUserTable(cloud.dynamodb, table_name(cloud))
    users.create(user("alice"))
    with pytest.raises(UsernameTaken):
        users.create(user("ALICE", email="other@example.com"))
    with pytest.raises(EmailTaken):
        users.create(user("bob", email="Alice@example.com"))


def test_save_moves_name_claims_and_refuses_a_stale_copy(cloud: InProcessStack) -> None:
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


def test_users_page_through_the_index(cloud: InProcessStack) -> None:
    users = DynamoUserTable(cloud.dynamodb, table_name(cloud))
    for n in range(5):
        users.create(user(f"user{n}"))
    first, cursor = users.page(3, None)
    second, last = users.page(3, cursor)
    assert len(first) == 3
    assert len(second) == 2
    assert last is None
    assert {u.username for u in first + second} == {f"user{n}" for n in range(5)}


# --- refresh-token families: the DynamoDB adapter and the fake, held to the same rules ----


@pytest.fixture(params=["dynamodb", "fake"])
def families(request: pytest.FixtureRequest, cloud: InProcessStack) -> RefreshTokens:
    if request.param == "fake":
        return InMemoryRefreshTokens()
    return DynamoRefreshTokens(cloud.dynamodb, table_name(cloud))


def _refresh_claims(family: str = "fam1", at: datetime = NOW) -> Claims:
    return Claims(
        sub="u1",
        role="user",
        type=TokenType.REFRESH,
        iat=int(at.timestamp()),
        exp=int((at + timedelta(days=7)).timestamp()),
        jti=new_token_id(),
        gen=0,
        fam=family,
        iss="ordo",
        aud="ordo-api",
    )


def test_a_family_rotates_from_its_current_token_only(families: RefreshTokens) -> None:
    first = _refresh_claims()
    families.start(first)
    second = _refresh_claims(at=NOW + timedelta(minutes=1))
    families.rotate(first, second)
    third = _refresh_claims(at=NOW + timedelta(minutes=2))
    families.rotate(second, third)  # the newest one is current
    with pytest.raises(RefreshTokenReused):
        families.rotate(second, _refresh_claims())


def test_reuse_of_a_spent_token_revokes_the_family(families: RefreshTokens) -> None:
    first, second, thief = _refresh_claims(), _refresh_claims(), _refresh_claims()
    families.start(first)
    families.rotate(first, second)
    with pytest.raises(RefreshTokenReused):
        families.rotate(first, thief)
    with pytest.raises(SessionRevoked):  # the victim's current token is dead too
        families.rotate(second, _refresh_claims())
    with pytest.raises(SessionRevoked):  # and so is the thief's
        families.rotate(thief, _refresh_claims())
    other = _refresh_claims("fam2")
    families.start(other)
    families.rotate(other, _refresh_claims("fam2"))  # another family is untouched


def test_revoke_is_idempotent_and_an_unknown_family_is_revoked(families: RefreshTokens) -> None:
    first = _refresh_claims()
    families.start(first)
    families.revoke("fam1")
    families.revoke("fam1")
    families.revoke("never-started")
    with pytest.raises(SessionRevoked):
        families.rotate(first, _refresh_claims())
    with pytest.raises(SessionRevoked):
        families.rotate(_refresh_claims("never-started"), _refresh_claims("never-started"))


def _family_item(cloud: InProcessStack, family: str) -> dict[str, Any] | None:
    key = {"pk": {"S": f"FAMILY#{family}"}, "sk": {"S": "FAMILY"}}
    item = cloud.dynamodb.get_item(TableName=table_name(cloud), Key=key).get("Item")
    return dict(item) if item else None


def test_a_family_item_holds_its_user_current_token_and_ttl(cloud: InProcessStack) -> None:
    families = DynamoRefreshTokens(cloud.dynamodb, table_name(cloud))
    first, second = _refresh_claims(), _refresh_claims(at=NOW + timedelta(hours=1))
    families.start(first)
    families.rotate(first, second)
    item = _family_item(cloud, "fam1")
    assert item is not None
    assert item["user_id"] == {"S": "u1"}
    assert item["current"] == {"S": second.jti}
    assert item["expires_at"] == {"N": str(second.exp)}  # the table's TTL attribute
    assert "revoked" not in item
    families.revoke("fam1")
    assert (_family_item(cloud, "fam1") or {})["revoked"] == {"BOOL": True}
    families.revoke("never")
    assert _family_item(cloud, "never") is None  # revoking leaves no stray item
