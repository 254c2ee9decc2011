"""Schedule expressions: one parser for everything a workflow's ``schedule:`` may say.

Four notations are accepted (see ``docs/schedules.md`` for the user-facing description):

* 5-field cron, Vixie style: ``*/15 9-17 * * 1-5``, names, ranges, steps, lists and the
  ``@hourly @daily @midnight @weekly @monthly @yearly @annually`` macros. When day-of-month and
  day-of-week are both restricted either one matching fires; as in Vixie cron a field that starts
  with ``*`` (``*/2``) counts as unrestricted for that rule.
* AWS ``cron(min hour dom month dow year)`` with ``?``, ``L``, ``W``, ``LW``, ``#`` and ``nL``;
  day-of-week 1-7 = SUN-SAT; exactly one of day-of-month / day-of-week is ``?``.
* ``rate(N minute(s)|hour(s)|day(s))``: ``anchor + k * period``, pure elapsed time.
* ``at(yyyy-mm-ddThh:mm:ss)``: one fire at that local time.

How a cron schedule is computed: the expression is validated here, field by field (so an error
names the field), then handed to croniter in a canonical 5-field form. croniter only ever sees
naive *wall-clock* times, where its calendar arithmetic is exact; what croniter cannot express is
layered on top: the AWS year field (croniter stops at 2099) and ``LW``. Wall-clock times are
mapped to instants by walking the zone's timeline as segments of constant UTC offset, which is
where the DST rules live:

* a *fixed-time* schedule (neither the minute nor the hour field starts with ``*`` or uses a step
  ``/``) fires once for a local time skipped by spring-forward, at the first instant after the gap
  (``dst="vixie"``), or not at all (``dst="skip"``); a local time repeated by fall-back fires
  once, at its first occurrence;
* any other schedule follows elapsed time: it fires at every wall-clock time the clock actually
  shows, so nonexistent times are dropped and repeated ones fire twice.
"""

from __future__ import annotations

import bisect
import calendar
import copy
import functools
import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, NamedTuple, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from shared.errors import InvalidSchedule

__all__ = [
    "EPOCH",
    "AtSchedule",
    "CronSchedule",
    "DstMode",
    "RateSchedule",
    "Schedule",
    "jitter_offset",
    "parse_schedule",
    "preview",
    "validate_timezone",
]

