"""Cases on an injected clock: the timeline's boundaries, stored transitions, ownership."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from ordo.accounts import Role, User
from ordo.cases import (
    MAX_EARLY,
    CaseNotFound,
    CaseRequest,
    CaseStatus,
    CaseTick,
    TickTooEarly,
    Timeline,
    create_case,
    get_case,
    list_cases,
    observe,
    schedule_transitions,
    tick,
    wait_before_tick,
)
from ordo.review import simulate_review
from tests.fakes_accounts import make_user
from tests.fakes_cases import InMemoryCaseTable, RecordingCaseTimer

T0 = datetime(2026, 11, 21, 12, 0, 0, 123000, tzinfo=UTC)
MS = timedelta(milliseconds=1)
ALICE, BOB = make_user("alice"), make_user("bob")
ADMIN = make_user("root", role=Role.ADMIN)
TIMELINE = Timeline(time_scale=1.0)


def new_case(
    table: InMemoryCaseTable,
    *,
    owner: str = ALICE.id,
    at: datetime = T0,
    body: dict[str, object] | None = None,
) -> str:
    request = CaseRequest.model_validate(body or {})
    return create_case(table, request, owner=owner, now=at, timeline=TIMELINE).case_id


@pytest.mark.parametrize(
    ("after", "status"),
    [
        (timedelta(0), CaseStatus.SUBMITTED),
        (timedelta(seconds=10) - MS, CaseStatus.SUBMITTED),
        (timedelta(seconds=10), CaseStatus.PROCESSING),
        (timedelta(seconds=30) - MS, CaseStatus.PROCESSING),
        (timedelta(seconds=30), CaseStatus.COMPLETE),
        (timedelta(days=3), CaseStatus.COMPLETE),
    ],
)
def test_the_timeline_boundaries(after: timedelta, status: CaseStatus) -> None:
    table = InMemoryCaseTable()
    case_id = new_case(table)
    view = get_case(table, ALICE, case_id, T0 + after, TIMELINE)
    assert view.status is status
    assert (view.summary is not None) == (status is not CaseStatus.SUBMITTED)
    assert bool(view.steps) == (status is CaseStatus.COMPLETE)
    assert view.is_complete == (status is CaseStatus.COMPLETE)


def test_the_time_scale_shrinks_the_timeline() -> None:
    fast = Timeline(time_scale=0.01)
    assert fast.status_at(T0, T0 + timedelta(milliseconds=99)) is CaseStatus.SUBMITTED
    assert fast.status_at(T0, T0 + timedelta(milliseconds=100)) is CaseStatus.PROCESSING
    assert fast.status_at(T0, T0 + timedelta(milliseconds=300)) is CaseStatus.COMPLETE


def test_each_transition_is_stored_with_its_time() -> None:
    table = InMemoryCaseTable()
    case_id = new_case(table)
    get_case(table, ALICE, case_id, T0 + timedelta(seconds=12), TIMELINE)
    stored = table.cases[case_id]
    assert stored.status is CaseStatus.PROCESSING
    assert stored.summary
    assert stored.processing_at == stored.updated_at == T0 + timedelta(seconds=10)
    assert stored.completed_at is None

    get_case(table, ALICE, case_id, T0 + timedelta(seconds=31), TIMELINE)
    stored = table.cases[case_id]
    assert (stored.status, stored.is_complete) == (CaseStatus.COMPLETE, True)
    assert stored.completed_at == stored.updated_at == T0 + timedelta(seconds=30)
    assert stored.steps


def test_a_reader_never_sees_a_case_go_back() -> None:
    table = InMemoryCaseTable()
    case_id = new_case(table)
    seen = get_case(table, ALICE, case_id, T0 + timedelta(seconds=10), TIMELINE)
    # A reader whose clock lags behind the one that stored the transition.
    lagging = get_case(table, ALICE, case_id, T0 + timedelta(seconds=9), TIMELINE)
    assert lagging.status is seen.status is CaseStatus.PROCESSING
    assert lagging.updated_at == seen.updated_at


def test_updated_at_never_goes_backwards() -> None:
    table = InMemoryCaseTable()
    case_id = new_case(table)
    stamps = [
        get_case(table, ALICE, case_id, T0 + timedelta(seconds=s), TIMELINE).updated_at
        for s in (1, 11, 5, 31, 20, 60)
    ]
    assert stamps == sorted(stamps)


def test_reading_a_case_that_is_already_current_writes_nothing() -> None:
    table = InMemoryCaseTable()
    case_id = new_case(table)
    get_case(table, ALICE, case_id, T0 + timedelta(seconds=31), TIMELINE)
    writes = table.writes
    get_case(table, ALICE, case_id, T0 + timedelta(seconds=40), TIMELINE)
    assert table.writes == writes


def test_a_stale_copy_loses_the_race_and_reads_what_won() -> None:
    table = InMemoryCaseTable()
    case_id = new_case(table)
    stale = table.cases[case_id]
    observe(table, stale, T0 + timedelta(seconds=31), TIMELINE)  # another reader got there
    result = observe(table, stale, T0 + timedelta(seconds=12), TIMELINE)
    assert result.status is CaseStatus.COMPLETE


def test_the_timer_stores_transitions_without_any_reader() -> None:
    table, timer = InMemoryCaseTable(), RecordingCaseTimer()
    case_id = new_case(table)
    schedule_transitions(timer, table.cases[case_id], T0, TIMELINE)
    assert timer.scheduled == [(case_id, [T0 + timedelta(seconds=10), T0 + timedelta(seconds=30)])]
    for due in timer.scheduled[0][1]:
        tick(table, case_id, due, TIMELINE)
    assert table.cases[case_id].status is CaseStatus.COMPLETE
    assert tick(table, "case_" + "0" * 32, T0, TIMELINE) is None


def test_the_review_is_deterministic_for_a_given_input() -> None:
    body: dict[str, object] = {
        "procedure_name": "Knee Arthroscopy",
        "cpt_codes": ["29881"],
        "notes": "left knee",
    }
    first, second = InMemoryCaseTable(), InMemoryCaseTable()
    views = [
        get_case(t, ALICE, new_case(t, body=body), T0 + timedelta(seconds=30), TIMELINE)
        for t in (first, second)
    ]
    assert views[0].model_dump(exclude={"case_id"}) == views[1].model_dump(exclude={"case_id"})
    other = simulate_review("Knee Arthroscopy", ["29881"], "right knee")
    assert other != simulate_review("Knee Arthroscopy", ["29881"], "left knee")


def test_another_users_case_is_not_found_and_an_admin_sees_it() -> None:
    table = InMemoryCaseTable()
    case_id = new_case(table)
    with pytest.raises(CaseNotFound):
        get_case(table, BOB, case_id, T0, TIMELINE)
    assert get_case(table, ADMIN, case_id, T0, TIMELINE).case_id == case_id


@pytest.mark.parametrize(
    "case_id", ["", "case_", "case_" + "0" * 31, "CASE_" + "0" * 32, "x" * 3000]
)
def test_malformed_ids_are_not_found(case_id: str) -> None:
    with pytest.raises(CaseNotFound) as raised:
        get_case(InMemoryCaseTable(), ADMIN, case_id, T0, TIMELINE)
    assert raised.value.detail == "Case not found"


def test_listing_is_newest_first_per_owner_and_filters_by_status() -> None:
    table = InMemoryCaseTable()
    ages = {"old": 40, "mid": 20, "new": 5}  # seconds before now
    now = T0 + timedelta(minutes=1)
    ids = {name: new_case(table, at=now - timedelta(seconds=age)) for name, age in ages.items()}
    new_case(table, owner=BOB.id, at=now)

    def listed(viewer: User, status: CaseStatus | None = None) -> list[str]:
        page = list_cases(
            table,
            viewer,
            status=status,
            limit=10,
            cursor=None,
            now=now,
            timeline=TIMELINE,
        )
        return [item.case_id for item in page.items]

    assert listed(ALICE) == [ids["new"], ids["mid"], ids["old"]]
    assert listed(ALICE, CaseStatus.SUBMITTED) == [ids["new"]]
    assert listed(ALICE, CaseStatus.PROCESSING) == [ids["mid"]]
    assert listed(ALICE, CaseStatus.COMPLETE) == [ids["old"]]
    assert len(listed(ADMIN)) == 4
    assert table.cases[ids["old"]].status is CaseStatus.COMPLETE  # listing stored it


def test_listing_pages_with_a_cursor() -> None:
    table = InMemoryCaseTable()
    ids = [new_case(table, at=T0 + timedelta(seconds=n)) for n in range(5)]
    now, seen, cursor = T0 + timedelta(seconds=5), [], None
    while True:
        page = list_cases(
            table, ALICE, status=None, limit=2, cursor=cursor, now=now, timeline=TIMELINE
        )
        seen += [item.case_id for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ids[::-1]


@pytest.mark.parametrize(
    "body",
    [
        {"cpt_codes": ["6449"]},
        {"cpt_codes": ["64490x"]},
        {"cpt_codes": ["64490"] * 51},
        {"procedure_name": ""},
        {"procedure_name": "x" * 201},
        {"notes": "x" * 10_001},
        {"unknown": 1},
    ],
)
def test_case_requests_are_validated(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CaseRequest.model_validate(body)


def test_an_empty_request_gets_the_default_procedure() -> None:
    request = CaseRequest()
    assert request.procedure_name == "Facet Joint Injection"
    assert request.cpt_codes[0] == "64490"


def test_a_timer_message_a_moment_early_waits_and_one_far_too_early_is_refused() -> None:
    message = CaseTick(case_id="case_" + "0" * 32, due=T0)
    assert wait_before_tick(message, T0 + MS) == 0
    assert wait_before_tick(message, T0) == 0
    assert wait_before_tick(message, T0 - MAX_EARLY) == MAX_EARLY.total_seconds()
    with pytest.raises(TickTooEarly):
        wait_before_tick(message, T0 - MAX_EARLY - MS)
