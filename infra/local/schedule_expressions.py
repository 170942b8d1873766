"""EventBridge schedule expressions: ``rate()``, ``cron()`` and Scheduler's ``at()``.

Pure: parse an expression, then ask when it fires next (``next_after``) or last in a window
(``latest``). No clock, no threads, no template (``infra.local.schedule_rules`` reads the
template's schedules, ``infra.local.scheduler`` fires them).
"""

from __future__ import annotations

import calendar
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TICK = timedelta(microseconds=1)  # the smallest step: "strictly after" as "at or after"
_MINUTE = timedelta(minutes=1)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no time zone; schedules need an aware datetime")
    return moment


class ScheduleExpression(ABC):
    """A parsed schedule expression: when it fires."""

    text: str

    @abstractmethod
    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after ``moment`` (UTC), or None if it never fires again."""

    def latest(self, since: datetime, until: datetime) -> datetime | None:
        """The last fire time in ``[since, until]``, or None if there is none."""
        first = self.next_after(since - TICK)
        if first is None or first > until:
            return None
        window = _MINUTE
        found = first
        while until - window > first:
            probe = self.next_after(until - window)
            if probe is not None and probe <= until:
                found = probe
                break
            window *= 2
        while (following := self.next_after(found)) is not None and following <= until:
            found = following
        return found


# --- rate -------------------------------------------------------------------------------

_RATE = re.compile(r"rate\((\d+) ([a-z]+)\)")
_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


@dataclass(frozen=True)
class Rate(ScheduleExpression):
    """``rate(N unit)``: fires at ``anchor + k * period`` for every k >= 0."""

    text: str
    period: timedelta
    anchor: datetime = EPOCH

    def next_after(self, moment: datetime) -> datetime | None:
        moment = _aware(moment)
        if moment < self.anchor:
            return self.anchor
        return self.anchor + ((moment - self.anchor) // self.period + 1) * self.period

    def latest(self, since: datetime, until: datetime) -> datetime | None:
        if until < self.anchor:
            return None
        last = self.anchor + ((until - self.anchor) // self.period) * self.period
        return last if last >= since else None


def _parse_rate(text: str, anchor: datetime) -> Rate:
    match = _RATE.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r}: a rate is rate(<value> <unit>), e.g. rate(5 minutes)")
    value, unit = int(match.group(1)), match.group(2)
    singular = unit.removesuffix("s")
    if singular not in _UNITS:
        raise ValueError(f"{text!r}: the unit must be minute(s), hour(s) or day(s)")
    if value < 1:
        raise ValueError(f"{text!r}: the value must be a positive integer")
    if value == 1 and unit != singular:
        raise ValueError(f"{text!r}: a value of 1 takes the singular unit ({singular})")
    if value > 1 and unit == singular:
        raise ValueError(f"{text!r}: a value above 1 takes the plural unit ({singular}s)")
    return Rate(text, value * _UNITS[singular], _aware(anchor))


# --- cron -------------------------------------------------------------------------------

_MONTHS = {name.upper(): number for number, name in enumerate(calendar.month_abbr) if name}
_WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: Mapping[str, int] = field(default_factory=dict)
    steps: bool = True
    wraps: bool = True


_MINUTES = _Field("minutes", 0, 59)
_HOURS = _Field("hours", 0, 23)
_DAYS_OF_MONTH = _Field("day-of-month", 1, 31)
_MONTHS_FIELD = _Field("month", 1, 12, _MONTHS)
_DAYS_OF_WEEK = _Field("day-of-week", 1, 7, _WEEKDAYS, steps=False)
_YEARS = _Field("year", 1970, 2199, wraps=False)


def _value(token: str, spec: _Field) -> int:
    if token in spec.names:
        return spec.names[token]
    if not token.isdigit():
        raise ValueError(f"{spec.name}: {token!r} is not a valid value")
    value = int(token)
    if not spec.low <= value <= spec.high:
        raise ValueError(f"{spec.name}: {value} is outside {spec.low}-{spec.high}")
    return value


def _values(text: str, spec: _Field) -> frozenset[int]:
    """Values of a field made of ``*``, numbers, names, ``a-b`` ranges, ``/`` steps and lists."""
    values: set[int] = set()
    for item in text.split(","):
        body, slash, step_text = item.partition("/")
        if slash and not spec.steps:
            raise ValueError(f"{spec.name}: / is not allowed here")
        if slash and (not step_text.isdigit() or int(step_text) == 0):
            raise ValueError(f"{spec.name}: {item!r} needs a positive step")
        step = int(step_text) if slash else 1
        if body == "*":
            start, end = spec.low, spec.high
        elif "-" in body:
            first, last = body.split("-", 1)
            start, end = _value(first, spec), _value(last, spec)
        else:
            start = _value(body, spec)
            end = spec.high if slash else start
        if start <= end:
            values.update(range(start, end + 1, step))
        elif spec.wraps:
            span = [*range(start, spec.high + 1), *range(spec.low, end + 1)]
            values.update(span[::step])
        else:
            raise ValueError(f"{spec.name}: the range {body!r} runs backwards")
    return frozenset(values)


def _weekday(year: int, month: int, day: int) -> int:
    """Day of the week as cron numbers it: 1 = SUN ... 7 = SAT."""
    return (calendar.weekday(year, month, day) + 1) % 7 + 1


@dataclass(frozen=True)
class _Days:
    """The day-of-month or day-of-week field, as the days of one month it selects."""

    kind: Literal[
        "any", "set", "weekdays", "last", "last-weekday", "nearest-weekday", "last-of", "nth"
    ]
    values: frozenset[int] = frozenset()
    number: int = 0
    nth: int = 0

    def of_month(self, year: int, month: int) -> list[int]:
        length = calendar.monthrange(year, month)[1]
        days = range(1, length + 1)
        if self.kind == "set":
            return [d for d in days if d in self.values]
        if self.kind == "weekdays":
            return [d for d in days if _weekday(year, month, d) in self.values]
        if self.kind == "last":
            return [length]
        if self.kind in ("last-weekday", "nearest-weekday"):
            day = length if self.kind == "last-weekday" else self.number
            return [_nearest_weekday(year, month, day, length)] if day <= length else []
        matching = [d for d in days if _weekday(year, month, d) == self.number]
        return matching[-1:] if self.kind == "last-of" else matching[self.nth - 1 : self.nth]


def _nearest_weekday(year: int, month: int, day: int, length: int) -> int:
    """The weekday nearest ``day`` without leaving the month (the ``W`` wildcard)."""
    weekday = _weekday(year, month, day)
    if weekday == 7:
        return day - 1 if day > 1 else day + 2
    if weekday == 1:
        return day + 1 if day < length else day - 2
    return day


def _days_of_month(text: str) -> _Days:
    if text == "?":
        return _Days("any")
    if text == "L":
        return _Days("last")
    if text == "LW":
        return _Days("last-weekday")
    if match := re.fullmatch(r"(\d+)W", text):
        return _Days("nearest-weekday", number=_value(match.group(1), _DAYS_OF_MONTH))
    if "L" in text or "W" in text:
        raise ValueError(f"day-of-month: {text!r}; L, LW and nW stand alone")
    return _Days("set", _values(text, _DAYS_OF_MONTH))


def _days_of_week(text: str) -> _Days:
    if text == "?":
        return _Days("any")
    if text == "L":
        return _Days("weekdays", frozenset({7}))
    if match := re.fullmatch(r"(\w+)L", text):
        return _Days("last-of", number=_value(match.group(1), _DAYS_OF_WEEK))
    if match := re.fullmatch(r"(\w+)#(\d+)", text):
        nth = int(match.group(2))
        if not 1 <= nth <= 5:
            raise ValueError(f"day-of-week: {text!r}; the instance after # must be 1-5")
        return _Days("nth", number=_value(match.group(1), _DAYS_OF_WEEK), nth=nth)
    if "L" in text or "#" in text:
        raise ValueError(f"day-of-week: {text!r}; nL and n#k stand alone")
    return _Days("weekdays", _values(text, _DAYS_OF_WEEK))


@dataclass(frozen=True)
class Cron(ScheduleExpression):
    """``cron(Minutes Hours Day-of-month Month Day-of-week Year)``, evaluated in ``zone``."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: _Days
    months: tuple[int, ...]
    days_of_week: _Days
    years: tuple[int, ...]
    zone: tzinfo = UTC

    def days(self, year: int, month: int) -> list[int]:
        """The days of a month this expression fires on."""
        if self.days_of_month.kind == "any":
            return self.days_of_week.of_month(year, month)
        return self.days_of_month.of_month(year, month)

    def next_after(self, moment: datetime) -> datetime | None:
        moment = _aware(moment)
        local = moment.astimezone(self.zone).replace(tzinfo=None)
        start = local.replace(second=0, microsecond=0) + _MINUTE
        for year in self.years:
            if year < start.year:
                continue
            for month in self.months:
                if (year, month) < (start.year, start.month):
                    continue
                for day in self.days(year, month):
                    if (when := self._first_on(date(year, month, day), start, moment)) is not None:
                        return when
        return None

    def _first_on(self, day: date, start: datetime, moment: datetime) -> datetime | None:
        if day < start.date():
            return None
        for hour in self.hours:
            if day == start.date() and hour < start.hour:
                continue
            for minute in self.minutes:
                wall = datetime(day.year, day.month, day.day, hour, minute)
                if wall < start:
                    continue
                when = self._utc(wall)
                if when is not None and when > moment:
                    return when
        return None

    def _utc(self, wall: datetime) -> datetime | None:
        """The UTC instant of a wall time; None when a DST jump skips it (EventBridge skips it)."""
        when = wall.replace(tzinfo=self.zone).astimezone(UTC)
        if self.zone is not UTC and when.astimezone(self.zone).replace(tzinfo=None) != wall:
            return None
        return when


