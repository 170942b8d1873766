"""``GET /jobs``'s use case on the in-memory fakes: the caller's own jobs, newest first, paged,
each as ``/status/{job_id}`` shows it with its kind, times and place in the lane."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ordo.accounts import Role
from ordo.errors import InvalidInput
from ordo.jobs import (
    Job,
    JobStatus,
    MyJobPage,
    OwnerJobPage,
    accept,
    list_my_jobs,
    new_job_id,
)
from ordo.registry import KINDS
from tests.fakes import InMemoryJobQueue, InMemoryJobTable
from tests.fakes_accounts import make_user

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ALICE = make_user("alice")
BOB = make_user("bob")
ADMIN = make_user("root", role=Role.ADMIN)


class CountingTable(InMemoryJobTable):
    """Counts the queries a listing makes: its pages, and one per queue position."""

    def __init__(self) -> None:
        super().__init__()
        self.position_queries = 0
        self.page_queries = 0

    def count_pending_before(self, seq: int) -> int:
        self.position_queries += 1
        return super().count_pending_before(seq)

    def by_owner(self, owner: str, *, limit: int, cursor: str | None = None) -> OwnerJobPage:
        self.page_queries += 1
        return super().by_owner(owner, limit=limit, cursor=cursor)


class FakeLane:
    """The in-memory fakes, and jobs accepted onto them at chosen moments."""

    def __init__(self) -> None:
        self.table = CountingTable()
        self.queue = InMemoryJobQueue()

    def submit(
        self, seconds: float, *, owner: str = ALICE.id, kind: str = "reverse", data: str = "abc"
    ) -> Job:
        at = NOW + timedelta(seconds=seconds)
        job = Job(
            job_id=new_job_id(), owner=owner, kind=kind, data=data, created_at=at, updated_at=at
        )
        accept(self.table, self.queue, job, at, max_pending=1000, retention_days=30)
        return job

    def start(self, job: Job, seconds: float = 100) -> Job:
        return self.table.claim(self.table.jobs[job.job_id], NOW + timedelta(seconds=seconds))

    def finish(
        self, job: Job, *, result: str | None = None, error: str | None = None, seconds: float = 101
    ) -> Job:
        running = self.start(job, seconds - 1)
        status = JobStatus.COMPLETED if result is not None else JobStatus.FAILED
        at = NOW + timedelta(seconds=seconds)
        return self.table.finish(running, status, at, result=result, error=error)

    def page(self, owner: str = ALICE.id, limit: int = 20, cursor: str | None = None) -> MyJobPage:
        return list_my_jobs(self.table, owner, KINDS, limit=limit, cursor=cursor)

    def ids(self, owner: str = ALICE.id, limit: int = 20) -> list[str]:
        """Every job the owner's listing shows, following its cursors to the end."""
        found: list[str] = []
        cursor: str | None = None
        while True:
            page = self.page(owner, limit, cursor)
            found += [item.job_id for item in page.items]
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor


@pytest.fixture
def lane() -> FakeLane:
    return FakeLane()


def test_the_owners_jobs_newest_first_in_pages(lane: FakeLane) -> None:
    jobs = [lane.submit(n) for n in range(5)]
    first = lane.page(limit=2)
    assert [item.job_id for item in first.items] == [jobs[4].job_id, jobs[3].job_id]
    assert first.next_cursor
    second = lane.page(limit=2, cursor=first.next_cursor)
    assert [item.job_id for item in second.items] == [jobs[2].job_id, jobs[1].job_id]
    third = lane.page(limit=2, cursor=second.next_cursor)
    assert ([item.job_id for item in third.items], third.next_cursor) == ([jobs[0].job_id], None)


def test_jobs_accepted_at_the_same_moment_keep_one_order_across_pages(lane: FakeLane) -> None:
    jobs = [lane.submit(0) for _ in range(5)]
    expected = sorted((job.job_id for job in jobs), reverse=True)
    assert lane.ids(limit=2) == expected
    assert lane.ids(limit=5) == expected


def test_each_owner_sees_only_their_own_jobs_an_admin_included(lane: FakeLane) -> None:
    alices = [lane.submit(n, owner=ALICE.id) for n in range(3)]
    bobs = [lane.submit(n + 0.5, owner=BOB.id) for n in range(2)]
    admins = [lane.submit(9, owner=ADMIN.id)]
    assert lane.ids(ALICE.id) == [job.job_id for job in reversed(alices)]
    assert lane.ids(BOB.id) == [job.job_id for job in reversed(bobs)]
    assert lane.ids(ADMIN.id) == [admins[0].job_id]
    assert lane.page(make_user("carol").id).model_dump() == {"items": [], "next_cursor": None}


