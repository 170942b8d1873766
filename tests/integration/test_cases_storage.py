"""One contract, two implementations: the cases adapter on moto and the in-memory fake."""

from datetime import UTC, datetime, timedelta

import pytest

from ordo.cases import Case, CaseStatus, CaseTable, Timeline, advanced, new_case_id
from ordo.errors import StaleTransition
from ordo.storage.cases import DynamoCaseTable
from tests.fakes_cases import InMemoryCaseTable
from tests.harness import InProcessStack

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
OWNER, OTHER = "a" * 32, "b" * 32


@pytest.fixture(params=["dynamodb", "memory"])
def table(request: pytest.FixtureRequest) -> CaseTable:
    if request.param == "memory":
        return InMemoryCaseTable()
    cloud: InProcessStack = request.getfixturevalue("anonymous_cloud")
    return DynamoCaseTable(cloud.dynamodb, cloud.stack.physical["JobsTable"]["Ref"])


def new_case(table: CaseTable, seconds: int = 0, owner: str = OWNER) -> Case:
    at = T0 + timedelta(seconds=seconds)
    case = Case(
        case_id=new_case_id(),
        owner=owner,
        procedure_name="Facet Joint Injection",
        cpt_codes=["64490"],
        notes="ж 😀",
        created_at=at,
        updated_at=at,
    )
    table.create(case)
    return case


def test_a_complete_case_round_trips_every_field(table: CaseTable) -> None:
    case = new_case(table)
    done = advanced(case, CaseStatus.COMPLETE, Timeline())
    table.advance(case, done)
    assert table.get(case.case_id) == done


def test_advance_only_moves_from_the_status_it_saw(table: CaseTable) -> None:
    case = new_case(table)
    table.advance(case, advanced(case, CaseStatus.PROCESSING, Timeline()))
    with pytest.raises(StaleTransition):
        table.advance(case, advanced(case, CaseStatus.COMPLETE, Timeline()))
    stored = table.get(case.case_id)
    assert stored is not None
    assert stored.status is CaseStatus.PROCESSING


def test_pages_are_newest_first_per_owner_within_a_range(table: CaseTable) -> None:
    cases = [new_case(table, seconds) for seconds in range(5)]
    new_case(table, 2, owner=OTHER)
    mine, cursor = table.page(OWNER, None, None, 3, None)
    assert [c.case_id for c in mine] == [c.case_id for c in cases[4:1:-1]]
    rest, last = table.page(OWNER, None, None, 3, cursor)
    assert [c.case_id for c in rest] == [cases[1].case_id, cases[0].case_id]
    assert last is None

    ranged, _ = table.page(OWNER, T0 + timedelta(seconds=1), T0 + timedelta(seconds=3), 10, None)
    assert [c.case_id for c in ranged] == [c.case_id for c in cases[3:0:-1]]
    everyone, _ = table.page(None, None, None, 10, None)
    assert len(everyone) == 6


def test_a_cursor_past_the_range_ends_the_listing(table: CaseTable) -> None:
    for seconds in range(4):
        new_case(table, seconds)
    _, cursor = table.page(OWNER, None, None, 2, None)  # stops after the case at 2 s
    later, nothing = table.page(OWNER, T0 + timedelta(seconds=3), None, 2, cursor)
    assert (later, nothing) == ([], None)
