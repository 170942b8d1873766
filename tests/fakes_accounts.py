"""In-memory fakes of the accounts ports. ``tests/integration/test_accounts_storage.py`` holds
the DynamoDB adapters to the same rules."""

from __future__ import annotations

from datetime import UTC, datetime

from ordo.accounts import EmailTaken, Role, User, UsernameTaken, new_user_id
from ordo.errors import Conflict
from ordo.security import Claims
from ordo.storage.accounts import FIRST_LOCK, FREE_FAILURES, MAX_LOCK, WINDOW


class InMemoryUserTable:
    def __init__(self) -> None:
        self.users: dict[str, User] = {}

    def _taken(self, user: User, ignore: str | None = None) -> None:
        for other in self.users.values():
            if other.id == ignore:
                continue
            if other.email.lower() == user.email.lower():
                raise EmailTaken()
            if other.username.lower() == user.username.lower():
                raise UsernameTaken()

    def create(self, user: User) -> None:
        self._taken(user)
        self.users[user.id] = user

    def get(self, user_id: str) -> User | None:
        return self.users.get(user_id)

    def find_by_username(self, username: str) -> User | None:
        return next(
            (u for u in self.users.values() if u.username.lower() == username.lower()), None
        )

    def save(self, before: User, after: User) -> User:
        if self.users.get(before.id) != before:
            raise Conflict("The user changed meanwhile; read it again")
        self._taken(after, ignore=after.id)
        self.users[after.id] = after
        return after

    def page(self, limit: int, cursor: str | None) -> tuple[list[User], str | None]:
        ordered = sorted(self.users.values(), key=lambda u: (u.created_at, u.id))
        start = int(cursor or 0)
        end = start + limit
        return ordered[start:end], str(end) if end < len(ordered) else None


class InMemoryRefreshTokens:
    def __init__(self) -> None:
        self.live: set[str] = set()

    def remember(self, claims: Claims) -> None:
        self.live.add(claims.jti)

    def consume(self, jti: str) -> bool:
        if jti not in self.live:
            return False
        self.live.remove(jti)
        return True


class InMemoryLoginGuard:
    """``DynamoLoginGuard``'s rules: a window of failures that expires, and a doubling lock."""

    def __init__(self) -> None:
        self.records: dict[str, tuple[int, datetime, datetime | None]] = {}

    def retry_after(self, username: str, now: datetime) -> int:
        _, expires, locked_until = self.records.get(username.lower(), (0, now, None))
        if expires <= now or locked_until is None:
            return 0
        return max(0, int((locked_until - now).total_seconds()))

    def failed(self, username: str, now: datetime) -> None:
        key = username.lower()
        failures, expires, locked_until = self.records.get(key, (0, now, None))
        if expires <= now:
            failures, locked_until = 0, None
        failures += 1
        if failures >= FREE_FAILURES:
            locked_until = now + min(FIRST_LOCK * 2 ** (failures - FREE_FAILURES), MAX_LOCK)
        self.records[key] = (failures, now + WINDOW, locked_until)

    def succeeded(self, username: str) -> None:
        self.records.pop(username.lower(), None)


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
