"""Races on the DynamoDB adapters, against DynamoDB Local (AWS's own engine).

moto's in-process DynamoDB is not thread-safe for concurrent ``TransactWriteItems``, so these
run on the ``dynamodb_local`` server. Every thread has its own client, already connected, and
all of them fire at once from a barrier. Clients never retry: what a thread sees is what
DynamoDB answered, and anything but the domain error the adapter promises fails the test with
the raw error code and cancellation reasons.
"""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.exceptions import ClientError

from infra.local.dynamodb_local import DynamoDBLocal, create_table
from ordo import accounts
from ordo.accounts import (
    EmailTaken,
    LoginRequest,
    TokenPolicy,
    User,
    UsernameTaken,
    new_user_id,
)
from ordo.errors import StaleTransition, TooManyRequests, Unauthorized
from ordo.jobs import Job, JobStatus, PendingQuotaExceeded, new_job_id
from ordo.security import hash_password, verify_password
from ordo.storage.accounts import DynamoLoginGuard, DynamoRefreshTokens, DynamoUserTable
from ordo.storage.jobs import DynamoJobTable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from ordo.catalog import Product

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def table(dynamodb_local: DynamoDBLocal) -> Iterator[str]:
    """A fresh JobsTable, made from template.yaml, under a name no other test uses."""
    name = f"ordo-JobsTable-{secrets.token_hex(6)}"
    client = dynamodb_local.client()
    create_table(client, "JobsTable", name)
    yield name
    client.delete_table(TableName=name)


# --- racing --------------------------------------------------------------------------------


def race[T](
    server: DynamoDBLocal, threads: int, action: Callable[[int, DynamoDBClient], T]
) -> list[T | BaseException]:
    """Run ``action(i, client)`` on ``threads`` threads released together; each outcome."""
    clients = server.clients(threads)
    for client in clients:  # connect now, so the race is not decided by TCP handshakes
        client.list_tables(Limit=1)
    barrier = threading.Barrier(threads)

    def run(index: int) -> T | BaseException:
        barrier.wait(timeout=30)
        try:
            return action(index, clients[index])
        except Exception as error:
            return error

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(run, range(threads)))


def describe(outcome: object) -> str:
    """An outcome, with a ClientError's code and cancellation reasons spelled out."""
    if isinstance(outcome, ClientError):
        error = outcome.response.get("Error", {})
        reasons = [
            f"{reason.get('Code')}: {reason.get('Message', '')}".rstrip(": ")
            for reason in outcome.response.get("CancellationReasons", [])
        ]
        return (
            f"ClientError {error.get('Code')} ({outcome.operation_name}): "
            f"{error.get('Message')} CancellationReasons={reasons}"
        )
    if isinstance(outcome, BaseException):
        return f"{type(outcome).__name__}: {outcome}"
    return "ok"


def tally(outcomes: list[Any]) -> Counter[str]:
    return Counter(describe(outcome) for outcome in outcomes)


def items(client: DynamoDBClient, table: str, prefix: str) -> list[dict[str, Any]]:
    """Every item whose pk starts with ``prefix`` (a consistent scan)."""
    found: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(
        TableName=table,
        ConsistentRead=True,
        FilterExpression="begins_with(pk, :prefix)",
        ExpressionAttributeValues={":prefix": {"S": prefix}},
    ):
        found.extend(page["Items"])
    return found


# --- registration --------------------------------------------------------------------------


def user(username: str, email: str) -> User:
    return User(
        id=new_user_id(),
        email=email,
        username=username,
        password_hash="$argon2id$not-a-real-hash",
        created_at=NOW,
        updated_at=NOW,
    )


def test_concurrent_registrations_of_one_username_admit_exactly_one(
    dynamodb_local: DynamoDBLocal, table: str
) -> None:
    users = [user("alice", f"alice{i}@example.com") for i in range(16)]

    outcomes = race(
        dynamodb_local, 16, lambda i, client: DynamoUserTable(client, table).create(users[i])
    )

    winners = [users[i] for i, outcome in enumerate(outcomes) if outcome is None]
    assert len(winners) == 1, tally(outcomes)
    losers = [outcome for outcome in outcomes if outcome is not None]
    assert all(isinstance(outcome, UsernameTaken) for outcome in losers), tally(outcomes)
    check = dynamodb_local.client()
    claims = items(check, table, "USERNAME#")
    assert [(c["pk"]["S"], c["user_id"]["S"]) for c in claims] == [
        ("USERNAME#alice", winners[0].id)
    ]
    assert [u["pk"]["S"] for u in items(check, table, "USER#")] == [f"USER#{winners[0].id}"]
    # All or nothing: no loser left its email claim behind.
    assert [e["pk"]["S"] for e in items(check, table, "EMAIL#")] == [f"EMAIL#{winners[0].email}"]
    assert DynamoUserTable(check, table).find_by_username("alice") == winners[0]


