"""EventBridge schedule expressions, and the event a scheduled rule sends: pure, no clock."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from infra.local.schedule_expressions import At, Cron, Rate, parse
from infra.local.schedule_rules import scheduled_event

# 2026-11-18 is a Wednesday.
WEDNESDAY = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fires(expression: str, after: datetime = WEDNESDAY, count: int = 4) -> list[str]:
    """The next ``count`` fire times, as ``YYYY-MM-DD HH:MM`` (UTC)."""
    schedule = parse(expression)
    times: list[str] = []
    moment: datetime | None = after
    while moment is not None and len(times) < count:
        moment = schedule.next_after(moment)
        if moment is not None:
            times.append(moment.strftime("%Y-%m-%d %H:%M"))
    return times


# --- rate -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "period"),
    [
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(5 minutes)", timedelta(minutes=5)),
        ("rate(1 hour)", timedelta(hours=1)),
        ("rate(12 hours)", timedelta(hours=12)),
        ("rate(1 day)", timedelta(days=1)),
        ("rate(7 days)", timedelta(days=7)),
    ],
)
def test_rate_periods(expression: str, period: timedelta) -> None:
    schedule = parse(expression)
    assert isinstance(schedule, Rate)
    assert schedule.period == period
    assert schedule.text == expression


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("rate(1 minutes)", "singular"),
        ("rate(1 days)", "singular"),
        ("rate(5 minute)", "plural"),
        ("rate(2 hour)", "plural"),
        ("rate(0 minutes)", "positive"),
        ("rate(-1 minutes)", "rate(<value> <unit>)"),
        ("rate(1.5 hours)", "rate(<value> <unit>)"),
        ("rate(5 weeks)", "minute(s), hour(s) or day(s)"),
        ("rate(5 seconds)", "minute(s), hour(s) or day(s)"),
        ("rate(5)", "rate(<value> <unit>)"),
        ("rate()", "rate(<value> <unit>)"),
        ("rate(5 minutes", "rate(<value> <unit>)"),
        ("every 5 minutes", "rate(...), cron(...) or at(...)"),
        ("", "rate(...), cron(...) or at(...)"),
    ],
)
def test_bad_rates_are_rejected(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(expression)


def test_rate_fires_on_its_anchor_grid() -> None:
    anchor = at("2026-11-18T12:00:00")
    schedule = parse("rate(15 minutes)", anchor=anchor)
    assert schedule.next_after(anchor - timedelta(hours=3)) == anchor
    assert schedule.next_after(anchor) == at("2026-11-18T12:15:00")
    assert schedule.next_after(at("2026-11-18T12:14:59.999")) == at("2026-11-18T12:15:00")
    assert schedule.next_after(at("2026-11-18T12:15:00")) == at("2026-11-18T12:30:00")
    assert schedule.next_after(at("2026-11-19T12:00:01")) == at("2026-11-19T12:15:00")


def test_rate_without_anchor_is_aligned_to_the_epoch() -> None:
    assert fires("rate(15 minutes)", count=2) == ["2026-11-18 09:45", "2026-11-18 10:00"]
    assert fires("rate(1 day)", count=1) == ["2026-11-19 00:00"]


def test_rate_latest_in_a_window() -> None:
    anchor = at("2026-11-18T12:00:00")
    schedule = parse("rate(15 minutes)", anchor=anchor)
    assert schedule.latest(anchor, at("2026-11-18T13:07:00")) == at("2026-11-18T13:00:00")
    assert schedule.latest(anchor, anchor) == anchor
    assert schedule.latest(at("2026-11-18T12:01:00"), at("2026-11-18T12:14:00")) is None
    assert schedule.latest(anchor, anchor - timedelta(seconds=1)) is None


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="time zone"):
        parse("rate(5 minutes)").next_after(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="time zone"):
        parse("cron(0 10 * * ? *)").next_after(datetime(2026, 1, 1))


# --- cron: the EventBridge documentation's examples -----------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # 10:00 every day
        ("cron(0 10 * * ? *)", ["2026-11-18 10:00", "2026-11-19 10:00", "2026-11-20 10:00"]),
        # 12:15 every day
        ("cron(15 12 * * ? *)", ["2026-11-18 12:15", "2026-11-19 12:15", "2026-11-20 12:15"]),
        # 18:00 Monday to Friday
        (
            "cron(0 18 ? * MON-FRI *)",
            ["2026-11-18 18:00", "2026-11-19 18:00", "2026-11-20 18:00", "2026-11-23 18:00"],
        ),
        # 08:00 on the first day of every month
        ("cron(0 8 1 * ? *)", ["2026-12-01 08:00", "2027-01-01 08:00", "2027-02-01 08:00"]),
        # every 15 minutes
        ("cron(0/15 * * * ? *)", ["2026-11-18 09:45", "2026-11-18 10:00", "2026-11-18 10:15"]),
        # every 10 minutes, Monday to Friday
        (
            "cron(0/10 * ? * MON-FRI *)",
            ["2026-11-18 09:40", "2026-11-18 09:50", "2026-11-18 10:00"],
        ),
        # every 5 minutes, Monday to Friday, 08:00 to 17:55
        (
            "cron(0/5 8-17 ? * MON-FRI *)",
            ["2026-11-18 09:35", "2026-11-18 09:40", "2026-11-18 09:45"],
        ),
        # 09:00 on the first Monday of each month
        ("cron(0 9 ? * 2#1 *)", ["2026-12-07 09:00", "2027-01-04 09:00", "2027-02-01 09:00"]),
    ],
)
def test_documented_examples(expression: str, expected: list[str]) -> None:
    assert fires(expression, count=len(expected)) == expected


def test_documented_weekday_window_skips_evenings_and_weekends() -> None:
    friday_evening = at("2026-11-20T17:56:00")
    assert fires("cron(0/5 8-17 ? * MON-FRI *)", friday_evening, 2) == [
        "2026-11-23 08:00",
        "2026-11-23 08:05",
    ]
    assert fires("cron(0/10 * ? * MON-FRI *)", at("2026-11-20T23:55:00"), 1) == ["2026-11-23 00:00"]


# --- cron: fields and wildcards -------------------------------------------------------------


def test_next_after_is_strictly_after() -> None:
    noon = at("2026-11-18T12:00:00")
    schedule = parse("cron(0 12 * * ? *)")
    assert schedule.next_after(noon) == noon + timedelta(days=1)
    assert schedule.next_after(noon - timedelta(microseconds=1)) == noon
    assert schedule.next_after(noon - timedelta(seconds=59)) == noon


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(10,20,45 9 * * ? *)", ["2026-11-18 09:45", "2026-11-19 09:10", "2026-11-19 09:20"]),
        ("cron(5-20/5 10 * * ? *)", ["2026-11-18 10:05", "2026-11-18 10:10", "2026-11-18 10:15"]),
        ("cron(*/20 10 * * ? *)", ["2026-11-18 10:00", "2026-11-18 10:20", "2026-11-18 10:40"]),
        ("cron(0 22-1 * * ? *)", ["2026-11-18 22:00", "2026-11-18 23:00", "2026-11-19 00:00"]),
        ("cron(0 0 1,15 * ? *)", ["2026-12-01 00:00", "2026-12-15 00:00", "2027-01-01 00:00"]),
        ("cron(0 0 10/10 * ? *)", ["2026-11-20 00:00", "2026-11-30 00:00", "2026-12-10 00:00"]),
        ("cron(0 0 1 1/4 ? *)", ["2027-01-01 00:00", "2027-05-01 00:00", "2027-09-01 00:00"]),
        ("cron(0 0 1 FEB,AUG ? *)", ["2027-02-01 00:00", "2027-08-01 00:00", "2028-02-01 00:00"]),
        ("cron(0 0 1 NOV-JAN ? *)", ["2026-12-01 00:00", "2027-01-01 00:00", "2027-11-01 00:00"]),
        ("cron(0 12 ? * SAT,SUN *)", ["2026-11-21 12:00", "2026-11-22 12:00", "2026-11-28 12:00"]),
        ("cron(0 12 ? * SAT-SUN *)", ["2026-11-21 12:00", "2026-11-22 12:00", "2026-11-28 12:00"]),
        ("cron(0 12 ? * 1,7 *)", ["2026-11-21 12:00", "2026-11-22 12:00", "2026-11-28 12:00"]),
        ("cron(0 12 ? * * *)", ["2026-11-18 12:00", "2026-11-19 12:00", "2026-11-20 12:00"]),
        ("cron(30 6 ? * mon-fri *)", ["2026-11-19 06:30", "2026-11-20 06:30", "2026-11-23 06:30"]),
        ("cron(0 0 1 1 ? 2028/2)", ["2028-01-01 00:00", "2030-01-01 00:00", "2032-01-01 00:00"]),
    ],
)
def test_ranges_steps_lists_and_names(expression: str, expected: list[str]) -> None:
    assert fires(expression, count=len(expected)) == expected


def test_every_minute() -> None:
    assert fires("cron(* * * * ? *)", count=3) == [
        "2026-11-18 09:31",
        "2026-11-18 09:32",
        "2026-11-18 09:33",
    ]


def test_question_mark_in_either_day_field() -> None:
    assert fires("cron(0 0 * * ? *)", count=2) == fires("cron(0 0 ? * * *)", count=2)
    assert fires("cron(0 0 18 * ? *)", count=2) == ["2026-12-18 00:00", "2027-01-18 00:00"]


# --- cron: L, W and # -----------------------------------------------------------------------


def test_last_day_of_month_in_february() -> None:
    assert fires("cron(0 0 L * ? *)", at("2024-02-10T00:00:00"), 2) == [
        "2024-02-29 00:00",
        "2024-03-31 00:00",
    ]
    assert fires("cron(0 0 L * ? *)", at("2025-02-10T00:00:00"), 2) == [
        "2025-02-28 00:00",
        "2025-03-31 00:00",
    ]
    assert fires("cron(0 0 L 2 ? *)", at("2099-03-01T00:00:00"), 2) == [
        "2100-02-28 00:00",  # 2100 is not a leap year
        "2101-02-28 00:00",
    ]
    assert fires("cron(0 0 L 2 ? *)", at("2027-03-01T00:00:00"), 1) == ["2028-02-29 00:00"]


def test_nearest_weekday() -> None:
    # 2026-08-15 is a Saturday: the Friday before.
    assert fires("cron(0 9 15W * ? *)", at("2026-08-01T00:00:00"), 1) == ["2026-08-14 09:00"]
    # 2026-11-15 is a Sunday: the Monday after.
    assert fires("cron(0 9 15W * ? *)", at("2026-11-01T00:00:00"), 1) == ["2026-11-16 09:00"]
    # A weekday is its own nearest weekday (2026-12-15 is a Tuesday).
    assert fires("cron(0 9 15W * ? *)", at("2026-12-01T00:00:00"), 1) == ["2026-12-15 09:00"]
    # 2026-08-01 is a Saturday: not July 31st but Monday the 3rd.
    assert fires("cron(0 9 1W * ? *)", at("2026-07-31T12:00:00"), 1) == ["2026-08-03 09:00"]
    # 2026-05-31 is a Sunday: not June 1st but Friday the 29th.
    assert fires("cron(0 9 31W * ? *)", at("2026-05-01T00:00:00"), 1) == ["2026-05-29 09:00"]
    # No 31st in June: the month is skipped.
    assert fires("cron(0 9 31W * ? *)", at("2026-06-01T00:00:00"), 1) == ["2026-07-31 09:00"]


def test_last_weekday_of_month() -> None:
    assert fires("cron(0 0 LW * ? *)", at("2026-05-01T00:00:00"), 4) == [
        "2026-05-29 00:00",  # the 31st is a Sunday
        "2026-06-30 00:00",
        "2026-07-31 00:00",
        "2026-08-31 00:00",
    ]
    assert fires("cron(0 0 LW 2 ? *)", at("2026-01-01T00:00:00"), 1) == ["2026-02-27 00:00"]


def test_nth_weekday_of_month() -> None:
    # The third Friday.
    assert fires("cron(0 10 ? * 6#3 *)", count=3) == [
        "2026-11-20 10:00",
        "2026-12-18 10:00",
        "2027-01-15 10:00",
    ]
    assert fires("cron(0 10 ? * FRI#3 *)", count=3) == fires("cron(0 10 ? * 6#3 *)", count=3)
    # The second Tuesday.
    assert fires("cron(0 10 ? * 3#2 *)", count=2) == ["2026-12-08 10:00", "2027-01-12 10:00"]
    # A fifth Sunday exists only in some months.
    assert fires("cron(0 0 ? * 1#5 *)", count=3) == [
        "2026-11-29 00:00",
        "2027-01-31 00:00",
        "2027-05-30 00:00",
    ]


def test_last_weekday_of_a_kind() -> None:
    # The last Thursday.
    assert fires("cron(0 0 ? * 5L *)", count=3) == [
        "2026-11-26 00:00",
        "2026-12-31 00:00",
        "2027-01-28 00:00",
    ]
    assert fires("cron(0 0 ? * THUL *)", count=3) == fires("cron(0 0 ? * 5L *)", count=3)
    # L alone is the last day of the week: Saturday.
    assert fires("cron(0 0 ? * L *)", count=2) == ["2026-11-21 00:00", "2026-11-28 00:00"]


# --- cron: years --------------------------------------------------------------------------


def test_year_bounds() -> None:
    assert fires("cron(0 0 1 1 ? 2030)", count=3) == ["2030-01-01 00:00"]
    assert parse("cron(0 0 1 1 ? 2020-2025)").next_after(WEDNESDAY) is None
    assert fires("cron(0 0 31 12 ? 2199)", count=2) == ["2199-12-31 00:00"]
    assert fires("cron(59 23 31 12 ? *)", at("2199-12-31T23:59:00"), 1) == []
    assert fires("cron(0 0 1 1 ? 1970)", at("1969-06-01T00:00:00"), 1) == ["1970-01-01 00:00"]


def test_impossible_dates_end_quickly() -> None:
    started = time.perf_counter()
    assert parse("cron(0 0 30 2 ? *)").next_after(WEDNESDAY) is None
    assert parse("cron(0 0 31 4,6,9,11 ? *)").next_after(WEDNESDAY) is None
    assert time.perf_counter() - started < 2


def test_latest_in_a_long_window_is_fast() -> None:
    started = time.perf_counter()
    every_minute = parse("cron(* * * * ? *)")
    assert every_minute.latest(WEDNESDAY, at("2027-11-18T09:30:30")) == at("2027-11-18T09:30:00")
    monday_eight = parse("cron(* 8 ? * MON *)")
    assert monday_eight.latest(WEDNESDAY, at("2036-11-18T09:30:00")) == at("2036-11-17T08:59:00")
    assert monday_eight.latest(at("2026-11-24T00:00:00"), at("2026-11-30T07:00:00")) is None
    assert time.perf_counter() - started < 2


# --- cron: invalid expressions ------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("cron(0 10 * * ?)", "six fields"),
        ("cron(0 10 * * ? * *)", "six fields"),
        ("cron()", "six fields"),
        ("cron(0 10 * * ? *", "cron\\(<six fields>\\)"),
        ("cron(0 10 ? * ? *)", "exactly one"),
        ("cron(0 10 * * * *)", "exactly one"),
        ("cron(0 10 1 * MON *)", "exactly one"),
        ("cron(60 10 * * ? *)", "minutes: 60 is outside 0-59"),
        ("cron(0 24 * * ? *)", "hours: 24 is outside 0-23"),
        ("cron(0 10 32 * ? *)", "day-of-month: 32 is outside 1-31"),
        ("cron(0 10 0 * ? *)", "day-of-month: 0 is outside 1-31"),
        ("cron(0 10 1 13 ? *)", "month: 13 is outside 1-12"),
        ("cron(0 10 ? * 0 *)", "day-of-week: 0 is outside 1-7"),
        ("cron(0 10 ? * 8 *)", "day-of-week: 8 is outside 1-7"),
        ("cron(0 10 * * ? 1969)", "year: 1969 is outside 1970-2199"),
        ("cron(0 10 * * ? 2200)", "year: 2200 is outside 1970-2199"),
        ("cron(0 10 * * ? 2030-2026)", "backwards"),
        ("cron(0 10 * JANUARY ? *)", "'JANUARY' is not a valid value"),
        ("cron(0 10 ? * MONDAY *)", "'MONDAY' is not a valid value"),
        ("cron(0/0 10 * * ? *)", "positive step"),
        ("cron(0/x 10 * * ? *)", "positive step"),
        ("cron(? 10 * * ? *)", "minutes"),
        ("cron(0 10 * ? ? *)", "month"),
        ("cron(0 10 ? * 2/2 *)", "day-of-week: / is not allowed"),
        ("cron(0 10 ? * 3#6 *)", "1-5"),
        ("cron(0 10 ? * 3#0 *)", "1-5"),
        ("cron(0 10 ? * 3#1,6#3 *)", "stand alone"),
        ("cron(0 10 ? * 2,5L *)", "stand alone"),
        ("cron(0 10 ? * 9L *)", "day-of-week: 9 is outside 1-7"),
        ("cron(0 10 1,15W * ? *)", "stand alone"),
        ("cron(0 10 L-2 * ? *)", "stand alone"),
        ("cron(0 10 32W * ? *)", "day-of-month: 32 is outside 1-31"),
        ("cron(0 L * * ? *)", "hours"),
        ("cron(0 10 1-31, * ? *)", "day-of-month: '' is not a valid value"),
    ],
)
def test_bad_crons_are_rejected(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(expression)


def test_cron_fields_are_parsed() -> None:
    schedule = parse("cron(0/20 8-10 ? JAN,JUL MON-FRI 2026-2027)")
    assert isinstance(schedule, Cron)
    assert schedule.minutes == (0, 20, 40)
    assert schedule.hours == (8, 9, 10)
    assert schedule.months == (1, 7)
    assert schedule.years == (2026, 2027)
    assert schedule.days_of_week.values == frozenset({2, 3, 4, 5, 6})


# --- time zones (EventBridge Scheduler) ---------------------------------------------------


def test_cron_in_a_time_zone_follows_daylight_saving() -> None:
    schedule = parse("cron(0 9 * * ? *)", timezone="Europe/Paris")
    assert schedule.next_after(at("2026-01-10T00:00:00")) == at("2026-01-10T08:00:00")
    assert schedule.next_after(at("2026-07-10T00:00:00")) == at("2026-07-10T07:00:00")


def test_a_skipped_local_time_is_skipped() -> None:
    # Paris springs forward from 02:00 to 03:00 on 2026-03-29.
    schedule = parse("cron(30 2 * * ? *)", timezone="Europe/Paris")
    assert schedule.next_after(at("2026-03-28T12:00:00")) == at("2026-03-30T00:30:00")


def test_a_repeated_local_time_fires_once() -> None:
    # Paris falls back from 03:00 to 02:00 on 2026-10-25: 02:30 happens twice.
    schedule = parse("cron(30 2 * * ? *)", timezone="Europe/Paris")
    first = schedule.next_after(at("2026-10-24T12:00:00"))
    assert first == at("2026-10-25T00:30:00")
    assert schedule.next_after(first) == at("2026-10-26T01:30:00")


def test_unknown_time_zone() -> None:
    with pytest.raises(ValueError, match="not a known time zone"):
        parse("cron(0 9 * * ? *)", timezone="Mars/Olympus")


# --- at -----------------------------------------------------------------------------------


def test_one_time_schedule() -> None:
    schedule = parse("at(2026-12-01T10:00:00)")
    assert isinstance(schedule, At)
    assert schedule.next_after(WEDNESDAY) == at("2026-12-01T10:00:00")
    assert schedule.next_after(at("2026-12-01T10:00:00")) is None
    paris = parse("at(2026-12-01T10:00:00)", timezone="Europe/Paris")
    assert paris.next_after(WEDNESDAY) == at("2026-12-01T09:00:00")


@pytest.mark.parametrize(
    "expression",
    ["at(2026-12-01 10:00:00)", "at(2026-12-01T10:00)", "at(2026-13-01T10:00:00)", "at()"],
)
def test_bad_one_time_schedules(expression: str) -> None:
    with pytest.raises(ValueError, match="at"):
        parse(expression)


# --- the scheduled event ------------------------------------------------------------------


def test_scheduled_event_is_eventbridges() -> None:
    arn = "arn:aws:events:eu-west-1:123456789012:rule/ordo-Nightly"
    event = scheduled_event(arn, "eu-west-1", "123456789012", at("2026-11-21T12:00:00.250"))
    uuid.UUID(event.pop("id"), version=4)
    assert event == {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-21T12:00:00Z",
        "region": "eu-west-1",
        "resources": [arn],
        "detail": {},
    }
    assert scheduled_event(arn, "eu-west-1", "1", WEDNESDAY)["id"] != event.get("id")
