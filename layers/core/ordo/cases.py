"""Cases: a simulated review that moves submitted -> processing -> complete on a timeline.

A case is ``submitted`` for its first 10 s, ``processing`` (with a summary) from 10 s, and
``complete`` (with its steps) from 30 s, times multiplied by ``ORDO_TIME_SCALE``. Each
transition is stored on the item by whoever first finds it due: a reader, or the timer (a
delayed message) that fires at the transition time. Stored status only moves forward, guarded by
a condition on the status it moves from.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field

from ordo.errors import NotFound, StaleTransition
from ordo.observability import MetricUnit, logger, metrics
from ordo.review import Step, simulate_review
from ordo.security import Viewer, visible

CASE_ID_PATTERN = re.compile(r"^case_[0-9a-f]{32}$")
PROCESSING_AFTER = timedelta(seconds=10)
COMPLETE_AFTER = timedelta(seconds=30)
DEFAULT_PROCEDURE = "Facet Joint Injection"
DEFAULT_CPT_CODES = ("64490", "64491", "64492", "64493", "64494", "64495")
MAX_PAGE = 100


class CaseStatus(StrEnum):
    SUBMITTED = "submitted"
    PROCESSING = "processing"
    COMPLETE = "complete"

    @property
    def rank(self) -> int:
        return list(CaseStatus).index(self)


class CaseNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Case not found")


def new_case_id() -> str:
    return f"case_{secrets.token_hex(16)}"


def is_case_id(value: str) -> bool:
    return CASE_ID_PATTERN.fullmatch(value) is not None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def to_millis(moment: datetime) -> int:
    return (moment - _EPOCH) // _MILLISECOND


def from_millis(millis: int) -> datetime:
    return _EPOCH + millis * _MILLISECOND


CptCode = Annotated[str, Field(pattern=r"^[0-9]{4}[0-9A-Z]$", description="e.g. 64490 or 0213T")]


class CaseRequest(BaseModel):
    """``POST /cases`` body; every field is optional."""

    model_config = ConfigDict(extra="forbid")

    procedure_name: str = Field(default=DEFAULT_PROCEDURE, min_length=1, max_length=200)
    cpt_codes: list[CptCode] = Field(default=list(DEFAULT_CPT_CODES), max_length=50)
    notes: str = Field(default="", max_length=10_000, description="Free-form clinical notes.")


class Case(BaseModel):
    """The stored case. Times are kept to the millisecond, the timeline's resolution."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    owner: str
    status: CaseStatus = CaseStatus.SUBMITTED
    procedure_name: str
    cpt_codes: list[str]
    notes: str = ""
    summary: str | None = None
    is_met: bool = False
    is_complete: bool = False
    steps: list[Step] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    processing_at: datetime | None = None
    completed_at: datetime | None = None


class CaseCreated(BaseModel):
    case_id: str
    status: CaseStatus
    created_at: datetime


class CaseView(BaseModel):
    """The format of ``assets/cases/response-*.json``, plus ``created_at`` and ``updated_at``."""

    case_id: str
    status: CaseStatus
    procedure_name: str
    cpt_codes: list[str]
    summary: str | None
    is_met: bool
    is_complete: bool
    steps: list[Step]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, case: Case) -> CaseView:
        return cls.model_validate(case.model_dump(exclude={"owner", "notes"}))


class CasePage(BaseModel):
    items: list[CaseView]
    next_cursor: str | None


@dataclass(frozen=True)
class Timeline:
    """When a case is due to move on, with every duration multiplied by the time scale."""

    time_scale: float = 1.0

    def processing_at(self, created: datetime) -> datetime:
        return created + PROCESSING_AFTER * self.time_scale

    def complete_at(self, created: datetime) -> datetime:
        return created + COMPLETE_AFTER * self.time_scale

    def status_at(self, created: datetime, now: datetime) -> CaseStatus:
        if now >= self.complete_at(created):
            return CaseStatus.COMPLETE
        if now >= self.processing_at(created):
            return CaseStatus.PROCESSING
        return CaseStatus.SUBMITTED

    def created_between(
        self, status: CaseStatus, now: datetime
    ) -> tuple[datetime | None, datetime | None]:
        """The creation times (inclusive bounds, None = open) of cases in ``status`` at ``now``."""
        millisecond = _MILLISECOND
        became_processing = now - PROCESSING_AFTER * self.time_scale
        became_complete = now - COMPLETE_AFTER * self.time_scale
        if status is CaseStatus.SUBMITTED:
            return became_processing + millisecond, None
        if status is CaseStatus.PROCESSING:
            return became_complete + millisecond, became_processing
        return None, became_complete


def advanced(case: Case, status: CaseStatus, timeline: Timeline) -> Case:
    """``case`` as it is once it has reached ``status``: review content and transition times."""
    review = simulate_review(case.procedure_name, case.cpt_codes, case.notes)
    processing_at = timeline.processing_at(case.created_at)
    changes: dict[str, object] = {
        "status": status,
        "summary": review.summary,
        "processing_at": processing_at,
        "updated_at": processing_at,
    }
    if status is CaseStatus.COMPLETE:
        completed_at = timeline.complete_at(case.created_at)
        changes |= {
            "steps": review.steps,
            "is_met": review.is_met,
            "is_complete": True,
            "completed_at": completed_at,
            "updated_at": completed_at,
        }
    return case.model_copy(update=changes)