def test_parallel_wrong_sign_ins_verify_at_most_five_passwords(
    dynamodb_local: DynamoDBLocal, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    DynamoUserTable(dynamodb_local.client(), table).create(
        user("alice", "alice@example.com").model_copy(
            update={"password_hash": hash_password("Secret123")}
        )
    )
    verified: list[bool] = []
    lock = threading.Lock()

    def counted(password_hash: str, password: str) -> bool:
        with lock:
            verified.append(True)
        return verify_password(password_hash, password)

    monkeypatch.setattr(accounts, "verify_password", counted)
    guess = LoginRequest(username="alice", password="Wrong1234")

    def sign_in(_: int, client: DynamoDBClient) -> object:
        return accounts.login(
            DynamoUserTable(client, table),
            DynamoRefreshTokens(client, table),
            DynamoLoginGuard(client, table),
            guess,
            policy=cast("TokenPolicy", None),  # never reached: every guess is wrong
            now=NOW,
            client="203.0.113.9",
        )

    outcomes = race(dynamodb_local, 50, sign_in)

    assert 1 <= len(verified) <= 5, tally(outcomes)
    refused = [o for o in outcomes if isinstance(o, TooManyRequests)]
    wrong = [o for o in outcomes if isinstance(o, Unauthorized)]
    assert (len(wrong), len(refused)) == (len(verified), 50 - len(verified)), tally(outcomes)
    assert all(o.retry_after and o.retry_after >= 1 for o in refused)


def test_concurrent_registrations_of_one_email_admit_exactly_one(
    dynamodb_local: DynamoDBLocal, table: str
) -> None:
    users = [user(f"user{i}", "shared@example.com") for i in range(16)]

    outcomes = race(
        dynamodb_local, 16, lambda i, client: DynamoUserTable(client, table).create(users[i])
    )

    winners = [users[i] for i, outcome in enumerate(outcomes) if outcome is None]
    assert len(winners) == 1, tally(outcomes)
    losers = [outcome for outcome in outcomes if outcome is not None]
    assert all(isinstance(outcome, EmailTaken) for outcome in losers), tally(outcomes)
    check = dynamodb_local.client()
    claims = items(check, table, "EMAIL#")
    assert [(c["pk"]["S"], c["user_id"]["S"]) for c in claims] == [
        ("EMAIL#shared@example.com", winners[0].id)
    ]
    assert [u["pk"]["S"] for u in items(check, table, "USER#")] == [f"USER#{winners[0].id}"]
    assert [n["pk"]["S"] for n in items(check, table, "USERNAME#")] == [
        f"USERNAME#{winners[0].username}"
    ]


# --- jobs ----------------------------------------------------------------------------------


def job(owner: str) -> Job:
    return Job(
        job_id=new_job_id(),
        owner=owner,
        kind="reverse",
        data="abc",
        created_at=datetime.now(UTC),
    )


def test_concurrent_submissions_stop_at_the_pending_quota(
    dynamodb_local: DynamoDBLocal, table: str
) -> None:
    owner = new_user_id()
    jobs = [job(owner) for _ in range(20)]

    outcomes = race(
        dynamodb_local, 20, lambda i, client: DynamoJobTable(client, table).create(jobs[i], 5)
    )

    assert outcomes.count(None) == 5, tally(outcomes)
    losers = [outcome for outcome in outcomes if outcome is not None]
    assert all(isinstance(outcome, PendingQuotaExceeded) for outcome in losers), tally(outcomes)
    check = dynamodb_local.client()
    assert DynamoJobTable(check, table).pending_count(owner) == 5
    stored = {item["pk"]["S"] for item in items(check, table, "JOB#")}
    assert stored == {f"JOB#{jobs[i].job_id}" for i, o in enumerate(outcomes) if o is None}


def test_concurrent_claims_of_one_job_admit_exactly_one(
    dynamodb_local: DynamoDBLocal, table: str
) -> None:
    owner = new_user_id()
    pending = job(owner)
    setup = DynamoJobTable(dynamodb_local.client(), table)
    setup.create(pending, 5)
    assert setup.pending_count(owner) == 1

    outcomes = race(
        dynamodb_local, 8, lambda _, client: DynamoJobTable(client, table).claim(pending, NOW)
    )

    claimed = [outcome for outcome in outcomes if isinstance(outcome, Job)]
    assert len(claimed) == 1, tally(outcomes)
    losers = [outcome for outcome in outcomes if not isinstance(outcome, Job)]
    assert all(isinstance(outcome, StaleTransition) for outcome in losers), tally(outcomes)
    assert setup.pending_count(owner) == 0
    stored = setup.get(pending.job_id)
    assert stored is not None
    assert (stored.status, stored.attempt, stored.queue_seq) == (JobStatus.PROCESSING, 1, None)
    assert stored == claimed[0]


# --- products --------------------------------------------------------------------------------


def _racer(i: int, **fields: Any) -> Product:
    """Product number ``i``: its own id, name and SKU unless ``fields`` say otherwise."""
    from ordo.catalog import Product

    values: dict[str, Any] = {
        "id": f"{i:032x}",
        "name": f"racer {i}",
        "description": "",
        "price": Decimal(i),
        "stock": 1,
        "category": f"c{i % 3}",
        "sku": f"RACE-{i}",
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Product(**(values | fields))


def test_concurrent_products_with_one_sku_admit_exactly_one(
    dynamodb_local: DynamoDBLocal, table: str
) -> None:
    from ordo.catalog import SkuTaken
    from ordo.storage.catalog import DynamoProductTable

    products = [
        _racer(
            i,
            price=Decimal("1.00"),
            category="",
            sku="RACE-1" if i % 2 else "race-1",  # one SKU, whatever its case
        )
        for i in range(12)
    ]

    outcomes = race(
        dynamodb_local, 12, lambda i, client: DynamoProductTable(client, table).create(products[i])
    )

    winners = [outcome for outcome in outcomes if outcome is None]
    assert len(winners) == 1, tally(outcomes)
    assert all(o is None or isinstance(o, SkuTaken) for o in outcomes), tally(outcomes)
    store = DynamoProductTable(dynamodb_local.client(), table)
    version, live = store.load()
    assert len(live) == 1
    assert version == 1  # only the one write that went through bumped it


def test_concurrent_catalog_writes_each_make_one_version_a_reader_catches_up_to(
    dynamodb_local: DynamoDBLocal, table: str
) -> None:
    from ordo.catalog import CatalogIndex, Listing, SortBy
    from ordo.storage.catalog import DynamoProductTable

    setup = DynamoProductTable(dynamodb_local.client(), table)
    existing = [_racer(i) for i in range(4)]
    for item in existing:
        setup.create(item)
    reader = CatalogIndex()
    reader.refresh(setup)

    def write(i: int, client: DynamoDBClient) -> None:
        admin = DynamoProductTable(client, table)
        if i < len(existing):  # half edit a product each, half add one
            before = existing[i]
            after = before.model_copy(update={"stock": 50 + i, "updated_at": NOW.replace(hour=13)})
            admin.replace(before, after)
        else:
            admin.create(_racer(i))

    outcomes = race(dynamodb_local, 8, write)

    assert outcomes == [None] * 8, tally(outcomes)
    assert setup.version() == 12  # each write made exactly one version
    assert [change.version for change in setup.changes(4, 12)] == list(range(5, 13))
    calls: list[str] = []
    reading = dynamodb_local.client()
    reading.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    reader.refresh(DynamoProductTable(reading, table))
    assert (calls, reader.version, reader.reloads) == (["GetItem", "Query"], 12, 1)
    full = CatalogIndex()
    full.refresh(setup)
    for by in SortBy:
        assert reader.select(Listing(sort_by=by, page_size=100)) == full.select(
            Listing(sort_by=by, page_size=100)
        )
    assert [reader.get(p.id).stock for p in existing] == [50, 51, 52, 53]
