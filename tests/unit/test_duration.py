"""Durations: the strings people write in definitions, and the compact form written back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from shared.duration import Duration, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s5ms", timedelta(days=1, hours=2, minutes=3, seconds=4, milliseconds=5)),
        ("500ms", timedelta(milliseconds=500)),
        ("1.5s", timedelta(seconds=1.5)),
        ("0.5h", timedelta(minutes=30)),
        ("90", timedelta(seconds=90)),
        ("2.5", timedelta(seconds=2.5)),
        ("0s", timedelta(0)),
        (" 15M ", timedelta(minutes=15)),
        (45, timedelta(seconds=45)),
        (0, timedelta(0)),
        (1.25, timedelta(seconds=1.25)),
    ],
)
def test_parse_duration_accepts_units_and_plain_seconds(
    text: str | int | float, expected: timedelta
) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("-5s", "must not be negative"),
        (-1, "must not be negative"),
        (-0.5, "must not be negative"),
        ("abc", "not understood"),
        ("15 minutes", "not understood"),
        ("5x", "not understood"),
        ("1h 30m", "not understood"),
        ("s", "not understood"),
        ("30m1h", "repeated or out of order"),
        ("1h1h", "repeated or out of order"),
        (True, "a boolean is not a duration"),
        (float("nan"), "not a finite number"),
        (float("inf"), "not a finite number"),
        ("99999d", "too long"),
    ],
)
def test_parse_duration_rejects_with_a_message_listing_the_accepted_forms(
    value: str | int | float, reason: str
) -> None:
    with pytest.raises(ValueError, match="expected a number of seconds") as info:
        parse_duration(value)
    assert reason in str(info.value)
    assert "'1h30m'" in str(info.value)


def test_parse_duration_names_the_field_when_given() -> None:
    with pytest.raises(ValueError, match=r"^timeout: invalid duration 'soon'"):
        parse_duration("soon", field="timeout")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=30), "30s"),
        (timedelta(minutes=15), "15m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=1), "1d"),
        (timedelta(days=2, hours=3, seconds=4), "2d3h4s"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(seconds=1, milliseconds=250), "1s250ms"),
        (timedelta(microseconds=1500), "0.0015s"),
    ],
)
def test_format_duration_writes_the_compact_form(value: timedelta, expected: str) -> None:
    assert format_duration(value) == expected


def test_format_duration_refuses_negative_durations() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(seconds=-1))


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3000)))
def test_format_then_parse_gives_the_same_duration(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value


class _Model(BaseModel):
    wait: Duration


def test_duration_field_accepts_strings_numbers_and_timedeltas() -> None:
    assert _Model(wait="1h30m").wait == timedelta(minutes=90)  # type: ignore[arg-type]
    assert _Model(wait=5).wait == timedelta(seconds=5)  # type: ignore[arg-type]
    assert _Model(wait=timedelta(minutes=2)).wait == timedelta(minutes=2)


def test_duration_field_dumps_the_string_form_in_both_modes() -> None:
    model = _Model(wait="90m")  # type: ignore[arg-type]
    assert model.model_dump() == {"wait": "1h30m"}
    assert model.model_dump(mode="json") == {"wait": "1h30m"}
    assert model.model_dump_json() == '{"wait":"1h30m"}'


@pytest.mark.parametrize("bad", ["later", -3, [1], None, timedelta(seconds=-1)])
def test_duration_field_rejects_what_is_not_a_duration(bad: object) -> None:
    with pytest.raises(ValidationError):
        _Model(wait=bad)  # type: ignore[arg-type]
