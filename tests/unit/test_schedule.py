"""Schedule expressions: hand-checked fire times, errors that name the field, and properties.

Every expected time in the tables below was worked out by hand from a calendar
(``python -c 'import calendar; print(calendar.month(2026, 3))'``) and the zones' published
rules, not copied from the implementation:

* Europe/Berlin: CET +01, CEST +02; 2026-03-29 01:00Z clocks jump 02:00 -> 03:00 local,
  2026-10-25 01:00Z clocks fall back 03:00 -> 02:00 local.
* America/New_York: EST -05, EDT -04; 2026-03-08 07:00Z jump 02:00 -> 03:00,
  2026-11-01 06:00Z fall back 02:00 -> 01:00.
* Australia/Sydney: AEST +10, AEDT +11; 2026-04-04 16:00Z (Sunday 5 April local) fall back
  03:00 -> 02:00, 2026-10-03 16:00Z (Sunday 4 October local) jump 02:00 -> 03:00.
* 1 January 2026 is a Thursday; so was 1 January 1970 (the default rate anchor).
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import pytest
from croniter import CroniterBadDateError, croniter
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shared.errors import InvalidSchedule
from shared.schedule import (
    AtSchedule,
    CronSchedule,
    RateSchedule,
    parse_schedule,
    preview,
    validate_timezone,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
SYDNEY = "Australia/Sydney"


def at(text: str) -> datetime:
    """``"2026-03-29T01:00Z"`` -> an aware UTC datetime."""
    return datetime.fromisoformat(text).astimezone(UTC)


def iso(times: list[datetime]) -> list[str]:
    return [t.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ") for t in times]


def case(
    expression: str,
    tz: str,
    after: str,
    expected: list[str],
    *,
    id: str,
    dst: Literal["vixie", "skip"] = "vixie",
    anchor: str | None = None,
) -> object:
    return pytest.param(expression, tz, after, expected, dst, anchor, id=id)


FIRE_TIMES = [
    # ---------------------------------------------------------------- 5-field cron, UTC
    case(
        "*/15 9-17 * * 1-5",
        "UTC",
        "2026-01-02T17:30Z",  # Friday
        ["2026-01-02T17:45Z", "2026-01-05T09:00Z", "2026-01-05T09:15Z"],
        id="business-hours-quarter-hours-skip-the-weekend",
    ),
    case(
        "0 9 * * MON-FRI",
        "UTC",
        "2026-01-09T09:00Z",  # Friday 09:00 itself is not "after"
        ["2026-01-12T09:00Z", "2026-01-13T09:00Z"],
        id="day-names-range-strictly-after",
    ),
    case(
        "30 6 1,15 * *",
        "UTC",
        "2026-01-20T00:00Z",
        ["2026-02-01T06:30Z", "2026-02-15T06:30Z", "2026-03-01T06:30Z"],
        id="day-of-month-list",
    ),
    case(
        "0 12 1 jan,jul *",
        "UTC",
        "2026-01-01T12:00Z",
        ["2026-07-01T12:00Z", "2027-01-01T12:00Z"],
        id="lower-case-month-names",
    ),
    case(
        "0 8 13 * 5",
        "UTC",
        "2026-03-14T00:00Z",
        [
            "2026-03-20T08:00Z",
            "2026-03-27T08:00Z",
            "2026-04-03T08:00Z",
            "2026-04-10T08:00Z",
            "2026-04-13T08:00Z",  # a Monday: the 13th alone is enough
            "2026-04-17T08:00Z",
        ],
        id="vixie-day-of-month-or-day-of-week",
    ),
    case(
        "0 8 */10 * 1",
        "UTC",
        "2026-01-01T00:00Z",
        ["2026-05-11T08:00Z", "2026-06-01T08:00Z", "2026-08-31T08:00Z"],
        id="vixie-star-step-day-of-month-means-and",
    ),
    case(
        "0 0 * * 7",
        "UTC",
        "2026-01-01T00:00Z",
        ["2026-01-04T00:00Z", "2026-01-11T00:00Z"],
        id="day-of-week-7-is-sunday",
    ),
    case(
        "0 0 * * 5-7",
        "UTC",
        "2026-01-01T00:00Z",
        ["2026-01-02T00:00Z", "2026-01-03T00:00Z", "2026-01-04T00:00Z", "2026-01-09T00:00Z"],
        id="day-of-week-range-up-to-7",
    ),
    case(
        "10-50/20 * * * *",
        "UTC",
        "2026-01-01T00:00Z",
        ["2026-01-01T00:10Z", "2026-01-01T00:30Z", "2026-01-01T00:50Z", "2026-01-01T01:10Z"],
        id="stepped-range",
    ),
    case(
        "@hourly",
        "UTC",
        "2026-01-01T00:00Z",
        ["2026-01-01T01:00Z", "2026-01-01T02:00Z"],
        id="macro-hourly",
    ),
    case(
        "@daily",
        "UTC",
        "2026-01-01T00:00Z",
        ["2026-01-02T00:00Z", "2026-01-03T00:00Z"],
        id="macro-daily",
    ),
    case(
        "@midnight",
        "UTC",
        "2026-01-01T00:30Z",
        ["2026-01-02T00:00Z"],
        id="macro-midnight",
    ),
    case(
        "@weekly",
        "UTC",
        "2026-01-01T00:00Z",
        ["2026-01-04T00:00Z", "2026-01-11T00:00Z"],
        id="macro-weekly-is-sunday-midnight",
    ),
    case(
        "@monthly",
        "UTC",
        "2026-01-15T00:00Z",
        ["2026-02-01T00:00Z", "2026-03-01T00:00Z"],
        id="macro-monthly",
    ),
    case(
        "@yearly",
        "UTC",
        "2026-01-01T00:00Z",
        ["2027-01-01T00:00Z", "2028-01-01T00:00Z"],
        id="macro-yearly",
    ),
    case(
        "@annually",
        "UTC",
        "2026-06-01T00:00Z",
        ["2027-01-01T00:00Z"],
        id="macro-annually",
    ),
    case(
        "0 0 29 2 *",
        "UTC",
        "2026-01-01T00:00Z",
        ["2028-02-29T00:00Z", "2032-02-29T00:00Z"],
        id="leap-day-only-in-leap-years",
    ),
    case(
        "0 0 * * 1",
        NEW_YORK,
        "2026-01-01T00:00Z",
        ["2026-01-05T05:00Z", "2026-01-12T05:00Z"],
        id="local-midnight-monday-in-new-york",
    ),
    case(
        "0 12 * * *",
        SYDNEY,
        "2026-07-01T00:00Z",
        ["2026-07-01T02:00Z", "2026-07-02T02:00Z"],
        id="sydney-winter-noon",
    ),
    # ----------------------------------------------------------------------- AWS cron
    case(
        "cron(0 9 ? * 6L *)",
        "UTC",
        "2026-01-01T00:00Z",
        ["2026-01-30T09:00Z", "2026-02-27T09:00Z", "2026-03-27T09:00Z", "2026-04-24T09:00Z"],
        id="aws-6L-last-friday",
    ),
    case(
        "cron(0 10 ? * 2#1 *)",
        "UTC",
        "2026-01-01T00:00Z",
        ["2026-01-05T10:00Z", "2026-02-02T10:00Z", "2026-03-02T10:00Z", "2026-04-06T10:00Z"],
        id="aws-2#1-first-monday",
    ),
    case(
        "cron(0 10 ? * MON#3 *)",
        "UTC",
        "2026-01-01T00:00Z",
        ["2026-01-19T10:00Z", "2026-02-16T10:00Z"],
        id="aws-named-third-monday",
    ),
    case(
        "cron(0 10 15W * ? *)",
        "UTC",
        "2026-01-01T00:00Z",
        [
            "2026-01-15T10:00Z",  # Thursday
            "2026-02-16T10:00Z",  # the 15th is a Sunday -> Monday
            "2026-03-16T10:00Z",  # Sunday -> Monday
            "2026-04-15T10:00Z",  # Wednesday
            "2026-05-15T10:00Z",  # Friday
        ],
        id="aws-15W-nearest-weekday",
    ),
    case(
        "cron(0 10 1W 2,8 ? 2026)",
        "UTC",
        "2026-01-01T00:00Z",
        # 1 Feb is a Sunday -> Monday 2nd; 1 Aug is a Saturday -> Monday 3rd (never July)
        ["2026-02-02T10:00Z", "2026-08-03T10:00Z"],
        id="aws-1W-does-not-leave-the-month",
    ),
    case(
        "cron(0 10 31W 5 ? 2026)",
        "UTC",
        "2026-01-01T00:00Z",
        ["2026-05-29T10:00Z"],  # 31 May is a Sunday and the last day -> Friday 29th
        id="aws-31W-on-a-final-sunday-goes-back-to-friday",
    ),
    case(
        "cron(0 18 LW * ? *)",
        "UTC",
        "2026-01-01T00:00Z",
        [
            "2026-01-30T18:00Z",  # 31 Jan is a Saturday
            "2026-02-27T18:00Z",  # 28 Feb is a Saturday
            "2026-03-31T18:00Z",  # Tuesday
            "2026-04-30T18:00Z",  # Thursday
            "2026-05-29T18:00Z",  # 31 May is a Sunday
        ],
        id="aws-LW-last-weekday",
    ),
    case(
        "cron(0 0 L * ? *)",
        "UTC",
        "2026-01-01T00:00Z",
        ["2026-01-31T00:00Z", "2026-02-28T00:00Z", "2026-03-31T00:00Z", "2026-04-30T00:00Z"],
        id="aws-L-last-day-of-month",
    ),
    case(
        "cron(0 12 L 2 ? 2027-2028)",
        "UTC",
        "2026-01-01T00:00Z",
        ["2027-02-28T12:00Z", "2028-02-29T12:00Z"],
        id="aws-L-in-february-knows-leap-years",
    ),
    case(
        "cron(0 0 29 2 ? *)",
        "UTC",
        "2026-01-01T00:00Z",
        ["2028-02-29T00:00Z", "2032-02-29T00:00Z"],
        id="aws-leap-day",
    ),
    case(
        "cron(0 9 ? * L *)",
        "UTC",
        "2026-01-01T00:00Z",
        ["2026-01-03T09:00Z", "2026-01-10T09:00Z"],
        id="aws-L-alone-in-day-of-week-is-saturday",
    ),
    case(
        "cron(0 9 ? * 1 *)",
        "UTC",
        "2026-01-01T00:00Z",
        ["2026-01-04T09:00Z", "2026-01-11T09:00Z"],
        id="aws-day-of-week-1-is-sunday",
    ),
    case(
        "cron(0 9 ? * 7 *)",
        "UTC",
        "2026-01-01T00:00Z",
        ["2026-01-03T09:00Z", "2026-01-10T09:00Z"],
        id="aws-day-of-week-7-is-saturday",
    ),
    case(
        "cron(0 9 ? * MON-FRI *)",
        "UTC",
        "2026-01-02T09:00Z",
        ["2026-01-05T09:00Z", "2026-01-06T09:00Z"],
        id="aws-day-names",
    ),
    case(
        "cron(0/20 * * * ? *)",
        "UTC",
        "2026-01-01T00:00Z",
        ["2026-01-01T00:20Z", "2026-01-01T00:40Z", "2026-01-01T01:00Z"],
        id="aws-start-slash-step",
    ),
    case(
        "cron(0 0 1 1 ? 2027,2029)",
        "UTC",
        "2026-01-01T00:00Z",
        ["2027-01-01T00:00Z", "2029-01-01T00:00Z"],
        id="aws-year-list",
    ),
    case(
        "cron(30 12 25 12 ? 2026-2028)",
        "UTC",
        "2026-01-01T00:00Z",
        ["2026-12-25T12:30Z", "2027-12-25T12:30Z", "2028-12-25T12:30Z"],
        id="aws-year-range",
    ),
    case(
        "cron(0 0 1 1 ? 2150)",
        "UTC",
        "2026-01-01T00:00Z",
        ["2150-01-01T00:00Z"],
        id="aws-year-beyond-2099",
    ),
    case(
        "cron(0 0 1 1 ? 2027)",
        SYDNEY,
        "2026-01-01T00:00Z",
        ["2026-12-31T13:00Z"],  # local new year 2027 (AEDT) is still 2026 in UTC
        id="aws-year-is-the-local-year",
    ),
    case(
        "cron(0 9 ? * 6L *)",
        BERLIN,
        "2026-03-01T00:00Z",
        ["2026-03-27T08:00Z", "2026-04-24T07:00Z"],
        id="aws-last-friday-in-berlin-across-spring-forward",
    ),
    # --------------------------------------------------------------------------- rate
    case(
        "rate(5 minutes)",
        "UTC",
        "2026-01-01T00:02Z",
        ["2026-01-01T00:05Z", "2026-01-01T00:10Z", "2026-01-01T00:15Z"],
        id="rate-minutes-on-the-epoch-grid",
    ),
    case(
        "rate(1 hour)",
        "UTC",
        "2026-03-01T10:00Z",
        ["2026-03-01T10:20Z", "2026-03-01T11:20Z"],
        id="rate-hour-keeps-the-anchor-phase",
        anchor="2026-01-01T00:20Z",
    ),
    case(
        "rate(1 day)",
        BERLIN,
        "2026-03-28T10:00Z",
        ["2026-03-29T10:00Z", "2026-03-30T10:00Z"],  # 11:00 CET, then 12:00 CEST local
        id="rate-day-is-elapsed-time-across-dst",
        anchor="2026-03-28T10:00Z",
    ),
    case(
        "rate(7 days)",
        "UTC",
        "2026-01-01T00:00Z",  # 20454 days after the epoch = 2922 weeks exactly
        ["2026-01-08T00:00Z", "2026-01-15T00:00Z"],
        id="rate-days-from-the-epoch",
    ),
    # ----------------------------------------------------------------------------- at
    case(
        "at(2026-07-01T09:30:00)",
        BERLIN,
        "2026-01-01T00:00Z",
        ["2026-07-01T07:30Z"],
        id="at-local-summer-time",
    ),
    case(
        "at(2026-03-29T02:30:00)",
        BERLIN,
        "2026-01-01T00:00Z",
        ["2026-03-29T01:00Z"],
        id="at-skipped-local-time-fires-when-the-gap-ends",
    ),
    case(
        "at(2026-03-29T02:30:00)",
        BERLIN,
        "2026-01-01T00:00Z",
        [],
        id="at-skipped-local-time-with-dst-skip-never-fires",
        dst="skip",
    ),
    case(
        "at(2026-11-01T01:30:00)",
        NEW_YORK,
        "2026-01-01T00:00Z",
        ["2026-11-01T05:30Z"],
        id="at-repeated-local-time-fires-at-the-first-occurrence",
    ),
    # ------------------------------------------------------------------ Berlin DST
    case(
        "30 2 * * *",
        BERLIN,
        "2026-03-27T12:00Z",
        ["2026-03-28T01:30Z", "2026-03-29T01:00Z", "2026-03-30T00:30Z"],
        id="berlin-spring-skipped-0230-fires-at-0300-local",
    ),
    case(
        "30 2 * * *",
        BERLIN,
        "2026-03-27T12:00Z",
        ["2026-03-28T01:30Z", "2026-03-30T00:30Z", "2026-03-31T00:30Z"],
        id="berlin-spring-skipped-0230-with-dst-skip",
        dst="skip",
    ),
    case(
        "0,30 2 * * *",
        BERLIN,
        "2026-03-28T12:00Z",
        ["2026-03-29T01:00Z", "2026-03-30T00:00Z", "2026-03-30T00:30Z"],
        id="berlin-spring-two-skipped-times-fire-once",
    ),
    case(
        "0 2,3 * * *",
        BERLIN,
        "2026-03-28T12:00Z",
        ["2026-03-29T01:00Z", "2026-03-30T00:00Z", "2026-03-30T01:00Z"],
        id="berlin-spring-skipped-0200-and-real-0300-are-one-fire",
    ),
    case(
        "30 2 * * *",
        BERLIN,
        "2026-10-24T12:00Z",
        ["2026-10-25T00:30Z", "2026-10-26T01:30Z"],
        id="berlin-fall-repeated-0230-fires-once",
    ),
    case(
        "30 2 * * *",
        BERLIN,
        "2026-10-25T01:10Z",  # 02:10 CET, inside the repeated hour
        ["2026-10-26T01:30Z"],
        id="berlin-fall-no-second-fire-from-inside-the-repeat",
    ),
    case(
        "0 * * * *",
        BERLIN,
        "2026-03-28T23:30Z",
        ["2026-03-29T00:00Z", "2026-03-29T01:00Z", "2026-03-29T02:00Z"],
        id="berlin-spring-hourly-follows-real-hours",
    ),
    case(
        "0 * * * *",
        BERLIN,
        "2026-10-24T23:30Z",
        ["2026-10-25T00:00Z", "2026-10-25T01:00Z", "2026-10-25T02:00Z"],
        id="berlin-fall-hourly-fires-both-0200s",
    ),
    case(
        "*/30 2 * * *",
        BERLIN,
        "2026-10-24T12:00Z",
        [
            "2026-10-25T00:00Z",
            "2026-10-25T00:30Z",
            "2026-10-25T01:00Z",
            "2026-10-25T01:30Z",
            "2026-10-26T01:00Z",
        ],
        id="berlin-fall-stepped-minutes-run-in-both-0200-hours",
    ),
    case(
        "*/30 2 * * *",
        BERLIN,
        "2026-03-28T12:00Z",
        ["2026-03-30T00:00Z", "2026-03-30T00:30Z"],
        id="berlin-spring-stepped-minutes-skip-the-missing-hour",
    ),
    # ---------------------------------------------------------------- New York DST
    case(
        "30 2 * * *",
        NEW_YORK,
        "2026-03-07T12:00Z",
        ["2026-03-08T07:00Z", "2026-03-09T06:30Z"],
        id="new-york-spring-skipped-0230-fires-at-0300-local",
    ),
    case(
        "cron(0 2 ? * SUN *)",
        NEW_YORK,
        "2026-03-07T00:00Z",
        ["2026-03-08T07:00Z", "2026-03-15T06:00Z"],
        id="new-york-spring-aws-0200-sunday-vixie",
    ),
    case(
        "cron(0 2 ? * SUN *)",
        NEW_YORK,
        "2026-03-07T00:00Z",
        ["2026-03-15T06:00Z", "2026-03-22T06:00Z"],
        id="new-york-spring-aws-0200-sunday-skip",
        dst="skip",
    ),
    case(
        "30 1 * * *",
        NEW_YORK,
        "2026-10-31T12:00Z",
        ["2026-11-01T05:30Z", "2026-11-02T06:30Z"],
        id="new-york-fall-repeated-0130-fires-once",
    ),
    case(
        "*/30 * * * *",
        NEW_YORK,
        "2026-11-01T04:45Z",
        [
            "2026-11-01T05:00Z",
            "2026-11-01T05:30Z",
            "2026-11-01T06:00Z",
            "2026-11-01T06:30Z",
            "2026-11-01T07:00Z",
        ],
        id="new-york-fall-every-half-hour-in-real-time",
    ),
    case(
        "0 9 * * *",
        NEW_YORK,
        "2026-03-07T00:00Z",
        ["2026-03-07T14:00Z", "2026-03-08T13:00Z"],
        id="new-york-0900-keeps-local-time-across-spring",
    ),
    # ------------------------------------------------------------------ Sydney DST
    case(
        "30 2 * * *",
        SYDNEY,
        "2026-04-04T00:00Z",
        ["2026-04-04T15:30Z", "2026-04-05T16:30Z"],
        id="sydney-april-repeated-0230-fires-once",
    ),
    case(
        "30 2 * * *",
        SYDNEY,
        "2026-10-02T00:00Z",
        ["2026-10-02T16:30Z", "2026-10-03T16:00Z", "2026-10-04T15:30Z"],
        id="sydney-october-skipped-0230-fires-at-0300-local",
    ),
    case(
        "0 * * * *",
        SYDNEY,
        "2026-04-04T14:30Z",
        ["2026-04-04T15:00Z", "2026-04-04T16:00Z", "2026-04-04T17:00Z"],
        id="sydney-april-hourly-fires-both-0200s",
    ),
    case(
        "0 * * * *",
        SYDNEY,
        "2026-10-03T15:30Z",
        ["2026-10-03T16:00Z", "2026-10-03T17:00Z"],
        id="sydney-october-hourly-follows-real-hours",
    ),
]


@pytest.mark.parametrize(("expression", "tz", "after", "expected", "dst", "anchor"), FIRE_TIMES)
def test_expression_fires_at_the_hand_checked_times(
    *,
    expression: str,
    tz: str,
    after: str,
    expected: list[str],
    dst: Literal["vixie", "skip"],
    anchor: str | None,
) -> None:
    schedule = parse_schedule(
        expression, tz, dst=dst, anchor=None if anchor is None else at(anchor)
    )
    fires: list[datetime] = []
    cursor = at(after)
    for _ in range(len(expected) + 1):
        fire = schedule.next_after(cursor)
        if fire is None:
            break
        fires.append(fire)
        cursor = fire
    # One more than expected was asked for: compare the prefix, then check bounded ones end.
    assert iso(fires[: len(expected)]) == expected
    assert all(f.tzinfo is UTC for f in fires)
    window = schedule.fire_times(at(after), at(expected[-1]) if expected else at(after))
    assert iso(window) == expected


BOUNDED = [
    ("cron(0 12 L 2 ? 2027-2028)", "UTC", "2028-02-29T12:00Z"),
    ("cron(0 0 1 1 ? 2027,2029)", "UTC", "2029-01-01T00:00Z"),
    ("cron(0 0 1 1 ? 2150)", "UTC", "2150-01-01T00:00Z"),
    ("at(2026-07-01T09:30:00)", BERLIN, "2026-07-01T07:30Z"),
    ("cron(0 10 31W 5 ? 2026)", "UTC", "2026-05-29T10:00Z"),
]


@pytest.mark.parametrize(("expression", "tz", "last"), BOUNDED)
def test_bounded_schedule_has_no_fire_after_its_last(expression: str, tz: str, last: str) -> None:
    schedule = parse_schedule(expression, tz)
    assert schedule.next_after(at(last) - timedelta(seconds=1)) == at(last)
    assert schedule.next_after(at(last)) is None
    assert schedule.fire_times(at(last), at(last) + timedelta(days=400 * 366)) == []


# ------------------------------------------------------------------------------ errors
INVALID = [
    (
        "cron(0 9 ? * 8 *)",
        "UTC",
        "cron(0 9 ? * 8 *): day-of-week field '8': value out of range 1-7",
    ),
    (
        "cron(0 9 * * * *)",
        "UTC",
        "cron(0 9 * * * *): one of day-of-month or day-of-week must be '?'",
    ),
    ("cron(0 9 ? * ? *)", "UTC", "one of day-of-month or day-of-week must be '?'"),
    ("0 9 * * 8", "UTC", "day-of-week field '8': value out of range 0-7"),
    ("60 * * * *", "UTC", "minute field '60': value out of range 0-59"),
    ("0 24 * * *", "UTC", "hour field '24': value out of range 0-23"),
    ("0 0 32 * *", "UTC", "day-of-month field '32': value out of range 1-31"),
    ("0 0 1 13 *", "UTC", "month field '13': value out of range 1-12"),
    ("0 0 1 FOO *", "UTC", "month field 'FOO': 'FOO' is not a number or a known name"),
    ("*/0 * * * *", "UTC", "minute field '*/0': step '0' must be a positive whole number"),
    ("0 17-9 * * *", "UTC", "hour field '17-9': range 17-9 runs backwards"),
    ("0 9 1,,2 * *", "UTC", "day-of-month field '1,,2': empty item in the list"),
    ("0 0 30 2 *", "UTC", "day-of-month field '30': no such day in month field '2'"),
    ("cron(0 0 31 4,6 ? *)", "UTC", "day-of-month field '31': no such day in month field '4,6'"),
    ("0 9 * *", "UTC", "expected 5 fields"),
    ("0 9 * * * 2026", "UTC", "AWS syntax is written cron("),
    ("cron(0 9 * * ?)", "UTC", "expected 6 fields"),
    ("0 9 ? * *", "UTC", "day-of-month field '?': '?', 'L', 'W' and '#' are only valid in AWS"),
    ("0 9 L * *", "UTC", "only valid in AWS cron(...)"),
    ("cron(? 9 * * ? *)", "UTC", "minute field '?': '?' is only valid in day-of-month or"),
    ("cron(0 9 ? * 2#6 *)", "UTC", "day-of-week field '2#6': '#6': the week must be 1-5"),
    ("cron(0 9 ? * 2#1,3 *)", "UTC", "cannot be mixed with plain days"),
    ("cron(0 9 L,15 * ? *)", "UTC", "day-of-month field 'L,15': 'L', 'LW' and 'nW' must stand"),
    ("cron(0 9 32W * ? *)", "UTC", "day-of-month field '32W': value out of range 1-31"),
    ("cron(0 9 1 1 ? 2200)", "UTC", "year field '2200': value out of range 1970-2199"),
    ("cron(0 9 29 2 ? 2027)", "UTC", "year field '2027': the expression never fires in those"),
    ("rate(0 minutes)", "UTC", "rate(0 minutes): the value must be a positive whole number"),
    ("rate(1.5 hours)", "UTC", "rate(1.5 hours): the value must be a positive whole number"),
    ("rate(5 weeks)", "UTC", "rate(5 weeks): unknown unit 'weeks'"),
    ("rate(minutes)", "UTC", "expected rate(value unit)"),
    ("at(2026-02-30T10:00:00)", "UTC", "at(2026-02-30T10:00:00): not a valid date and time"),
    ("at(2026-01-01 10:00)", "UTC", "expected at(yyyy-mm-ddThh:mm:ss)"),
    ("@reboot", "UTC", "unknown macro"),
    ("every day at nine", "UTC", "unrecognised schedule expression"),
    ("   ", "UTC", "the schedule expression is empty"),
    ("0 9 * * *", "Europe/Berln", "unknown time zone 'Europe/Berln'"),
]


@pytest.mark.parametrize(("expression", "tz", "fragment"), INVALID)
def test_invalid_expression_is_rejected_with_a_message_naming_the_field(
    expression: str, tz: str, fragment: str
) -> None:
    with pytest.raises(InvalidSchedule) as info:
        parse_schedule(expression, tz)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "name", ["Europe/Berln", "", "Mars/Olympus", "../etc/passwd", " UTC", "localtime", "America"]
)
def test_validate_timezone_rejects_unknown_zones(name: str) -> None:
    with pytest.raises(InvalidSchedule, match="unknown time zone"):
        validate_timezone(name)


@pytest.mark.parametrize("name", ["UTC", BERLIN, NEW_YORK, SYDNEY, "Asia/Kathmandu"])
def test_validate_timezone_returns_known_zones_unchanged(name: str) -> None:
    assert validate_timezone(name) == name


# ------------------------------------------------------------------------ API details
def test_parse_schedule_returns_the_kind_of_schedule_written() -> None:
    assert isinstance(parse_schedule("0 9 * * *"), CronSchedule)
    assert isinstance(parse_schedule("cron(0 9 * * ? *)"), CronSchedule)
    assert isinstance(parse_schedule("rate(5 minutes)"), RateSchedule)
    assert isinstance(parse_schedule("at(2027-01-01T00:00:00)"), AtSchedule)
    schedule = parse_schedule("  0 9 * * *  ", BERLIN)
    assert (schedule.expression, schedule.timezone) == ("0 9 * * *", BERLIN)


def test_rate_accepts_singular_and_plural_units_alike() -> None:
    after = at("2026-01-01T00:00Z")
    assert parse_schedule("rate(1 minutes)").next_after(after) == at("2026-01-01T00:01Z")
    assert parse_schedule("rate(2 hour)").next_after(after) == at("2026-01-01T02:00Z")


def test_rate_anchor_makes_fire_times_stable_across_restarts() -> None:
    anchor = at("2026-01-01T00:07Z")
    first = parse_schedule("rate(15 minutes)", anchor=anchor)
    again = parse_schedule("rate(15 minutes)", anchor=anchor)
    after = at("2026-05-05T12:00Z")
    assert first.fire_times(after, after + timedelta(hours=1)) == again.fire_times(
        after, after + timedelta(hours=1)
    )
    assert iso(first.fire_times(after, after + timedelta(minutes=30))) == [
        "2026-05-05T12:07Z",
        "2026-05-05T12:22Z",
    ]


def test_rate_near_the_end_of_time_just_ends() -> None:
    assert parse_schedule("rate(1 day)").next_after(at("9999-12-31T10:00Z")) is None


def test_fire_times_window_is_open_at_after_and_closed_at_until() -> None:
    schedule = parse_schedule("0 * * * *")
    fires = schedule.fire_times(at("2026-01-01T00:00Z"), at("2026-01-01T03:00Z"))
    assert iso(fires) == ["2026-01-01T01:00Z", "2026-01-01T02:00Z", "2026-01-01T03:00Z"]


def test_fire_times_respects_the_limit() -> None:
    schedule = parse_schedule("* * * * *")
    after = at("2026-01-01T00:00Z")
    assert len(schedule.fire_times(after, after + timedelta(days=1), limit=7)) == 7
    assert schedule.fire_times(after, after + timedelta(days=1), limit=0) == []


def test_non_utc_inputs_are_accepted_and_answers_are_utc() -> None:
    berlin_nine = datetime.fromisoformat("2026-06-01T09:00:00+02:00")
    fire = parse_schedule("0 10 * * *", BERLIN).next_after(berlin_nine)
    assert fire == at("2026-06-01T08:00Z")
    assert fire is not None
    assert fire.tzinfo is UTC


def test_naive_datetimes_are_refused() -> None:
    schedule = parse_schedule("0 10 * * *")
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.next_after(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_schedule("rate(1 hour)", anchor=datetime(2026, 1, 1))


def test_unknown_dst_rule_is_an_invalid_schedule() -> None:
    with pytest.raises(InvalidSchedule, match="DST rule"):
        parse_schedule("0 9 * * *", dst="sometimes")  # type: ignore[arg-type]


def test_preview_lists_the_next_fires_strictly_after() -> None:
    fires = preview("cron(0 9 ? * MON-FRI *)", BERLIN, after=at("2026-01-02T08:00Z"), count=3)
    assert iso(fires) == ["2026-01-05T08:00Z", "2026-01-06T08:00Z", "2026-01-07T08:00Z"]


def test_preview_defaults_to_now() -> None:
    before = datetime.now(UTC)
    fires = preview("* * * * *", count=2)
    assert len(fires) == 2
    assert before < fires[0] <= before + timedelta(minutes=1)


def test_preview_stops_early_for_a_one_shot_schedule() -> None:
    assert preview("at(2026-01-01T00:00:00)", after=at("2025-01-01T00:00Z"), count=5) == [
        at("2026-01-01T00:00Z")
    ]


@pytest.mark.parametrize("tz", ["UTC", BERLIN, NEW_YORK, SYDNEY])
@pytest.mark.parametrize("day", ["2026-03-08", "2026-03-29", "2026-04-04", "2026-10-03"])
def test_every_minute_fires_1440_times_in_any_24_real_hours(tz: str, day: str) -> None:
    start = at(f"{day}T00:00Z")
    fires = parse_schedule("* * * * *", tz).fire_times(start, start + timedelta(days=1))
    assert len(fires) == 1440
    assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(fires))


def test_fire_times_costs_well_under_a_millisecond_per_fire() -> None:
    schedule = parse_schedule("* * * * *", BERLIN)
    after = at("2026-03-28T22:00Z")  # spans the spring-forward gap
    started = time.perf_counter()
    fires = schedule.fire_times(after, after + timedelta(hours=6))
    elapsed = time.perf_counter() - started
    assert len(fires) == 360
    assert elapsed / len(fires) < 0.0005


# -------------------------------------------------------------------------- properties
def _token(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    pair = st.tuples(value, value).filter(lambda p: p[0] < p[1])
    return st.one_of(
        st.just("*"),
        value.map(str),
        pair.map(lambda p: f"{p[0]}-{p[1]}"),
        st.integers(2, 20).map(lambda s: f"*/{s}"),
        st.tuples(pair, st.integers(2, 9)).map(lambda t: f"{t[0][0]}-{t[0][1]}/{t[1]}"),
        st.lists(value, min_size=2, max_size=4, unique=True).map(
            lambda vs: ",".join(str(v) for v in sorted(vs))
        ),
    )


unix_cron = st.tuples(_token(0, 59), _token(0, 23), _token(1, 31), _token(1, 12), _token(0, 6)).map(
    " ".join
)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2035, 12, 31),
).map(lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC))
zones = st.sampled_from(
    ["UTC", BERLIN, NEW_YORK, SYDNEY, "Australia/Lord_Howe", "Asia/Kathmandu", "America/Santiago"]
)


def _parse_or_reject(expression: str, tz: str = "UTC", **kwargs: object) -> CronSchedule:
    try:
        schedule = parse_schedule(expression, tz, **kwargs)  # type: ignore[arg-type]
    except InvalidSchedule:
        assume(False)
        raise
    assert isinstance(schedule, CronSchedule)
    return schedule


@settings(max_examples=300, deadline=None)
@given(expression=unix_cron, after=instants)
def test_plain_cron_in_utc_agrees_with_croniter(expression: str, after: datetime) -> None:
    schedule = _parse_or_reject(expression)
    reference = croniter(expression, after.replace(tzinfo=None), implement_cron_bug=True)
    try:
        expected = [reference.get_next(datetime).replace(tzinfo=UTC) for _ in range(5)]
    except CroniterBadDateError:
        assume(False)
    fires: list[datetime] = []
    cursor: datetime | None = after
    for _ in range(5):
        assert cursor is not None
        cursor = schedule.next_after(cursor)
        fires.append(cursor)  # type: ignore[arg-type]
    assert fires == expected


@settings(max_examples=200, deadline=None)
@given(
    expression=unix_cron,
    tz=zones,
    after=instants,
    dst=st.sampled_from(["vixie", "skip"]),
)
def test_fire_times_are_strictly_increasing_and_chain_with_next_after(
    expression: str, tz: str, after: datetime, dst: str
) -> None:
    schedule = _parse_or_reject(expression, tz, dst=dst)
    fires = schedule.fire_times(after, after + timedelta(days=800), limit=25)
    assert all(f > after for f in fires)
    assert all(a < b for a, b in itertools.pairwise(fires))
    chained: list[datetime] = []
    cursor: datetime | None = after
    while len(chained) < len(fires):
        assert cursor is not None
        cursor = schedule.next_after(cursor)
        assert cursor is not None
        chained.append(cursor)
    assert chained == fires


@settings(max_examples=100, deadline=None)
@given(
    minute=st.integers(0, 59),
    hour=st.integers(0, 23),
    tz=zones,
    after=instants,
)
def test_a_fixed_daily_time_fires_exactly_once_per_local_day(
    minute: int, hour: int, tz: str, after: datetime
) -> None:
    schedule = parse_schedule(f"{minute} {hour} * * *", tz)
    fires = schedule.fire_times(after, after + timedelta(days=60))
    local_days = [f.astimezone(ZoneInfo(tz)).date() for f in fires]
    assert len(local_days) == len(set(local_days))
    assert 58 <= len(fires) <= 61