def test_another_owners_cursor_or_a_made_up_one_is_refused(lane: FakeLane) -> None:
    for n in range(3):
        lane.submit(n, owner=ALICE.id)
        lane.submit(n, owner=BOB.id)
    alices_cursor = lane.page(ALICE.id, limit=1).next_cursor
    assert alices_cursor
    with pytest.raises(InvalidInput, match="cursor is not valid"):
        lane.page(BOB.id, cursor=alices_cursor)
    with pytest.raises(InvalidInput, match="cursor is not valid"):
        lane.page(ALICE.id, cursor="not-a-cursor")


def test_each_job_shows_its_state_kind_times_position_result_and_error(lane: FakeLane) -> None:
    done = lane.finish(lane.submit(0), result="cba", seconds=101)
    invoice = lane.finish(
        lane.submit(1, kind="invoice", data="{}"), result='{"total": "9.50"}', seconds=103
    )
    failed = lane.finish(lane.submit(2), error="bad input", seconds=105)
    running = lane.start(lane.submit(3), seconds=106)
    waiting = [lane.submit(4), lane.submit(5)]
    views = {item.job_id: item for item in lane.page().items}

    assert views[done.job_id].model_dump() == {
        "job_id": done.job_id,
        "status": JobStatus.COMPLETED,
        "progress": 100,
        "result": "cba",
        "error": None,
        "created_at": NOW,
        "updated_at": NOW + timedelta(seconds=101),
        "kind": "reverse",
        "started_at": NOW + timedelta(seconds=100),
        "finished_at": NOW + timedelta(seconds=101),
        "queue_position": None,
    }
    assert views[invoice.job_id].result == {"total": "9.50"}  # as the kind shows it
    assert views[invoice.job_id].kind == "invoice"
    assert (views[failed.job_id].status, views[failed.job_id].error) == (
        JobStatus.FAILED,
        "bad input",
    )
    assert views[failed.job_id].result is None
    assert (views[running.job_id].status, views[running.job_id].queue_position) == (
        JobStatus.PROCESSING,
        None,
    )
    assert views[running.job_id].started_at == NOW + timedelta(seconds=106)
    assert views[running.job_id].finished_at is None
    assert [views[job.job_id].queue_position for job in waiting] == [0, 1]
    assert all(views[job.job_id].result is None for job in waiting)


def test_a_pending_job_counts_the_jobs_of_every_owner_ahead_of_it(lane: FakeLane) -> None:
    lane.submit(0, owner=BOB.id)
    lane.submit(1, owner=BOB.id)
    mine = lane.submit(2, owner=ALICE.id)
    (view,) = lane.page().items
    assert (view.job_id, view.queue_position) == (mine.job_id, 2)


def test_only_pending_jobs_cost_a_queue_position_query(lane: FakeLane) -> None:
    lane.finish(lane.submit(0), result="cba")
    lane.start(lane.submit(1))
    for n in range(3):
        lane.submit(2 + n)
    lane.table.position_queries = 0
    page = lane.page()
    assert len(page.items) == 5
    assert lane.table.position_queries == 3
    assert lane.table.page_queries == 1


def test_a_page_of_large_results_ends_early_and_the_next_resumes_after_it(lane: FakeLane) -> None:
    big = "x" * 4_000
    jobs = [lane.finish(lane.submit(n), result=big, seconds=200 + n) for n in range(5)]
    newest_first = [job.job_id for job in reversed(jobs)]

    first = list_my_jobs(lane.table, ALICE.id, KINDS, limit=5, max_bytes=9_000)

    assert [item.job_id for item in first.items] == newest_first[:2]
    assert first.next_cursor
    rest: list[str] = []
    cursor: str | None = first.next_cursor
    while cursor:
        page = list_my_jobs(lane.table, ALICE.id, KINDS, limit=5, cursor=cursor, max_bytes=9_000)
        assert 1 <= len(page.items) <= 2
        rest += [item.job_id for item in page.items]
        cursor = page.next_cursor
    assert rest == newest_first[2:]


def test_a_job_larger_than_the_budget_still_makes_a_page_of_its_own(lane: FakeLane) -> None:
    jobs = [lane.finish(lane.submit(n), result="x" * 4_000, seconds=200 + n) for n in range(2)]
    page = list_my_jobs(lane.table, ALICE.id, KINDS, limit=5, max_bytes=100)
    assert [item.job_id for item in page.items] == [jobs[1].job_id]
    assert page.next_cursor
