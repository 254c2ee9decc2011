"""Human-friendly durations: ``"30s"``, ``"15m"``, ``"1h30m"``, ``"500ms"``, or plain seconds.

:func:`parse_duration` reads them, :func:`format_duration` writes them back compactly, and
:data:`Duration` is the pydantic field type that does both (accepts the strings, dumps strings).
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

__all__ = ["ACCEPTED_FORMS", "Duration", "format_duration", "parse_duration"]

ACCEPTED_FORMS = (
    "a number of seconds (e.g. 30 or 1.5) or a duration such as '500ms', '30s', '15m', '2h', "
    "'1d' or '1h30m' (units d, h, m, s, ms, largest first)"
)

_UNITS: dict[str, timedelta] = {
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
}
_ORDER = tuple(_UNITS)  # largest first
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")
# Far beyond anything Conveyor accepts anywhere, but keeps timedelta from overflowing.
_LIMIT = timedelta(days=3650)


def _fail(value: object, field: str, reason: str) -> ValueError:
    where = f"{field}: " if field else ""
    return ValueError(f"{where}invalid duration {value!r}: {reason}; expected {ACCEPTED_FORMS}")


def parse_duration(value: str | int | float, *, field: str = "") -> timedelta:
    """Parse a duration; raise :class:`ValueError` (naming ``field`` if given) when it is not one.

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    >>> parse_duration(90)
    datetime.timedelta(seconds=90)
    """
    if isinstance(value, bool):  # bool is an int to Python, never a duration to a human
        raise _fail(value, field, "a boolean is not a duration")
    if isinstance(value, int | float):
        return _from_seconds(value, value, field)
    if not isinstance(value, str):
        raise _fail(value, field, f"a {type(value).__name__} is not a duration")
    text = value.strip().lower()
    if not text:
        raise _fail(value, field, "empty")
    if text.startswith("-"):
        raise _fail(value, field, "must not be negative")
    if _NUMBER.match(text):
        return _from_seconds(float(text), value, field)
    return _from_units(text, value, field)


def _from_seconds(seconds: float, value: object, field: str) -> timedelta:
    if not math.isfinite(seconds):
        raise _fail(value, field, "not a finite number")
    if seconds < 0:
        raise _fail(value, field, "must not be negative")
    if seconds > _LIMIT.total_seconds():
        raise _fail(value, field, "too long")
    return timedelta(seconds=seconds)


def _from_units(text: str, value: object, field: str) -> timedelta:
    total = timedelta()
    position = 0
    seen: list[str] = []
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        unit = match.group(2)
        if seen and _ORDER.index(unit) <= _ORDER.index(seen[-1]):
            raise _fail(value, field, f"unit {unit!r} repeated or out of order")
        seen.append(unit)
        amount = float(match.group(1))
        if amount * _UNITS[unit].total_seconds() > _LIMIT.total_seconds():
            raise _fail(value, field, "too long")
        total += amount * _UNITS[unit]
        position = match.end()
    if position != len(text) or not seen:
        raise _fail(value, field, "not understood")
    if total > _LIMIT:
        raise _fail(value, field, "too long")
    return total


def format_duration(value: timedelta) -> str:
    """The compact form of a duration, the inverse of :func:`parse_duration`.

    >>> format_duration(timedelta(minutes=90))
    '1h30m'
    >>> format_duration(timedelta(0))
    '0s'
    """
    if value < timedelta(0):
        raise ValueError(f"cannot format a negative duration ({value})")
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    if micros == 0:
        return "0s"
    parts: list[str] = []
    for unit in ("d", "h", "m"):
        size = int(_UNITS[unit].total_seconds()) * 1_000_000
        count, micros = divmod(micros, size)
        if count:
            parts.append(f"{count}{unit}")
    seconds, rest = divmod(micros, 1_000_000)
    if rest % 1000:  # sub-millisecond precision: fall back to decimal seconds
        digits = f"{seconds}.{rest:06d}".rstrip("0")
        parts.append(f"{digits}s")
    else:
        if seconds:
            parts.append(f"{seconds}s")
        if rest:
            parts.append(f"{rest // 1000}ms")
    return "".join(parts)


def _coerce(value: object) -> object:
    """Pydantic ``before`` hook: durations in, ``timedelta`` out; other types fall through."""
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError(f"must not be negative (got {format_duration(-value)} negative)")
        return value
    if isinstance(value, str | int | float):
        return parse_duration(value)
    raise ValueError(f"a {type(value).__name__} is not a duration; expected {ACCEPTED_FORMS}")


Duration = Annotated[
    timedelta,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str),
]
"""A ``timedelta`` field that accepts ``"15m"``-style strings or seconds and dumps the string."""
