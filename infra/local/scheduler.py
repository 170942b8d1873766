"""The local cloud's scheduler: fires the template's schedules on the local clock.

Fire times follow the :class:`LocalClock`, so advancing it fires them. :meth:`Scheduler.tick`
takes the time to fire up to, so a test drives it without threads or sleeps; :meth:`run` (a
daemon thread of the local cloud) ticks with the clock's time and sleeps until the next one.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from infra.local.invoke import Invoker, Outcome
from infra.local.schedule_expressions import TICK, At, ScheduleExpression, parse
from infra.local.schedule_rules import ScheduledRule, rules_of, scheduled_event, stamp
from infra.local.stack import ACCOUNT

if TYPE_CHECKING:
    from infra.local.clock import LocalClock
    from infra.local.stack import Stack


@dataclass
class _Entry:
    rule: ScheduledRule
    expression: ScheduleExpression
    due: datetime | None = None


class Scheduler:
    """Fires the template's enabled schedules on the local clock.

    EventBridge does not backfill: when the clock jumps past several fire times at once, a
    rule fires once, for the latest of them. Each firing invokes its function asynchronously
    (on a thread of its own, as EventBridge's Event invocation would), without retries.
    A rate's first firing is one period after the scheduler starts (or at a Scheduler
    ``StartDate``).
    """

    def __init__(
        self,
        rules: Iterable[ScheduledRule],
        invoker: Invoker,
        clock: LocalClock,
        *,
        region: str,
        account: str = ACCOUNT,
        log: Callable[[str], None] | logging.Logger | None = None,
    ) -> None:
        self.rules = list(rules)
        self.invoker = invoker
        self.clock = clock
        self.region = region
        self.account = account
        self.started = clock.now()
        self.fired: list[tuple[str, datetime]] = []
        logger = log if log is not None else logging.getLogger("ordo.local")
        self._log: Callable[[str], None] = (
            logger.info if isinstance(logger, logging.Logger) else logger
        )
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []
        for rule in self.rules:
            if rule.enabled:
                try:
                    expression = parse(
                        rule.expression, anchor=rule.start or self.started, timezone=rule.timezone
                    )
                except ValueError as error:
                    raise ValueError(f"{rule.logical_id}: {error}") from None
                if rule.source == "aws.events" and isinstance(expression, At):
                    raise ValueError(f"{rule.logical_id}: at() is only for EventBridge Scheduler")
                try:
                    self.event(rule, self.started)
                except ValueError as error:
                    raise ValueError(f"{rule.logical_id}: Input is not JSON: {error}") from None
                entry = _Entry(rule, expression)
                entry.due = self._next(entry, self.started)
                self._entries.append(entry)

    @classmethod
    def from_stack(
        cls,
        stack: Stack,
        invoker: Invoker,
        clock: LocalClock,
        log: Callable[[str], None] | logging.Logger | None = None,
    ) -> Scheduler:
        return cls(rules_of(stack), invoker, clock, region=stack.region, log=log)

    def next_due(self) -> datetime | None:
        """The earliest pending fire time of any rule."""
        with self._lock:
            return min((e.due for e in self._entries if e.due is not None), default=None)

    def run(self, stop: threading.Event) -> None:
        """Fire rules as the clock reaches them until ``stop`` is set (for a daemon thread)."""
        while not stop.is_set():
            self.tick(self.clock.now())
            due = self.next_due()
            limit = self.clock.time() + 60.0
            # To a fixed deadline, so an advance made since the tick still wakes it.
            self.clock.sleep_until(limit if due is None else min(due.timestamp(), limit), stop)

    def tick(self, now: datetime) -> list[tuple[str, datetime]]:
        """Fire every rule due at ``now``; returns the (rule, scheduled time) fired."""
        fired: list[tuple[str, datetime]] = []
        with self._lock:
            for entry in self._entries:
                if entry.due is None or entry.due > now:
                    continue
                until = min(now, entry.rule.end) if entry.rule.end else now
                when = entry.expression.latest(entry.due, until) or entry.due
                entry.due = self._next(entry, when)
                fired.append((entry.rule.logical_id, when))
                self.fired.append((entry.rule.logical_id, when))
                self._dispatch(entry.rule, when)
        return fired

    @staticmethod
    def _next(entry: _Entry, after: datetime) -> datetime | None:
        start, end = entry.rule.start, entry.rule.end
        when = entry.expression.next_after(
            start - TICK if start is not None and start > after else after
        )
        return None if when is None or (end is not None and when > end) else when

    def event(self, rule: ScheduledRule, when: datetime) -> dict[str, Any]:
        """What the rule's target receives for a firing at ``when``."""
        if rule.input is not None:
            text = rule.input
            if rule.source == "aws.scheduler":
                context = {
                    "schedule-arn": rule.arn,
                    "scheduled-time": stamp(when),
                    "execution-id": uuid.uuid4().hex[:16],
                    "attempt-number": "1",
                }
                for key, value in context.items():
                    text = text.replace(f"<aws.scheduler.{key}>", value)
            return json.loads(text)  # type: ignore[no-any-return]
        event = scheduled_event(rule.arn, self.region, self.account, when)
        if rule.source == "aws.scheduler":
            event |= {"source": "aws.scheduler", "detail": "{}"}
        return event

    def _dispatch(self, rule: ScheduledRule, when: datetime) -> None:
        self._log(
            f"schedule {rule.logical_id} ({rule.expression}) {stamp(when)} -> {rule.function}"
        )
        event = self.event(rule, when)
        thread = threading.Thread(
            target=self._invoke, args=(rule, event), name=f"schedule-{rule.logical_id}", daemon=True
        )
        thread.start()

    def _invoke(self, rule: ScheduledRule, event: dict[str, Any]) -> None:
        try:
            result = self.invoker.invoke(rule.function, event)
        except Exception as error:
            self._log(f"schedule {rule.logical_id}: {rule.function} failed to run: {error!r}")
            return
        if result.outcome is not Outcome.OK:
            detail = f": {result.error}" if result.error else ""
            self._log(f"schedule {rule.logical_id}: {rule.function} {result.outcome}{detail}")