def _parse_cron(text: str, zone: tzinfo) -> Cron:
    match = re.fullmatch(r"cron\((.*)\)", text)
    if not match:
        raise ValueError(f"{text!r}: a cron expression is cron(<six fields>)")
    fields = match.group(1).upper().split()
    if len(fields) != 6:
        raise ValueError(
            f"{text!r}: cron needs six fields (minutes hours day-of-month month day-of-week"
            f" year), got {len(fields)}"
        )
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ValueError(f"{text!r}: exactly one of day-of-month and day-of-week must be ?")
    try:
        return Cron(
            text,
            tuple(sorted(_values(minutes, _MINUTES))),
            tuple(sorted(_values(hours, _HOURS))),
            _days_of_month(dom),
            tuple(sorted(_values(month, _MONTHS_FIELD))),
            _days_of_week(dow),
            tuple(sorted(_values(year, _YEARS))),
            zone,
        )
    except ValueError as error:
        raise ValueError(f"{text!r}: {error}") from None


# --- at ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class At(ScheduleExpression):
    """``at(yyyy-mm-ddThh:mm:ss)``: EventBridge Scheduler's one-time schedule."""

    text: str
    when: datetime

    def next_after(self, moment: datetime) -> datetime | None:
        return self.when if self.when > _aware(moment) else None


