"""In-memory fakes of the cases ports; ``tests/integration/test_cases_storage.py`` holds the
DynamoDB adapter to the same contract."""

from __future__ import annotations

from datetime import datetime

from ordo.cases import Case, to_millis
from ordo.errors import StaleTransition


def _order(case: Case) -> str:
    return f"{to_millis(case.created_at):013d}#{case.case_id}"


class InMemoryCaseTable:
    def __init__(self) -> None:
        self.cases: dict[str, Case] = {}
        self.writes = 0

    def create(self, case: Case) -> None:
        if case.case_id in self.cases:
            raise StaleTransition(case.case_id)
        self.cases[case.case_id] = case
        self.writes += 1

    def get(self, case_id: str) -> Case | None:
        return self.cases.get(case_id)

    def advance(self, before: Case, after: Case) -> None:
        stored = self.cases.get(before.case_id)
        if stored is None or stored.status is not before.status:
            raise StaleTransition(before.case_id)
        self.cases[after.case_id] = after
        self.writes += 1

    def page(
        self,
        owner: str | None,
        created_from: datetime | None,
        created_to: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Case], str | None]:
        found = sorted(
            (
                case
                for case in self.cases.values()
                if (owner is None or case.owner == owner)
                and (created_from is None or case.created_at >= created_from)
                and (created_to is None or case.created_at <= created_to)
                and (cursor is None or _order(case) < cursor)
            ),
            key=_order,
            reverse=True,
        )
        page = found[:limit]
        return page, _order(page[-1]) if len(found) > limit else None


class RecordingCaseTimer:
    def __init__(self, fail: bool = False) -> None:
        self.scheduled: list[tuple[str, list[datetime]]] = []
        self.fail = fail

    def schedule(self, case_id: str, due: list[datetime], now: datetime) -> None:
        if self.fail:
            raise ConnectionError("queue unreachable")
        self.scheduled.append((case_id, due))
