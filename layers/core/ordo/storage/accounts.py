"""DynamoDB adapters for accounts.

==========================  ==========  ================================================
pk                          sk          what
==========================  ==========  ================================================
``USER#<id>``               ``USER``    the user; ``gsi1pk=USERS``, ``gsi1sk=<created>#<id>``
``USERNAME#<name key>``     ``UNIQUE``  claims a username (NFKC, case-folded; see below)
``EMAIL#<lower email>``     ``UNIQUE``  claims an email
``FAMILY#<fam>``            ``FAMILY``  a refresh-token family: one sign-in (TTL)
``LOGIN#<counter>``         ``GUARD``   sign-in attempts and the lock they earned (TTL);
                                        per user, per user at an address, per address
==========================  ==========  ================================================

Registration writes the user and both claims in one transaction, each conditional on the key
not existing, so uniqueness holds under concurrent registration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from botocore.exceptions import ClientError

from ordo.accounts import (
    Attempts,
    EmailTaken,
    RefreshTokenReused,
    SessionRevoked,
    User,
    UsernameTaken,
    email_key,
    username_key,
)
from ordo.errors import Conflict, Unavailable
from ordo.storage.attributes import from_item, to_item
from ordo.storage.batch import base_items
from ordo.storage.pages import GSI1, DynamoTable
from ordo.storage.transactions import cancellation_codes, is_condition_failure, transact_write
from ordo.tokens import Claims


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _family_key(family: str) -> dict[str, Any]:
    return _key(f"FAMILY#{family}", "FAMILY")


def _user_key(user_id: str) -> dict[str, Any]:
    return _key(f"USER#{user_id}", "USER")


def _username_key(username: str) -> dict[str, Any]:
    return _key(f"USERNAME#{username_key(username)}", "UNIQUE")


def _legacy_username_key(username: str) -> dict[str, Any]:
    """How claims were keyed before usernames were NFKC case-folded: ``str.lower()``."""
    return _key(f"USERNAME#{username.lower()}", "UNIQUE")


def _email_key(email: str) -> dict[str, Any]:
    return _key(f"EMAIL#{email_key(email)}", "UNIQUE")


def _user_item(user: User) -> dict[str, Any]:
    fields = user.model_dump(mode="json")
    index = {"gsi1pk": "USERS", "gsi1sk": f"{fields['created_at']}#{user.id}"}
    return _user_key(user.id) | to_item(fields | index)


def _user(item: dict[str, Any]) -> User:
    return User.model_validate(from_item(item))


class DynamoUserTable(DynamoTable):
    def _put(self, item: dict[str, Any], condition: str) -> dict[str, Any]:
        return {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": condition}}

    def create(self, user: User) -> None:
        new = "attribute_not_exists(pk)"
        claim = {"user_id": {"S": user.id}}
        try:
            items = [
                self._put(_user_item(user), new),
                self._put(_username_key(user.username) | claim, new),
                self._put(_email_key(user.email) | claim, new),
            ]
            transact_write(self._client, items)
        except ClientError as error:
            codes = cancellation_codes(error)
            if len(codes) == 3 and codes[2] == "ConditionalCheckFailed":
                raise EmailTaken() from error
            if len(codes) == 3 and codes[1] == "ConditionalCheckFailed":
                raise UsernameTaken() from error
            raise

    def get(self, user_id: str) -> User | None:
        item = self._client.get_item(TableName=self._table, Key=_user_key(user_id)).get("Item")
        return _user(item) if item else None

    def find_by_username(self, username: str) -> User | None:
        """By the key accounts named before the NFKC rule have (``str.lower()``), then by the
        name's key. Only names outside ASCII have two keys: ``Straße`` finds its old account
        before a newer ``strasse`` one."""
        keys = [_legacy_username_key(username)]
        if _username_key(username) != keys[0]:
            keys.append(_username_key(username))
        for key in keys:
            claim = self._get_item(key)
            if claim:
                return self.get(claim["user_id"]["S"])
        return None

    def save(self, before: User, after: User) -> User:
        """One transaction: the user (unchanged since read) and any moved name claims."""
        unchanged = "updated_at = :seen"
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _user_item(after),
                    "ConditionExpression": unchanged,
                    "ExpressionAttributeValues": {
                        ":seen": {"S": before.model_dump(mode="json")["updated_at"]}
                    },
                }
            }
        ]
        claim = {"user_id": {"S": after.id}}
        moved = []
        for old, new, key in (
            (before.username, after.username, _username_key),
            (before.email, after.email, _email_key),
        ):
            if key(old) != key(new):
                moved.append(key)
                actions.append(self._put(key(new) | claim, "attribute_not_exists(pk)"))
                actions.append({"Delete": {"TableName": self._table, "Key": key(old)}})
        if _username_key in moved and _legacy_username_key(before.username) not in (
            _username_key(before.username),
            _username_key(after.username),
        ):
            legacy = _legacy_username_key(before.username)
            actions.append({"Delete": {"TableName": self._table, "Key": legacy}})
        try:
            transact_write(self._client, actions)
        except ClientError as error:
            codes = cancellation_codes(error)
            if codes and codes[0] == "ConditionalCheckFailed":
                raise Conflict("The user changed meanwhile; read it again") from error
            for index, key in enumerate(moved):
                if len(codes) > 1 + 2 * index and codes[1 + 2 * index] == "ConditionalCheckFailed":
                    raise (UsernameTaken() if key is _username_key else EmailTaken()) from error
            raise
        return after

    def page(self, limit: int, cursor: str | None) -> tuple[list[User], str | None]:
        # The index holds only keys: password hashes and token state never leave the user item.
        items, next_cursor = self._page(GSI1, "USERS", limit, cursor)
        return [_user(item) for item in items], next_cursor


class DynamoRefreshTokens(DynamoTable):
    """Refresh-token families, one item each (``FAMILY#<fam>``): the user, the one refresh
    token (``current`` jti) that may be spent next, ``revoked`` once it ends, and a TTL at the
    current token's expiry. Rotation is one conditional update; when it fails, the item as it
    was comes back with the error, so telling reuse from revocation costs no read."""

    def start(self, claims: Claims) -> None:
        self._client.put_item(
            TableName=self._table,
            Item=_family_key(claims.fam)
            | to_item({"user_id": claims.sub, "current": claims.jti, "expires_at": claims.exp}),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def rotate(self, spent: Claims, fresh: Claims) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_family_key(spent.fam),
                UpdateExpression="SET #current = :fresh, expires_at = :expires",
                ConditionExpression="#current = :spent AND attribute_not_exists(revoked)",
                ExpressionAttributeNames={"#current": "current"},
                ExpressionAttributeValues={
                    ":fresh": {"S": fresh.jti},
                    ":spent": {"S": spent.jti},
                    ":expires": {"N": str(fresh.exp)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            family = cast("dict[str, Any]", error.response).get("Item")
            if not family or "revoked" in family:
                raise SessionRevoked() from error
            self.revoke(spent.fam)
            raise RefreshTokenReused() from error

    def revoke(self, family: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_family_key(family),
                UpdateExpression="SET revoked = :yes",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":yes": {"BOOL": True}},
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise


class DynamoLoginGuard(DynamoTable):
    """Sign-in attempt counters, one item each (``LOGIN#<key>``), expiring by TTL when their
    window ends. Reads are strongly consistent and every write is conditional on the
    ``version`` read, so parallel attempts cannot each pass the same check."""

    @staticmethod
    def _key(key: str) -> dict[str, Any]:
        return _key(f"LOGIN#{key}", "GUARD")

    def read(self, keys: Sequence[str]) -> dict[str, Attempts]:
        named = {f"LOGIN#{key}": key for key in keys}
        found: dict[str, Attempts] = {}
        for item in base_items(self._client, self._table, [self._key(key) for key in keys]):
            fields = from_item(item)
            found[named[fields["pk"]]] = Attempts(
                count=int(fields["count"]),
                window_ends=int(fields["expires_at"]),
                locked_until=int(fields.get("locked_until", 0)),
                version=int(fields["version"]),
            )
        return found

    def write(self, changes: Mapping[str, tuple[Attempts | None, Attempts]]) -> bool:
        actions = []
        for key, (before, after) in changes.items():
            put: dict[str, Any] = {
                "TableName": self._table,
                "Item": self._key(key)
                | to_item(
                    {
                        "count": after.count,
                        "expires_at": after.window_ends,
                        "locked_until": after.locked_until,
                        "version": after.version,
                    }
                ),
            }
            if before is None:
                put["ConditionExpression"] = "attribute_not_exists(pk)"
            else:
                put["ConditionExpression"] = "version = :seen"
                put["ExpressionAttributeValues"] = {":seen": {"N": str(before.version)}}
            actions.append({"Put": put})
        try:
            transact_write(self._client, actions)
        except ClientError as error:
            if "ConditionalCheckFailed" in cancellation_codes(error):
                return False
            raise
        except Unavailable:  # conflicts that outlasted the retries: a lost race, as above
            return False
        return True

    def forget(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._client.delete_item(TableName=self._table, Key=self._key(key))

    def refund(self, key: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(key),
                UpdateExpression="SET #count = #count - :one, version = version + :one",
                ConditionExpression="#count > :zero",
                ExpressionAttributeNames={"#count": "count"},
                ExpressionAttributeValues={":one": {"N": "1"}, ":zero": {"N": "0"}},
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise
