"""The local cloud's scheduler and the schedules it reads from a template.

Firing is driven by :meth:`Scheduler.tick` with an explicit time: no thread runs the scheduler
unless a test is about ``run`` itself. Invocations are asynchronous (a thread per firing, as
EventBridge invokes), so a test waits for them with ``eventually``; what fired is what ``tick``
returned, so nothing else can arrive later.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from infra.local.clock import LocalClock
from infra.local.invoke import Invocation, Outcome
from infra.local.schedule_rules import ScheduledRule, rules_of
from infra.local.scheduler import Scheduler
from infra.local.stack import ACCOUNT, Stack
from tests.waiting import eventually


class FakeInvoker:
    """Records invocations; answers with ``outcome``."""

    def __init__(self, outcome: Outcome = Outcome.OK) -> None:
        self.outcome = outcome
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Invocation:
        with self._lock:
            self.calls.append((logical_id, event))
        error = "boom" if self.outcome is Outcome.ERROR else None
        return Invocation(self.outcome, error=error)


def sam(path: Path, functions: dict[str, dict[str, Any]]) -> Stack:
    """A stack of functions with the given ``Events``, through the real SAM transform."""
    resources = {
        name: {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "CodeUri": "src",
                "Handler": "app.handler",
                "Runtime": "python3.12",
                **extra,
            },
        }
        for name, extra in functions.items()
    }
    template = {"Transform": "AWS::Serverless-2016-10-31", "Resources": resources}
    file = path / "template.yaml"
    file.write_text(json.dumps(template))
    return Stack.load(path=file)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return sam(
        tmp_path_factory.mktemp("sam"),
        {
            "Tick": {
                "AutoPublishAlias": "live",
                "Events": {
                    "Every": {
                        "Type": "Schedule",
                        "Properties": {"Schedule": "rate(15 minutes)", "Enabled": True},
                    },
                    "Quiet": {
                        "Type": "Schedule",
                        "Properties": {"Schedule": "cron(0 10 * * ? *)", "State": "DISABLED"},
                    },
                    "Noon": {
                        "Type": "ScheduleV2",
                        "Properties": {
                            "ScheduleExpression": "cron(0 12 * * ? *)",
                            "ScheduleExpressionTimezone": "Europe/Paris",
                            "Input": '{"at": "<aws.scheduler.scheduled-time>"}',
                        },
                    },
                },
            },
            "Plain": {
                "Events": {
                    "Hourly": {
                        "Type": "Schedule",
                        "Properties": {
                            "Schedule": "rate(1 hour)",
                            "Name": "plain-rule",
                            "Input": '{"a": 1}',
                        },
                    },
                    "Off": {
                        "Type": "Schedule",
                        "Properties": {"Schedule": "rate(1 minute)", "Enabled": False},
                    },
                    "Once": {
                        "Type": "ScheduleV2",
                        "Properties": {
                            "ScheduleExpression": "at(2026-12-01T10:00:00)",
                            "State": "DISABLED",
                        },
                    },
                },
            },
        },
    )


def test_rules_of_a_template(stack: Stack) -> None:
    rules = {rule.logical_id: rule for rule in rules_of(stack)}
    events = "arn:aws:events:us-east-1:123456789012:rule"
    scheduler = "arn:aws:scheduler:us-east-1:123456789012:schedule/default"
    assert rules == {
        "TickEvery": ScheduledRule(
            "TickEvery", "rate(15 minutes)", "Tick", True, f"{events}/ordo-TickEvery"
        ),
        "TickQuiet": ScheduledRule(
            "TickQuiet", "cron(0 10 * * ? *)", "Tick", False, f"{events}/ordo-TickQuiet"
        ),
        "TickNoon": ScheduledRule(
            "TickNoon",
            "cron(0 12 * * ? *)",
            "Tick",
            True,
            f"{scheduler}/TickNoon",
            source="aws.scheduler",
            input='{"at": "<aws.scheduler.scheduled-time>"}',
            timezone="Europe/Paris",
        ),
        "PlainHourly": ScheduledRule(
            "PlainHourly", "rate(1 hour)", "Plain", True, f"{events}/plain-rule", input='{"a": 1}'
        ),
        "PlainOff": ScheduledRule(
            "PlainOff", "rate(1 minute)", "Plain", False, f"{events}/ordo-PlainOff"
        ),
        "PlainOnce": ScheduledRule(
            "PlainOnce",
            "at(2026-12-01T10:00:00)",
            "Plain",
            False,
            f"{scheduler}/PlainOnce",
            source="aws.scheduler",
        ),
    }


def test_the_scheduler_lists_every_rule_and_schedules_the_enabled(stack: Stack) -> None:
    scheduler = Scheduler.from_stack(stack, FakeInvoker(), LocalClock(), log=lambda _: None)
    assert {rule.logical_id for rule in scheduler.rules} == {
        "TickEvery",
        "TickQuiet",
        "TickNoon",
        "PlainHourly",
        "PlainOff",
        "PlainOnce",
    }
    assert scheduler.next_due() == scheduler.started + timedelta(minutes=15)


def test_a_rule_fires_once_when_its_time_comes(tmp_path: Path) -> None:
    stack = sam(
        tmp_path,
        {
            "Tick": {
                "Events": {
                    "Every": {"Type": "Schedule", "Properties": {"Schedule": "rate(15 minutes)"}},
                    "Off": {
                        "Type": "Schedule",
                        "Properties": {"Schedule": "rate(1 minute)", "Enabled": False},
                    },
                }
            }
        },
    )
    clock, invoker = LocalClock(), FakeInvoker()
    lines: list[str] = []
    scheduler = Scheduler.from_stack(stack, invoker, clock, log=lines.append)
    assert scheduler.tick(scheduler.started + timedelta(minutes=14)) == []
    assert invoker.calls == []

    due = scheduler.started + timedelta(minutes=15)
    assert scheduler.tick(scheduler.started + timedelta(minutes=16)) == [("TickEvery", due)]
    assert eventually(lambda: len(invoker.calls) >= 1)
    assert scheduler.fired == [("TickEvery", due)]
    [(function, event)] = invoker.calls
    assert function == "Tick"
    uuid.UUID(event.pop("id"), version=4)
    assert event == {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": due.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [f"arn:aws:events:us-east-1:{ACCOUNT}:rule/ordo-TickEvery"],
        "detail": {},
    }
    assert any("TickEvery" in line and "Tick" in line for line in lines)


def test_a_jump_past_several_fire_times_fires_once_for_the_latest() -> None:
    rule = ScheduledRule("Every", "rate(15 minutes)", "Tick", True, "arn:rule/every")
    clock, invoker = LocalClock(), FakeInvoker()
    scheduler = Scheduler([rule], invoker, clock, region="us-east-1", log=lambda _: None)
    latest = scheduler.started + timedelta(minutes=60)
    assert scheduler.tick(scheduler.started + timedelta(minutes=61)) == [("Every", latest)]
    assert eventually(lambda: len(invoker.calls) >= 1)
    assert scheduler.fired == [("Every", latest)]
    assert len(invoker.calls) == 1
    assert scheduler.next_due() == latest + timedelta(minutes=15)

    scheduler.tick(scheduler.started + timedelta(minutes=76))
    assert eventually(lambda: len(invoker.calls) == 2)
    assert scheduler.fired[-1] == ("Every", latest + timedelta(minutes=15))


# --- run: the local cloud's scheduler thread ------------------------------------------------


@pytest.fixture
def running() -> Iterator[Callable[[Scheduler], threading.Thread]]:
    """Runs schedulers on daemon threads and stops them after the test."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(scheduler: Scheduler) -> threading.Thread:
        thread = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
        thread.start()
        threads.append(thread)
        return thread

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=2)
        assert not thread.is_alive()


def test_run_fires_a_rule_when_the_clock_is_advanced(
    running: Callable[[Scheduler], threading.Thread],
) -> None:
    rule = ScheduledRule("Every", "rate(15 minutes)", "Tick", True, "arn:rule/every")
    clock, invoker = LocalClock(), FakeInvoker()
    scheduler = Scheduler([rule], invoker, clock, region="us-east-1", log=lambda _: None)
    thread = running(scheduler)
    assert eventually(lambda: clock.sleeps_begun(thread.name) >= 1)
    clock.advance(16 * 60)
    assert eventually(lambda: len(invoker.calls) == 1)
    assert scheduler.fired == [("Every", scheduler.started + timedelta(minutes=15))]


def test_a_disabled_rule_never_fires() -> None:
    rule = ScheduledRule("Off", "rate(1 minute)", "Tick", False, "arn:rule/off")
    clock, invoker = LocalClock(), FakeInvoker()
    scheduler = Scheduler([rule], invoker, clock, region="us-east-1", log=lambda _: None)
    assert scheduler.next_due() is None
    assert scheduler.tick(scheduler.started + timedelta(hours=1)) == []
    assert scheduler.fired == []
    assert scheduler.rules == [rule]


def test_nothing_fires_before_its_time() -> None:
    rule = ScheduledRule("Every", "rate(5 minutes)", "Tick", True, "arn:rule/every")
    clock, invoker = LocalClock(), FakeInvoker()
    scheduler = Scheduler([rule], invoker, clock, region="us-east-1", log=lambda _: None)
    due = scheduler.started + timedelta(minutes=5)
    assert scheduler.tick(due - timedelta(seconds=1)) == []
    assert scheduler.tick(due) == [("Every", due)]
    assert scheduler.tick(due) == []


def test_a_rule_input_replaces_the_event() -> None:
    rule = ScheduledRule("Hourly", "rate(1 hour)", "Plain", True, "arn:rule/h", input='{"a": 1}')
    clock, invoker = LocalClock(), FakeInvoker()
    scheduler = Scheduler([rule], invoker, clock, region="us-east-1", log=lambda _: None)
    assert len(scheduler.tick(scheduler.started + timedelta(hours=1))) == 1
    assert eventually(lambda: invoker.calls == [("Plain", {"a": 1})])


def test_a_scheduler_schedule_in_its_time_zone(stack: Stack) -> None:
    clock, invoker = LocalClock(), FakeInvoker()
    noon = [rule for rule in rules_of(stack) if rule.logical_id == "TickNoon"]
    scheduler = Scheduler(noon, invoker, clock, region="us-east-1", log=lambda _: None)
    due = scheduler.next_due()
    assert due is not None
    assert due.astimezone(ZoneInfo("Europe/Paris")).hour == 12
    assert scheduler.tick(due + timedelta(seconds=1)) == [("TickNoon", due)]
    assert eventually(
        lambda: invoker.calls == [("Tick", {"at": due.strftime("%Y-%m-%dT%H:%M:%SZ")})]
    )


def test_a_scheduler_schedule_without_input_sends_its_default_event() -> None:
    arn = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/Nightly"
    rule = ScheduledRule("Nightly", "rate(1 day)", "Tick", True, arn, source="aws.scheduler")
    clock, invoker = LocalClock(), FakeInvoker()
    scheduler = Scheduler([rule], invoker, clock, region="us-east-1", log=lambda _: None)
    scheduler.tick(scheduler.started + timedelta(days=1))
    assert eventually(lambda: len(invoker.calls) == 1)
    [(_, event)] = invoker.calls
    assert event["source"] == "aws.scheduler"
    assert event["detail-type"] == "Scheduled Event"
    assert event["resources"] == [arn]
    assert event["detail"] == "{}"


def test_start_and_end_dates_bound_a_schedule() -> None:
    clock = LocalClock()
    start = clock.now().replace(microsecond=0) + timedelta(days=10)
    later = ScheduledRule(
        "Later", "rate(1 hour)", "Tick", True, "arn:s/later", "aws.scheduler", start=start
    )
    ended = ScheduledRule(
        "Ended",
        "rate(1 hour)",
        "Tick",
        True,
        "arn:s/ended",
        "aws.scheduler",
        end=clock.now() - timedelta(days=1),
    )
    scheduler = Scheduler([later, ended], FakeInvoker(), clock, region="r", log=lambda _: None)
    assert scheduler.next_due() == start
    now = scheduler.started + timedelta(days=10, minutes=90)
    assert scheduler.tick(now) == [("Later", start + timedelta(hours=1))]


def test_a_one_time_schedule_fires_once() -> None:
    clock = LocalClock()
    when = (clock.now() + timedelta(hours=2)).replace(microsecond=0)
    expression = f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})"
    rule = ScheduledRule("Once", expression, "Tick", True, "arn:s/once", "aws.scheduler")
    invoker = FakeInvoker()
    scheduler = Scheduler([rule], invoker, clock, region="us-east-1", log=lambda _: None)
    assert scheduler.tick(scheduler.started + timedelta(hours=3)) == [("Once", when)]
    assert scheduler.tick(scheduler.started + timedelta(hours=6)) == []
    assert scheduler.next_due() is None


def test_failed_invocations_are_logged() -> None:
    rule = ScheduledRule("Every", "rate(1 minute)", "Tick", True, "arn:rule/every")
    clock, invoker = LocalClock(), FakeInvoker(Outcome.ERROR)
    lines: list[str] = []
    scheduler = Scheduler([rule], invoker, clock, region="us-east-1", log=lines.append)
    scheduler.tick(scheduler.started + timedelta(minutes=1))
    assert eventually(lambda: any("error: boom" in line for line in lines))


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (ScheduledRule("Bad", "rate(5 minute)", "Tick", True, "arn"), "Bad: .*plural"),
        (ScheduledRule("Bad", "cron(0 10 * * *)", "Tick", True, "arn"), "Bad: .*six fields"),
        (ScheduledRule("Bad", "at(2030-01-01T00:00:00)", "Tick", True, "arn"), "only for"),
        (ScheduledRule("Bad", "rate(1 day)", "Tick", True, "arn", input="{"), "not JSON"),
    ],
)
def test_bad_rules_are_rejected_up_front(rule: ScheduledRule, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Scheduler([rule], FakeInvoker(), LocalClock(), region="us-east-1")


def test_run_stops_promptly_without_rules(
    running: Callable[[Scheduler], threading.Thread],
) -> None:
    clock = LocalClock()
    thread = running(Scheduler([], FakeInvoker(), clock, region="us-east-1"))
    # Once it sleeps on the clock, the fixture stops it, and joins it
    assert eventually(lambda: clock.sleeps_begun(thread.name) >= 1)
