"""In-memory fakes of the accounts ports (issue 4, in progress)."""

from __future__ import annotations

from datetime import datetime, timedelta

from ordo.accounts import EmailTaken, User, UsernameTaken
from ordo.errors import Conflict
from ordo.security import Claims


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
    def __init__(self) -> None:
        self.failures: dict[str, int] = {}
        self.locked_until: dict[str, datetime] = {}

    def retry_after(self, username: str, now: datetime) -> int:
        until = self.locked_until.get(username.lower())
        return max(0, int((until - now).total_seconds())) if until else 0

    def failed(self, username: str, now: datetime) -> None:
        key = username.lower()
        self.failures[key] = self.failures.get(key, 0) + 1
        if self.failures[key] >= 5:
            lock = min(timedelta(seconds=30) * 2 ** (self.failures[key] - 5), timedelta(minutes=15))
            self.locked_until[key] = now + lock

    def succeeded(self, username: str) -> None:
        self.failures.pop(username.lower(), None)
        self.locked_until.pop(username.lower(), None)
