"""DynamoDB adapters for accounts.

==========================  ==========  ================================================
pk                          sk          what
==========================  ==========  ================================================
``USER#<id>``               ``USER``    the user; ``gsi1pk=USERS``, ``gsi1sk=<created>#<id>``
``USERNAME#<lower name>``   ``UNIQUE``  claims a username (points at the user)
``EMAIL#<lower email>``     ``UNIQUE``  claims an email
``REFRESH#<jti>``           ``TOKEN``   an unspent refresh token (TTL at its expiry)
``LOGIN#<lower name>``      ``GUARD``   failed sign-ins and the lock they earned (TTL)
==========================  ==========  ================================================

Registration writes the user and both claims in one transaction, each conditional on the key
not existing, so uniqueness holds under concurrent registration.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ordo.accounts import EmailTaken, User, UsernameTaken
from ordo.errors import Conflict
from ordo.security import Claims
from ordo.storage.attributes import from_item, to_item
from ordo.storage.cursors import decode_cursor, encode_cursor
from ordo.storage.transactions import cancellation_codes, is_condition_failure, transact_write

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

USERS_INDEX = "gsi1"

# Sign-in lock: after FREE_FAILURES in a window, each further failure doubles the wait.
FREE_FAILURES = 5
FIRST_LOCK = timedelta(seconds=30)
MAX_LOCK = timedelta(minutes=15)
WINDOW = timedelta(minutes=15)


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _user_key(user_id: str) -> dict[str, Any]:
    return _key(f"USER#{user_id}", "USER")


def _username_key(username: str) -> dict[str, Any]:
    return _key(f"USERNAME#{username.lower()}", "UNIQUE")


def _email_key(email: str) -> dict[str, Any]:
    return _key(f"EMAIL#{email.lower()}", "UNIQUE")


def _user_item(user: User) -> dict[str, Any]:
    fields = user.model_dump(mode="json")
    index = {"gsi1pk": "USERS", "gsi1sk": f"{fields['created_at']}#{user.id}"}
    return _user_key(user.id) | to_item(fields | index)


def _user(item: dict[str, Any]) -> User:
    return User.model_validate(from_item(item))


class DynamoUserTable:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

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
        claim = self._client.get_item(
            TableName=self._table, Key=_username_key(username), ConsistentRead=True
        ).get("Item")
        return self.get(claim["user_id"]["S"]) if claim else None

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
            if old.lower() != new.lower():
                moved.append(key)
                actions.append(self._put(key(new) | claim, "attribute_not_exists(pk)"))
                actions.append({"Delete": {"TableName": self._table, "Key": key(old)}})
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
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": USERS_INDEX,
            "KeyConditionExpression": "gsi1pk = :users",
            "ExpressionAttributeValues": {":users": {"S": "USERS"}},
            "Limit": limit,
        }
        if cursor:
            keys = {"pk", "sk", "gsi1pk", "gsi1sk"}
            query["ExclusiveStartKey"] = decode_cursor(cursor, keys, ("gsi1pk", "USERS"))
        response = self._client.query(**query)
        last = response.get("LastEvaluatedKey")
        return [_user(item) for item in response["Items"]], encode_cursor(last) if last else None


class DynamoRefreshTokens:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def remember(self, claims: Claims) -> None:
        self._client.put_item(
            TableName=self._table,
            Item=_key(f"REFRESH#{claims.jti}", "TOKEN")
            | to_item({"user_id": claims.sub, "expires_at": claims.exp}),
        )

    def consume(self, jti: str) -> bool:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=_key(f"REFRESH#{jti}", "TOKEN"),
                ConditionExpression="attribute_exists(pk)",
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True


class DynamoLoginGuard:
    """Failed sign-ins per username. Past ``FREE_FAILURES`` in a window, each failure locks the
    name for twice as long as the last, up to ``MAX_LOCK``; the record expires with its window,
    so no lock outlives 15 minutes of quiet."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _key(self, username: str) -> dict[str, Any]:
        return _key(f"LOGIN#{username.lower()[:254]}", "GUARD")

    def retry_after(self, username: str, now: datetime) -> int:
        item = self._client.get_item(TableName=self._table, Key=self._key(username)).get("Item")
        if not item or int(item["expires_at"]["N"]) <= int(now.timestamp()):
            return 0
        locked_until = int(item.get("locked_until", {}).get("N", "0"))
        return max(0, locked_until - int(now.timestamp()))

    def failed(self, username: str, now: datetime) -> None:
        epoch = int(now.timestamp())
        expires = {"N": str(epoch + int(WINDOW.total_seconds()))}
        try:  # count on within a live window...
            response = self._client.update_item(
                TableName=self._table,
                Key=self._key(username),
                UpdateExpression="ADD failures :one SET expires_at = :expires",
                ConditionExpression="expires_at > :now",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":expires": expires,
                    ":now": {"N": str(epoch)},
                },
                ReturnValues="ALL_NEW",
            )
            failures = int(response["Attributes"]["failures"]["N"])
        except ClientError as error:  # ...or start a new one (TTL may not have removed the old)
            if not is_condition_failure(error):
                raise
            self._client.put_item(
                TableName=self._table,
                Item=self._key(username) | {"failures": {"N": "1"}, "expires_at": expires},
            )
            failures = 1
        if failures >= FREE_FAILURES:
            lock = min(FIRST_LOCK * 2 ** (failures - FREE_FAILURES), MAX_LOCK)
            self._client.update_item(
                TableName=self._table,
                Key=self._key(username),
                UpdateExpression="SET locked_until = :until",
                ExpressionAttributeValues={":until": {"N": str(epoch + int(lock.total_seconds()))}},
            )

    def succeeded(self, username: str) -> None:
        self._client.delete_item(TableName=self._table, Key=self._key(username))