# --- ports ------------------------------------------------------------------------------------


class CaseTable(Protocol):
    def create(self, case: Case) -> None: ...

    def get(self, case_id: str) -> Case | None: ...

    def advance(self, before: Case, after: Case) -> None:
        """Store ``after`` if the stored status is still ``before.status``; else
        ``StaleTransition``."""
        ...

    def page(
        self,
        owner: str | None,
        created_from: datetime | None,
        created_to: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Case], str | None]:
        """Newest first; ``owner=None`` lists every owner's cases."""
        ...


class CaseTimer(Protocol):
    def schedule(self, case_id: str, due: list[datetime], now: datetime) -> None:
        """Ask to be told about ``case_id`` at each of ``due``."""
        ...


# --- use cases --------------------------------------------------------------------------------


def create_case(
    table: CaseTable,
    request: CaseRequest,
    *,
    owner: str,
    now: datetime,
    timeline: Timeline,
) -> Case:
    created = from_millis(to_millis(now))
    case = Case(
        case_id=new_case_id(),
        owner=owner,
        procedure_name=request.procedure_name,
        cpt_codes=request.cpt_codes,
        notes=request.notes,
        created_at=created,
        updated_at=created,
    )
    table.create(case)
    return case


def open_case(
    table: CaseTable,
    timer: CaseTimer,
    request: CaseRequest,
    *,
    owner: str,
    now: datetime,
    timeline: Timeline,
) -> Case:
    """Store the case, then ask the timer for its transitions. If the timer is unreachable the
    case still stands: readers move it on, the timer only saves them the write."""
    case = create_case(table, request, owner=owner, now=now, timeline=timeline)
    try:
        schedule_transitions(timer, case, now, timeline)
    except Exception:
        logger.exception("case timer unavailable", case_id=case.case_id)
        metrics.add_metric(name="CaseTimerFailures", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="CasesCreated", unit=MetricUnit.Count, value=1)
    return case


def schedule_transitions(timer: CaseTimer, case: Case, now: datetime, timeline: Timeline) -> None:
    due = [timeline.processing_at(case.created_at), timeline.complete_at(case.created_at)]
    timer.schedule(case.case_id, due, now)


def observe(table: CaseTable, case: Case, now: datetime, timeline: Timeline) -> Case:
    """The case as of ``now``, storing any transition that has come due and is not stored yet."""
    for _ in range(3):
        due = timeline.status_at(case.created_at, now)
        if due.rank <= case.status.rank:
            return case
        after = advanced(case, due, timeline)
        try:
            table.advance(case, after)
        except StaleTransition:
            fresh = table.get(case.case_id)
            if fresh is None:
                raise CaseNotFound() from None
            case = fresh
            continue
        return after
    return case


def _find(table: CaseTable, viewer: Viewer, case_id: str) -> Case:
    return visible(viewer, table.get(case_id) if is_case_id(case_id) else None, CaseNotFound)


def get_case(
    table: CaseTable, viewer: Viewer, case_id: str, now: datetime, timeline: Timeline
) -> CaseView:
    return CaseView.of(observe(table, _find(table, viewer, case_id), now, timeline))


def tick(table: CaseTable, case_id: str, now: datetime, timeline: Timeline) -> Case | None:
    """The timer fired for ``case_id``: store what is due. None if the case is gone."""
    case = table.get(case_id) if is_case_id(case_id) else None
    return observe(table, case, now, timeline) if case else None


# SQS delays are whole seconds and clocks differ a little: a timer message may come this early.
MAX_EARLY = timedelta(seconds=2)


class CaseTick(BaseModel):
    """The case timer's message: store what is due on ``case_id`` at ``due``."""

    case_id: str
    due: datetime


class TickTooEarly(Exception):
    """A timer message more than ``MAX_EARLY`` ahead of its time: left for a retry."""


def wait_before_tick(message: CaseTick, now: datetime) -> float:
    """Seconds to wait until ``message`` is due (0 once it is); ``TickTooEarly`` if it came
    more than ``MAX_EARLY`` ahead."""
    early = message.due - now
    if early > MAX_EARLY:
        raise TickTooEarly(f"{message.case_id} is due in {early.total_seconds():.1f} s")
    return max(early.total_seconds(), 0.0)


class Lister(Viewer, Protocol):
    @property
    def id(self) -> str: ...

    @property
    def is_admin(self) -> bool: ...


def list_cases(
    table: CaseTable,
    viewer: Lister,
    *,
    status: CaseStatus | None,
    limit: int,
    cursor: str | None,
    now: datetime,
    timeline: Timeline,
) -> CasePage:
    """The viewer's cases (an admin's: everyone's), newest first. A status filter is a range of
    creation times, because the timeline decides the status: one index query, no scan."""
    created_from, created_to = (None, None)
    if status is not None:
        created_from, created_to = timeline.created_between(status, now)
    owner = None if viewer.is_admin else viewer.id
    cases, next_cursor = table.page(owner, created_from, created_to, limit, cursor)
    return CasePage(
        items=[CaseView.of(observe(table, case, now, timeline)) for case in cases],
        next_cursor=next_cursor,
    )
