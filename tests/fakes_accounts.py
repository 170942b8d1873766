"""In-memory fakes of the accounts ports. ``tests/integration/test_accounts_storage.py`` holds
the DynamoDB adapters to the same rules."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ordo.accounts import (
    Attempts,
    EmailTaken,
    RefreshTokenReused,
    Role,
    SessionRevoked,
    User,
    UsernameTaken,
    email_key,
    new_user_id,
    username_key,
)
from ordo.errors import Conflict, InvalidInput
from ordo.tokens import Claims


class InMemoryUserTable:
    def __init__(self) -> None:
        self.users: dict[str, User] = {}

    def _taken(self, user: User, ignore: str | None = None) -> None:
        for other in self.users.values():
            if other.id == ignore:
                continue
            if email_key(other.email) == email_key(user.email):
                raise EmailTaken()
            if username_key(other.username) == username_key(user.username):
                raise UsernameTaken()

    def create(self, user: User) -> None:
        self._taken(user)
        self.users[user.id] = user

    def get(self, user_id: str) -> User | None:
        return self.users.get(user_id)

    def find_by_username(self, username: str) -> User | None:
        named = [
            u for u in self.users.values() if username_key(u.username) == username_key(username)
        ]
        legacy = [u for u in self.users.values() if u.username.lower() == username.lower()]
        return next(iter(legacy or named), None)

    def save(self, before: User, after: User) -> User:
        if self.users.get(before.id) != before:
            raise Conflict("The user changed meanwhile; read it again")
        self._taken(after, ignore=after.id)
        self.users[after.id] = after
        return after

    def page(self, limit: int, cursor: str | None) -> tuple[list[User], str | None]:
        """Oldest first; the cursor is the last listed user's place, as the adapter's is."""
        ordered = sorted(self.users.values(), key=_order)
        if cursor is not None and not cursor.startswith("USERS#"):
            raise InvalidInput("cursor is not valid")
        rest = [u for u in ordered if cursor is None or _order(u) > cursor]
        page = rest[:limit]
        return page, _order(page[-1]) if len(rest) > limit else None


def _order(user: User) -> str:
    return f"USERS#{user.created_at.isoformat()}#{user.id}"


@dataclass
class Family:
    user_id: str
    current: str
    expires_at: int
    revoked: bool = False


class InMemoryRefreshTokens:
    """``DynamoRefreshTokens``' rules: one family per sign-in; reuse of a spent token revokes
    it."""

    def __init__(self) -> None:
        self.families: dict[str, Family] = {}
        self._lock = threading.Lock()

    def start(self, claims: Claims) -> None:
        with self._lock:
            assert claims.fam not in self.families
            self.families[claims.fam] = Family(claims.sub, claims.jti, claims.exp)

    def rotate(self, spent: Claims, fresh: Claims) -> None:
        with self._lock:
            family = self.families.get(spent.fam)
            if family is None or family.revoked:
                raise SessionRevoked()
            if family.current != spent.jti:
                family.revoked = True
                raise RefreshTokenReused()
            family.current, family.expires_at = fresh.jti, fresh.exp

    def revoke(self, family: str) -> None:
        with self._lock:
            if family in self.families:
                self.families[family].revoked = True


class InMemoryLoginGuard:
    """``DynamoLoginGuard``: counters compared by version, written all or nothing."""

    def __init__(self) -> None:
        self.records: dict[str, Attempts] = {}
        self._lock = threading.Lock()

    def read(self, keys: Sequence[str]) -> dict[str, Attempts]:
        with self._lock:
            return {key: self.records[key] for key in keys if key in self.records}

    def write(self, changes: Mapping[str, tuple[Attempts | None, Attempts]]) -> bool:
        with self._lock:
            if any(self.records.get(key) != before for key, (before, _) in changes.items()):
                return False
            self.records.update({key: after for key, (_, after) in changes.items()})
            return True

    def forget(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self.records.pop(key, None)

    def refund(self, key: str) -> None:
        with self._lock:
            record = self.records.get(key)
            if record and record.count > 0:
                self.records[key] = replace(
                    record, count=record.count - 1, version=record.version + 1
                )


def make_user(name: str, role: Role = Role.USER, *, now: datetime | None = None) -> User:
    """A stored user, without the cost of hashing a real password."""
    at = now or datetime(2026, 11, 21, tzinfo=UTC)
    return User(
        id=new_user_id(),
        email=f"{name}@example.com",
        username=name,
        password_hash="$argon2id$not-a-real-hash",
        role=role,
        created_at=at,
        updated_at=at,
    )
