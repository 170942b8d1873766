"""The sign-in counters' store: the DynamoDB adapter on moto and the fake, held to one contract."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ordo.accounts import Attempts, LoginGuard
from ordo.storage.accounts import DynamoLoginGuard
from tests.fakes_accounts import InMemoryLoginGuard
from tests.harness import InProcessStack


@pytest.fixture(params=["dynamodb", "fake"])
def guard(request: pytest.FixtureRequest) -> LoginGuard:
    if request.param == "fake":
        return InMemoryLoginGuard()
    cloud: InProcessStack = request.getfixturevalue("anonymous_cloud")
    return DynamoLoginGuard(cloud.dynamodb, cloud.stack.physical["JobsTable"]["Ref"])


FIRST = Attempts(count=1, window_ends=2_000_000_000, locked_until=0, version=1)
SECOND = Attempts(count=2, window_ends=2_000_000_100, locked_until=2_000_000_030, version=2)


def test_counters_that_do_not_exist_are_absent(guard: LoginGuard) -> None:
    assert guard.read(["a", "b"]) == {}


def test_a_write_stores_every_counter_and_a_read_returns_them(guard: LoginGuard) -> None:
    assert guard.write({"a": (None, FIRST), "b": (None, SECOND)})
    assert guard.read(["a", "b", "c"]) == {"a": FIRST, "b": SECOND}


@pytest.mark.parametrize(
    "stale",
    [
        lambda: {"a": (None, FIRST)},  # it exists now
        lambda: {"a": (SECOND, SECOND)},  # another version
    ],
)
def test_a_write_on_a_stale_read_changes_nothing(
    guard: LoginGuard, stale: Callable[[], dict[str, tuple[Attempts | None, Attempts]]]
) -> None:
    assert guard.write({"a": (None, FIRST)})
    assert not guard.write(stale() | {"b": (None, SECOND)})  # all or nothing
    assert guard.read(["a", "b"]) == {"a": FIRST}


def test_a_write_on_what_was_read_succeeds_once(guard: LoginGuard) -> None:
    assert guard.write({"a": (None, FIRST)})
    assert guard.write({"a": (FIRST, SECOND)})
    assert not guard.write({"a": (FIRST, SECOND)})


def test_refund_takes_one_back_never_below_zero_and_forget_removes(guard: LoginGuard) -> None:
    assert guard.write({"a": (None, FIRST), "b": (None, SECOND)})
    guard.refund("a")
    guard.refund("a")
    guard.refund("missing")
    refunded = guard.read(["a"])["a"]
    assert (refunded.count, refunded.version) == (0, FIRST.version + 1)
    guard.forget(["b", "missing"])
    assert list(guard.read(["a", "b"])) == ["a"]