DstMode = Literal["vixie", "skip"]
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_SECOND: Final = timedelta(seconds=1)
_NOT_ZONES: Final = frozenset({"localtime", "posixrules"})  # host-dependent files, not zones
_UTC_NAMES: Final = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Zulu", "Zulu"})
_MONTHS: Final = {
    name: i
    for i, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
_DAY_NAMES: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_UNIX_DAYS: Final = {name: i for i, name in enumerate(_DAY_NAMES)}  # SUN=0 .. SAT=6
_AWS_DAYS: Final = {name: i for i, name in enumerate(_DAY_NAMES, start=1)}  # SUN=1 .. SAT=7
_MACROS: Final = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MAX_DAYS: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # Feb counts its leap day
_RATE_UNITS: Final = {
    "minute": timedelta(minutes=1),
    "minutes": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "hours": timedelta(hours=1),
    "day": timedelta(days=1),
    "days": timedelta(days=1),
}
_AT_RE: Final = re.compile(r"at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)", re.ASCII)
_INT_RE: Final = re.compile(r"\d+", re.ASCII)
_CRON_TOKEN_RE: Final = re.compile(r"[0-9A-Za-z*/,?#-]+", re.ASCII)
_AWS_ONLY_RE: Final = re.compile(
    r"(^|,)(\?|L|LW|\d+[LW]|[^,]*#[^,]*)(,|$)", re.ASCII | re.IGNORECASE
)


# ------------------------------------------------------------------------------ public API
class Schedule(ABC):
    """A parsed schedule. Immutable; every method is pure and safe to share between threads."""

    expression: str
    timezone: str

    @abstractmethod
    def _fires_after(self, after: datetime) -> Iterator[datetime]:
        """Every fire strictly after ``after`` (aware, UTC), ascending."""

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire strictly after ``after``, in UTC; ``None`` when there is none."""
        return next(self._fires_after(_aware(after, "after")), None)

    def fire_times(
        self, after: datetime, until: datetime, limit: int | None = None
    ) -> list[datetime]:
        """All fires in ``(after, until]``, UTC, ascending, at most ``limit`` of them."""
        until = _aware(until, "until")
        out: list[datetime] = []
        if limit is not None and limit <= 0:
            return out
        for fire in self._fires_after(_aware(after, "after")):
            if fire > until:
                break
            out.append(fire)
            if limit is not None and len(out) >= limit:
                break
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.expression!r}, timezone={self.timezone!r})"


def parse_schedule(
    expression: str,
    timezone: str = "UTC",
    *,
    dst: DstMode = "vixie",
    anchor: datetime | None = None,
) -> Schedule:
    """Parse any supported expression; raise :class:`InvalidSchedule` naming the bad field.

    ``anchor`` only matters for ``rate()``: its fires are ``anchor + k * period`` (default: the
    Unix epoch), so they do not move when the process restarts. Results are cached (schedules
    are immutable), so calling this on every scheduler tick is cheap.
    """
    if not isinstance(expression, str):
        raise InvalidSchedule(f"a schedule expression must be a string, not {expression!r}")
    if dst not in ("vixie", "skip"):
        raise InvalidSchedule(f"unknown DST rule {dst!r}: expected 'vixie' or 'skip'")
    if anchor is not None:
        # only rate() uses the anchor; dropping it elsewhere lets every workflow with the
        # same cron expression share one cached schedule
        anchor = _aware(anchor, "anchor") if expression.strip().startswith("rate(") else None
    return _parse_cached(expression, timezone, dst, anchor)


@functools.lru_cache(maxsize=8192)
def _parse_cached(
    expression: str, timezone: str, dst: DstMode, anchor: datetime | None
) -> Schedule:
    zone = validate_timezone(timezone)
    text = expression.strip()
    if not text:
        raise InvalidSchedule("the schedule expression is empty")
    if text.startswith("rate(") and text.endswith(")"):
        return _parse_rate(text, zone, anchor)
    if text.startswith("at(") and text.endswith(")"):
        return _parse_at(text, zone, dst)
    if text.startswith("cron(") and text.endswith(")"):
        return _parse_aws_cron(text, zone, dst)
    if text.startswith("@") or _looks_like_cron(text):
        return _parse_unix_cron(text, zone, dst)
    raise InvalidSchedule(
        f"unrecognised schedule expression '{text}': expected a 5-field cron expression, "
        "cron(...), rate(...) or at(...)"
    )


def _looks_like_cron(text: str) -> bool:
    fields = text.split()
    return (
        2 <= len(fields) <= 7
        and all(_CRON_TOKEN_RE.fullmatch(f) for f in fields)
        and any(c.isdigit() or c == "*" for c in text)
    )


def validate_timezone(name: str) -> str:
    """Return ``name`` if it is a known IANA time zone, else raise :class:`InvalidSchedule`."""
    if not isinstance(name, str) or not name.strip() or name in _NOT_ZONES:
        raise InvalidSchedule(f"unknown time zone {name!r}")
    try:
        _zone(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidSchedule(f"unknown time zone {name!r}") from None
    return name


def preview(
    expression: str,
    timezone: str = "UTC",
    after: datetime | None = None,
    count: int = 5,
    dst: DstMode = "vixie",
    *,
    anchor: datetime | None = None,
) -> list[datetime]:
    """The next ``count`` fires strictly after ``after`` (default: now), in UTC."""
    schedule = parse_schedule(expression, timezone, dst=dst, anchor=anchor)
    start = datetime.now(UTC) if after is None else _aware(after, "after")
    out: list[datetime] = []
    for fire in schedule._fires_after(start):
        if len(out) >= count:
            break
        out.append(fire)
    return out


def jitter_offset(workflow_name: str, max_jitter: timedelta) -> timedelta:
    """A delay in ``[0, max_jitter)`` fixed per workflow name (stable across restarts).

    The name is hashed with BLAKE2b (not Python's salted ``hash``), so every process and every
    restart spreads the same workflows the same way. Resolution: one microsecond.
    """
    if max_jitter < timedelta(0):
        raise ValueError("max_jitter must not be negative")
    span = max_jitter // timedelta(microseconds=1)
    if span == 0:
        return timedelta(0)
    digest = hashlib.blake2b(workflow_name.encode("utf-8"), digest_size=8).digest()
    return timedelta(microseconds=int.from_bytes(digest, "big") % span)


# --------------------------------------------------------------------------- rate and at
@dataclass(frozen=True, repr=False)
class RateSchedule(Schedule):
    """``rate(N unit)``: fires at ``anchor + k * period`` for every integer k; no DST."""

    expression: str
    timezone: str
    period: timedelta
    anchor: datetime = EPOCH

    def _fires_after(self, after: datetime) -> Iterator[datetime]:
        k = (after - self.anchor) // self.period + 1
        try:
            fire = (self.anchor + k * self.period).astimezone(UTC)
        except OverflowError:
            return
        while True:
            yield fire
            try:
                fire += self.period
            except OverflowError:
                return


@dataclass(frozen=True, repr=False)
class AtSchedule(Schedule):
    """``at(...)``: one fire at a local time (a skipped time follows the DST rule)."""

    expression: str
    timezone: str
    local: datetime  # naive wall-clock time in ``timezone``
    dst: DstMode = "vixie"

    def _fires_after(self, after: datetime) -> Iterator[datetime]:
        return _instants(_AtWalls(self.local), self.timezone, after, fixed=True, dst=self.dst)


@dataclass(frozen=True, repr=False)
class CronSchedule(Schedule):
    """A 5-field or AWS cron expression, evaluated in ``timezone``."""

    expression: str
    timezone: str
    spec: str  # the canonical 5-field form croniter evaluates
    day_or: bool
    years: tuple[int, ...] | None  # AWS year field; None = every year
    last_weekday: bool  # AWS ``LW``
    fixed: bool  # fixed-time schedule (see the module docstring)
    dst: DstMode = "vixie"

    def _fires_after(self, after: datetime) -> Iterator[datetime]:
        walls = _CronWalls(_prototype(self.spec, self.day_or), self.years, self.last_weekday)
        return _instants(walls, self.timezone, after, fixed=self.fixed, dst=self.dst)


def _aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


# ------------------------------------------------------------------------------- parsing
def _parse_rate(text: str, zone: str, anchor: datetime | None) -> RateSchedule:
    parts = text[len("rate(") : -1].split()
    if len(parts) != 2:
        raise InvalidSchedule(f"{text}: expected rate(value unit), e.g. rate(15 minutes)")
    value, unit = parts
    if not _INT_RE.fullmatch(value) or int(value) < 1:
        raise InvalidSchedule(f"{text}: the value must be a positive whole number")
    base = _RATE_UNITS.get(unit.lower())
    if base is None:
        raise InvalidSchedule(
            f"{text}: unknown unit '{unit}': expected minute(s), hour(s) or day(s)"
        )
    try:
        period = base * int(value)
    except OverflowError:
        raise InvalidSchedule(f"{text}: the value is too large") from None
    return RateSchedule(
        expression=text,
        timezone=zone,
        period=period,
        anchor=EPOCH if anchor is None else anchor,
    )


def _parse_at(text: str, zone: str, dst: DstMode) -> AtSchedule:
    match = _AT_RE.fullmatch(text)
    if match is None:
        raise InvalidSchedule(f"{text}: expected at(yyyy-mm-ddThh:mm:ss)")
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    try:
        local = datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise InvalidSchedule(f"{text}: not a valid date and time ({exc})") from None
    return AtSchedule(expression=text, timezone=zone, local=local, dst=dst)


class _FieldSpec(NamedTuple):
    name: str
    low: int
    high: int
    names: Mapping[str, int]


_MINUTE = _FieldSpec("minute", 0, 59, {})
_HOUR = _FieldSpec("hour", 0, 23, {})
_DOM = _FieldSpec("day-of-month", 1, 31, {})
_MONTH = _FieldSpec("month", 1, 12, _MONTHS)
_UNIX_DOW = _FieldSpec("day-of-week", 0, 7, _UNIX_DAYS)
_AWS_DOW = _FieldSpec("day-of-week", 1, 7, _AWS_DAYS)
_YEAR = _FieldSpec("year", 1970, 2199, {})


def _field_error(label: str, spec: _FieldSpec, text: str, problem: str) -> InvalidSchedule:
    return InvalidSchedule(f"{label}: {spec.name} field '{text}': {problem}")


def _value(label: str, spec: _FieldSpec, text: str, token: str) -> int:
    if _INT_RE.fullmatch(token):
        value = int(token)
    elif token.upper() in spec.names:
        value = spec.names[token.upper()]
    elif spec.names:
        raise _field_error(label, spec, text, f"'{token}' is not a number or a known name")
    else:
        raise _field_error(label, spec, text, f"'{token}' is not a number")
    if not spec.low <= value <= spec.high:
        raise _field_error(label, spec, text, f"value out of range {spec.low}-{spec.high}")
    return value


def _values(label: str, spec: _FieldSpec, text: str) -> list[int]:
    """``*``, ``a``, ``a-b``, ``*/n``, ``a-b/n``, ``a/n`` (= ``a-max/n``) and lists of them."""
    out: set[int] = set()
    for item in text.split(","):
        if not item:
            raise _field_error(label, spec, text, "empty item in the list")
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not _INT_RE.fullmatch(step_text) or int(step_text) < 1:
                raise _field_error(
                    label, spec, text, f"step '{step_text}' must be a positive whole number"
                )
            step = int(step_text)
        if base == "*":
            low, high = spec.low, spec.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _value(label, spec, text, first), _value(label, spec, text, last)
            if low > high:
                raise _field_error(label, spec, text, f"range {first}-{last} runs backwards")
        else:
            low = _value(label, spec, text, base)
            high = spec.high if slash else low
        out.update(range(low, high + 1, step))
    return sorted(out)


def _join(values: list[int]) -> str:
    return ",".join(str(v) for v in values)


def _is_elapsed(minute: str, hour: str) -> bool:
    """Whether a schedule follows elapsed time rather than fixed local times (DST rule)."""
    return any(f.startswith("*") or "/" in f for f in (minute, hour))


def _parse_unix_cron(text: str, zone: str, dst: DstMode) -> CronSchedule:
    label = f"cron expression '{text}'"
    source = text
    if text.startswith("@"):
        macro = _MACROS.get(text.lower())
        if macro is None:
            raise InvalidSchedule(
                f"{label}: unknown macro; expected one of {', '.join(sorted(_MACROS))}"
            )
        source = macro
    fields = source.split()
    if len(fields) != 5:
        raise InvalidSchedule(
            f"{label}: expected 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(fields)}; AWS syntax is written cron(min hour dom month dow year)"
        )
    minute, hour, dom, month, dow = fields
    for field_spec, field in zip((_MINUTE, _HOUR, _DOM, _MONTH, _UNIX_DOW), fields, strict=True):
        if _AWS_ONLY_RE.search(field):
            raise _field_error(
                label, field_spec, field, "'?', 'L', 'W' and '#' are only valid in AWS cron(...)"
            )
    minutes = _values(label, _MINUTE, minute)
    hours = _values(label, _HOUR, hour)
    doms = _values(label, _DOM, dom)
    months = _values(label, _MONTH, month)
    dows = sorted({d % 7 for d in _values(label, _UNIX_DOW, dow)})
    dom_star, dow_star = dom.startswith("*"), dow.startswith("*")
    if dow_star and not any(d <= _MAX_DAYS[m - 1] for d in doms for m in months):
        raise _field_error(label, _DOM, dom, f"no such day in month field '{month}'")
    spec = " ".join(
        (
            _join(minutes),
            _join(hours),
            "*" if dom == "*" else _join(doms),
            "*" if month == "*" else _join(months),
            "*" if dow == "*" else _join(dows),
        )
    )
    return CronSchedule(
        expression=text,
        timezone=zone,
        spec=spec,
        day_or=not (dom_star or dow_star),  # Vixie: a field starting with '*' is unrestricted
        years=None,
        last_weekday=False,
        fixed=not _is_elapsed(minute, hour),
        dst=dst,
    )


def _parse_aws_cron(text: str, zone: str, dst: DstMode) -> CronSchedule:
    label = text
    fields = text[len("cron(") : -1].split()
    if len(fields) != 6:
        raise InvalidSchedule(
            f"{label}: expected 6 fields (minutes hours day-of-month month day-of-week year), "
            f"got {len(fields)}"
        )
    minute, hour, dom, month, dow, year = fields
    for field_spec, field in zip(
        (_MINUTE, _HOUR, _MONTH, _YEAR), (minute, hour, month, year), strict=True
    ):
        if "?" in field:
            raise _field_error(
                label, field_spec, field, "'?' is only valid in day-of-month or day-of-week"
            )
    if (dom == "?") == (dow == "?"):
        raise InvalidSchedule(f"{label}: one of day-of-month or day-of-week must be '?'")
    minutes = _values(label, _MINUTE, minute)
    hours = _values(label, _HOUR, hour)
    months = _values(label, _MONTH, month)
    years = None if year == "*" else tuple(_values(label, _YEAR, year))
    last_weekday = False
    if dom == "?":
        dom_spec = "*"
        dow_spec = _aws_dow(label, dow)
    else:
        dow_spec = "*"
        dom_spec, last_weekday = _aws_dom(label, dom, month, months)
    spec = " ".join(
        (
            _join(minutes),
            _join(hours),
            dom_spec,
            "*" if month == "*" else _join(months),
            dow_spec,
        )
    )
    schedule = CronSchedule(
        expression=text,
        timezone=zone,
        spec=spec,
        day_or=False,  # one of the day fields is always '*': nothing to combine
        years=years,
        last_weekday=last_weekday,
        fixed=not _is_elapsed(minute, hour),
        dst=dst,
    )
    if years is not None:
        walls = _CronWalls(_prototype(spec, False), years, last_weekday)
        if walls.seek(datetime(years[0], 1, 1), inclusive=True) is None:
            raise _field_error(label, _YEAR, year, "the expression never fires in those years")
    return schedule


def _aws_dom(label: str, dom: str, month: str, months: list[int]) -> tuple[str, bool]:
    """AWS day-of-month → (croniter day-of-month, whether it is ``LW``)."""
    upper = dom.upper()
    if upper == "L":
        return "L", False
    if upper == "LW":
        return "*", True
    if upper.endswith("W"):
        day = upper[:-1]
        if not _INT_RE.fullmatch(day):
            raise _field_error(label, _DOM, dom, "'W' needs one day number before it, e.g. 15W")
        return f"{_value(label, _DOM, dom, day)}W", False
    if "L" in upper or "W" in upper:
        raise _field_error(label, _DOM, dom, "'L', 'LW' and 'nW' must stand alone")
    days = _values(label, _DOM, dom)
    if not any(d <= _MAX_DAYS[m - 1] for d in days for m in months):
        raise _field_error(label, _DOM, dom, f"no such day in month field '{month}'")
    return ("*" if dom == "*" else _join(days)), False


def _aws_dow(label: str, dow: str) -> str:
    """AWS day-of-week (1-7 = SUN-SAT, ``#``, ``nL``, ``L``) → croniter day-of-week (0-6)."""
    upper = dow.upper()
    if upper == "L":  # Quartz: 'L' alone is the last day of the week, Saturday
        return "6"
    items = upper.split(",")
    special = ["#" in item or item.endswith("L") for item in items]
    if not any(special):
        return "*" if dow == "*" else _join([d - 1 for d in _values(label, _AWS_DOW, dow)])
    if not all(special):
        raise _field_error(
            label, _AWS_DOW, dow, "'#' and 'L' cannot be mixed with plain days in one list"
        )
    out: list[str] = []
    for item in items:
        if item.endswith("L"):
            out.append(f"L{_value(label, _AWS_DOW, dow, item[:-1]) - 1}")
            continue
        day, _, nth = item.partition("#")
        if not _INT_RE.fullmatch(nth) or not 1 <= int(nth) <= 5:
            raise _field_error(label, _AWS_DOW, dow, f"'#{nth}': the week must be 1-5")
        out.append(f"{_value(label, _AWS_DOW, dow, day) - 1}#{int(nth)}")
    return ",".join(out)


# ---------------------------------------------------------------------- wall-clock times
class _WallCursor(Protocol):
    def seek(self, lower: datetime, *, inclusive: bool) -> datetime | None:
        """The first wall time after (or at, if inclusive) ``lower``; later calls advance."""

    def advance(self) -> datetime | None:
        """The wall time after the last one returned."""


@functools.lru_cache(maxsize=4096)
def _prototype(spec: str, day_or: bool) -> croniter:
    return croniter(spec, datetime(2000, 1, 1), day_or=day_or)


class _CronWalls:
    """Matching wall-clock times from croniter, filtered by the AWS year field and ``LW``."""

    def __init__(
        self, prototype: croniter, years: tuple[int, ...] | None, last_weekday: bool
    ) -> None:
        self._it: croniter = copy.copy(prototype)
        self._years = years
        self._last_weekday = last_weekday

    def seek(self, lower: datetime, *, inclusive: bool) -> datetime | None:
        # croniter answers "the first whole minute strictly after": one second back makes a
        # whole-minute ``lower`` itself eligible.
        return self._next_from(lower - _SECOND if inclusive else lower)

    def advance(self) -> datetime | None:
        return self._next_from(None)

    def _next_from(self, start: datetime | None) -> datetime | None:
        while True:
            if start is not None:
                self._it.set_current(start, force=True)
            try:
                wall: datetime = self._it.get_next(datetime)
            except (CroniterBadDateError, OverflowError, ValueError):
                return None
            start = None
            if self._years is not None and wall.year not in self._years:
                i = bisect.bisect_right(self._years, wall.year)
                if i == len(self._years):
                    return None
                start = datetime(self._years[i], 1, 1) - _SECOND
                continue
            if self._last_weekday:
                target = _last_weekday(wall.year, wall.month)
                if wall.day != target:
                    if wall.day < target:
                        start = datetime(wall.year, wall.month, target) - _SECOND
                    else:
                        start = datetime(wall.year, wall.month, 1) + timedelta(days=31)
                        start = start.replace(day=1) - _SECOND
                    continue
            return wall


def _last_weekday(year: int, month: int) -> int:
    last = calendar.monthrange(year, month)[1]
    weekday = calendar.weekday(year, month, last)  # Monday = 0
    return last - max(0, weekday - 4)


class _AtWalls:
    def __init__(self, local: datetime) -> None:
        self._local = local

    def seek(self, lower: datetime, *, inclusive: bool) -> datetime | None:
        if self._local > lower or (inclusive and self._local == lower):
            return self._local
        return None

    def advance(self) -> datetime | None:
        return None


# --------------------------------------------------------------------------- time zones
@functools.lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


class _Segment(NamedTuple):
    start: datetime | None  # the transition that began it (None: none known nearby)
    end: datetime | None  # the next transition (or a pseudo-boundary with the same offset)
    offset: timedelta
    prev_offset: timedelta  # the offset just before ``start``


_PROBE: Final = timedelta(hours=6)
_SEARCH_YEARS: Final = 2


class _Timeline:
    """A zone's UTC offsets as segments of constant offset; transitions found once per year."""

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone
        self._transitions: dict[int, list[datetime]] = {}

    def offset(self, instant: datetime) -> timedelta:
        offset = instant.astimezone(self._zone).utcoffset()
        return timedelta(0) if offset is None else offset

    def _year(self, year: int) -> list[datetime]:
        """Instants in UTC year ``year`` at which the offset changes (probing + bisection)."""
        found = self._transitions.get(year)
        if found is not None:
            return found
        found = []
        if 1 < year < 9999:
            start = datetime(year, 1, 1, tzinfo=UTC)
            stop = datetime(year + 1, 1, 1, tzinfo=UTC)
            left, left_offset = start, self.offset(start)
            while left < stop:
                right = min(left + _PROBE, stop)
                right_offset = self.offset(right)
                if right_offset != left_offset:
                    low, high = left, right  # offset(low) == left_offset != offset(high)
                    while high - low > _SECOND:
                        mid = low + (high - low) // 2
                        if self.offset(mid) == left_offset:
                            low = mid
                        else:
                            high = mid
                    found.append(high.replace(microsecond=0))
                left, left_offset = right, right_offset
        self._transitions[year] = found
        return found

    def segment(self, instant: datetime) -> _Segment:
        """The segment containing ``instant``: start <= instant < end."""
        start: datetime | None = None
        for year in range(instant.year, instant.year - _SEARCH_YEARS - 1, -1):
            marks = self._year(year)
            i = bisect.bisect_right(marks, instant)
            if i:
                start = marks[i - 1]
                break
        end: datetime | None = None
        for year in range(instant.year, instant.year + _SEARCH_YEARS + 1):
            marks = self._year(year)
            i = bisect.bisect_right(marks, instant)
            if i < len(marks):
                end = marks[i]
                break
        else:
            if instant.year + _SEARCH_YEARS + 1 < 9999:
                end = datetime(instant.year + _SEARCH_YEARS + 1, 1, 1, tzinfo=UTC)
        offset = self.offset(instant)
        prev_offset = offset if start is None else self.offset(start - _SECOND)
        return _Segment(start, end, offset, prev_offset)


@functools.lru_cache(maxsize=512)
def _timeline(name: str) -> _Timeline | None:
    return None if name in _UTC_NAMES else _Timeline(_zone(name))


def _wall(instant: datetime, offset: timedelta) -> datetime:
    return (instant + offset).replace(tzinfo=None)


def _instant(wall: datetime, offset: timedelta) -> datetime:
    return (wall - offset).replace(tzinfo=UTC)


def _instants(
    walls: _WallCursor, zone: str, after: datetime, *, fixed: bool, dst: DstMode
) -> Iterator[datetime]:
    """Map matching wall-clock times in ``zone`` to the instants they fire at, after ``after``."""
    timeline = _timeline(zone)
    if timeline is None:
        wall = walls.seek(after.replace(tzinfo=None), inclusive=False)
        while wall is not None:
            yield wall.replace(tzinfo=UTC)
            wall = walls.advance()
    else:
        yield from _zoned_instants(walls, timeline, after, fixed=fixed, dst=dst)


def _zoned_instants(
    walls: _WallCursor, timeline: _Timeline, after: datetime, *, fixed: bool, dst: DstMode
) -> Iterator[datetime]:
    segment = timeline.segment(after)
    lower, inclusive = _wall(after, segment.offset), False
    if fixed and segment.start is not None and segment.prev_offset > segment.offset:
        # Just after a fall-back: wall times before ``repeat_end`` were already shown once.
        repeat_end = _wall(segment.start, segment.prev_offset)
        if lower < repeat_end:
            lower, inclusive = repeat_end, True
    wall = walls.seek(lower, inclusive=inclusive)
    while wall is not None:
        end = segment.end
        if end is None:
            yield _instant(wall, segment.offset)
            wall = walls.advance()
            continue
        end_wall = _wall(end, segment.offset)
        while wall is not None and wall < end_wall:
            yield _instant(wall, segment.offset)
            wall = walls.advance()
        if wall is None:
            return
        following = timeline.segment(end)
        if following.offset > segment.offset:  # spring forward: [end_wall, gap_end) never shows
            gap_end = _wall(end, following.offset)
            if wall < gap_end:
                if fixed and dst == "vixie":
                    yield end  # the skipped local time(s) fire once, as the gap ends
                    wall = walls.seek(gap_end, inclusive=False)  # gap_end is that same instant
                else:
                    wall = walls.seek(gap_end, inclusive=True)
        elif following.offset < segment.offset and not fixed:
            # Fall back: the clock shows [start + new offset, end_wall) a second time.
            wall = walls.seek(_wall(end, following.offset), inclusive=True)
        segment = following
