"""Sign-in and registration limits: the counters' rules, and who an attack slows down."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from ordo import accounts
from ordo.accounts import AttemptLimit, Attempts, RegisterRequest, SignInLimits, admit, charge
from ordo.errors import TooManyRequests
from tests.fakes_accounts import InMemoryLoginGuard, InMemoryUserTable

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
EPOCH = int(NOW.timestamp())
LIMITS = SignInLimits()
ATTACKER, VICTIM = "203.0.113.66", "198.51.100.7"


def test_free_attempts_then_a_lock_that_doubles_up_to_the_longest() -> None:
    limit = AttemptLimit(free=3, first_lock=timedelta(seconds=10), longest=timedelta(seconds=35))
    record: Attempts | None = None
    locks = []
    now = EPOCH
    for _ in range(6):
        record, wait = admit(record, limit, now)
        assert wait == 0
        locks.append(record.locked_until - now if record.locked_until else 0)
        now = max(now, record.locked_until)
    assert locks == [0, 0, 10, 20, 35, 35]


def test_a_locked_counter_says_how_long_to_wait_and_stays_as_it_was() -> None:
    limit = AttemptLimit(free=1)
    record, _ = admit(None, limit, EPOCH)
    again, wait = admit(record, limit, EPOCH + 10)
    assert (again, wait) == (record, 20)


def test_a_window_of_quiet_forgets_the_count() -> None:
    limit = AttemptLimit(free=2, window=timedelta(minutes=15))
    record, _ = admit(None, limit, EPOCH)
    later = EPOCH + 15 * 60
    fresh, wait = admit(record, limit, later)
    assert wait == 0
    assert fresh.count == 1
    assert fresh.version == record.version + 1  # still a conditional write on what was read


def test_the_doubling_never_overflows() -> None:
    limit = AttemptLimit(free=1)
    record = Attempts(count=10_000, window_ends=EPOCH + 1, locked_until=0)
    after, _ = admit(record, limit, EPOCH)
    assert after.locked_until == EPOCH + 15 * 60


def charge_sign_in(guard: InMemoryLoginGuard, username: str, client: str, at: datetime) -> int:
    """0 if the attempt may go on to the password check, else the seconds to wait."""
    try:
        accounts._charge_sign_in(guard, username, client, LIMITS, at)
    except TooManyRequests as refused:
        return refused.retry_after or -1
    return 0


def test_parallel_attempts_cannot_all_pass_one_check() -> None:
    guard = InMemoryLoginGuard()
    barrier = threading.Barrier(50)

    def attempt(_: int) -> int:
        barrier.wait(timeout=10)
        return charge_sign_in(guard, "alice", ATTACKER, NOW)

    with ThreadPoolExecutor(max_workers=50) as pool:
        waits = list(pool.map(attempt, range(50)))
    assert waits.count(0) == LIMITS.user_at_client.free
    assert -1 not in waits  # every refusal says when to come back


def test_one_attacker_locks_themself_out_not_the_owner() -> None:
    guard = InMemoryLoginGuard()
    at = NOW
    for _ in range(16):  # guessing as fast as the locks allow, for about an hour
        at += timedelta(seconds=charge_sign_in(guard, "alice", ATTACKER, at))
    charge_sign_in(guard, "alice", ATTACKER, at)
    assert charge_sign_in(guard, "alice", ATTACKER, at) == 15 * 60
    assert charge_sign_in(guard, "alice", VICTIM, at) == 0


def test_a_guess_from_many_addresses_slows_the_owner_far_less_than_the_attackers() -> None:
    guard = InMemoryLoginGuard()
    for bot in range(LIMITS.user.free):
        assert charge_sign_in(guard, "alice", f"10.0.{bot // 250}.{bot % 250}", NOW) == 0
    owner_wait = charge_sign_in(guard, "alice", VICTIM, NOW)
    assert 0 < owner_wait <= LIMITS.user.longest.total_seconds()

    for _ in range(LIMITS.user_at_client.free):  # one bot, over its own quota
        charge_sign_in(guard, "alice", ATTACKER, NOW + timedelta(hours=1))
    assert charge_sign_in(guard, "alice", ATTACKER, NOW + timedelta(hours=1)) == 30


def test_an_address_that_sprays_many_usernames_is_stopped() -> None:
    guard = InMemoryLoginGuard()
    waits = [charge_sign_in(guard, f"user{n}", ATTACKER, NOW) for n in range(LIMITS.client.free)]
    assert waits == [0] * LIMITS.client.free
    assert charge_sign_in(guard, "someone-else", ATTACKER, NOW) > 0
    assert charge_sign_in(guard, "someone-else", VICTIM, NOW) == 0


def test_a_sign_in_that_succeeds_starts_its_counters_over() -> None:
    guard = InMemoryLoginGuard()
    for _ in range(LIMITS.user_at_client.free - 1):
        charge_sign_in(guard, "alice", VICTIM, NOW)
    accounts._signed_in(guard, "alice", VICTIM)
    waits = [charge_sign_in(guard, "alice", VICTIM, NOW) for _ in range(4)]
    assert waits == [0, 0, 0, 0]
    assert guard.records[accounts.client_key(VICTIM)].count == 4 + 4 - 1  # one given back


def test_registration_counts_against_the_address() -> None:
    users, guard = InMemoryUserTable(), InMemoryLoginGuard()
    limits = SignInLimits(client=AttemptLimit(free=3))

    def register(n: int) -> None:
        request = RegisterRequest(
            email=f"u{n}@example.com", username=f"user{n}", password="Secret123"
        )
        accounts.register(users, guard, request, now=NOW, client=ATTACKER, limits=limits)

    for n in range(3):
        register(n)
    with pytest.raises(TooManyRequests) as refused:
        register(3)
    assert refused.value.retry_after == 30
    assert len(users.users) == 3


def test_a_busy_counter_answers_429_rather_than_admitting() -> None:
    class AlwaysRaced(InMemoryLoginGuard):
        def write(self, changes: object) -> bool:
            return False

    with pytest.raises(TooManyRequests) as refused:
        charge(AlwaysRaced(), {"k": AttemptLimit(free=5)}, NOW)
    assert refused.value.retry_after == 1