def _parse_at(text: str, zone: tzinfo) -> At:
    match = re.fullmatch(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)", text)
    if not match:
        raise ValueError(f"{text!r}: a one-time schedule is at(yyyy-mm-ddThh:mm:ss)")
    try:
        wall = datetime.fromisoformat(match.group(1))
    except ValueError as error:
        raise ValueError(f"{text!r}: {error}") from None
    return At(text, wall.replace(tzinfo=zone).astimezone(UTC))


def parse(
    expression: str, *, anchor: datetime = EPOCH, timezone: str | None = None
) -> ScheduleExpression:
    """Parse an EventBridge ``rate()``, ``cron()`` or Scheduler ``at()`` expression.

    ``anchor`` is a rate's first fire time; ``timezone`` (an IANA name, Scheduler's
    ``ScheduleExpressionTimezone``) is where cron and at are read; UTC when omitted.
    """
    text = expression.strip()
    try:
        zone: tzinfo = ZoneInfo(timezone) if timezone and timezone != "UTC" else UTC
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{timezone!r} is not a known time zone") from None
    if text.startswith("rate("):
        return _parse_rate(text, anchor)
    if text.startswith("cron("):
        return _parse_cron(text, zone)
    if text.startswith("at("):
        return _parse_at(text, zone)
    raise ValueError(f"{expression!r}: a schedule is rate(...), cron(...) or at(...)")
