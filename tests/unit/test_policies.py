"""Scheduling policies: catch-up, overlap, jitter and resume, as tables of hand-made cases."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.policies import (
    MISSED,
    OVERLAP,
    CatchupDecision,
    CatchupMode,
    CatchupPolicy,
    OverlapDecision,
    OverlapMode,
    OverlapPolicy,
    jitter_offset,
    next_run_after,
    next_run_after_resume,
)
from shared.schedule import parse_schedule

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def ago(minutes: int) -> datetime:
    return NOW - timedelta(minutes=minutes)


def minutes_ago(times: tuple[datetime, ...]) -> list[int]:
    return [int((NOW - t) / timedelta(minutes=1)) for t in times]


# ------------------------------------------------------------------------------ catch-up
M = timedelta(minutes=1)
CATCHUP = [
    # mode, start_deadline, cap, due (minutes ago), run (minutes ago), skipped (minutes ago)
    pytest.param("none", None, 100, [10, 5, 1], [1], [10, 5], id="none-runs-only-a-current-fire"),
    pytest.param("none", None, 100, [10, 5], [], [10, 5], id="none-runs-nothing-stale"),
    pytest.param("none", None, 100, [2], [2], [], id="none-grace-is-inclusive"),
    pytest.param("none", None, 100, [3], [], [3], id="none-just-past-grace-is-missed"),
    pytest.param("none", 15 * M, 100, [30, 10, 5], [5], [30, 10], id="none-with-deadline"),
    pytest.param("none", 1 * M, 100, [5], [], [5], id="none-with-short-deadline"),
    pytest.param("none", None, 100, [], [], [], id="none-nothing-due"),
    pytest.param("latest", None, 100, [600, 300], [300], [600], id="latest-runs-the-newest"),
    pytest.param("latest", None, 100, [6000], [6000], [], id="latest-without-deadline-any-age"),
    pytest.param("latest", 10 * M, 100, [60, 30], [], [60, 30], id="latest-too-late"),
    pytest.param("latest", 10 * M, 100, [60, 5], [5], [60], id="latest-within-deadline"),
    pytest.param("latest", None, 100, [], [], [], id="latest-nothing-due"),
    pytest.param("all", None, 100, [3, 2, 1], [3, 2, 1], [], id="all-runs-everything-oldest-first"),
    pytest.param("all", None, 2, [4, 3, 2, 1], [2, 1], [4, 3], id="all-cap-keeps-the-newest"),
    pytest.param("all", 3 * M, 100, [10, 5, 3, 1], [3, 1], [10, 5], id="all-drops-beyond-deadline"),
    pytest.param("all", 10 * M, 2, [20, 8, 6, 4], [6, 4], [20, 8], id="all-deadline-then-cap"),
    pytest.param("all", None, 100, [], [], [], id="all-nothing-due"),
]


@pytest.mark.parametrize(("mode", "deadline", "cap", "due", "run", "skipped"), CATCHUP)
def test_catchup_policy_decides_which_due_fires_run_and_which_are_missed(
    *,
    mode: CatchupMode,
    deadline: timedelta | None,
    cap: int,
    due: list[int],
    run: list[int],
    skipped: list[int],
) -> None:
    policy = CatchupPolicy(mode=mode, start_deadline=deadline, cap=cap)
    decision = policy.decide([ago(m) for m in due], NOW)
    assert minutes_ago(decision.run) == run
    assert minutes_ago(tuple(t for t, _ in decision.skipped)) == skipped
    assert all(reason == MISSED for _, reason in decision.skipped)


def test_catchup_every_due_fire_is_either_run_or_skipped_once() -> None:
    due = [ago(m) for m in range(300, 0, -1)]
    decision = CatchupPolicy(mode="all", cap=100).decide(due, NOW)
    assert len(decision.run) == 100
    assert sorted([*decision.run, *(t for t, _ in decision.skipped)]) == due


def test_catchup_sorts_and_deduplicates_its_input() -> None:
    decision = CatchupPolicy(mode="all").decide([ago(1), ago(3), ago(1), ago(2)], NOW)
    assert decision == CatchupDecision(run=(ago(3), ago(2), ago(1)))


def test_catchup_grace_is_a_parameter() -> None:
    policy = CatchupPolicy(mode="none", grace=timedelta(minutes=10))
    assert policy.decide([ago(9)], NOW).run == (ago(9),)


def test_catchup_refuses_a_fire_time_in_the_future() -> None:
    with pytest.raises(ValueError, match="after now"):
        CatchupPolicy().decide([NOW + timedelta(seconds=1)], NOW)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "sometimes"},
        {"cap": 0},
        {"start_deadline": timedelta(minutes=-1)},
        {"grace": timedelta(seconds=-1)},
    ],
)
def test_catchup_policy_rejects_nonsense_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies per setting
        CatchupPolicy(**kwargs)  # type: ignore[arg-type]


def test_catchup_policy_is_frozen() -> None:
    policy = CatchupPolicy()
    with pytest.raises(AttributeError):
        policy.mode = "all"  # type: ignore[misc]


# ------------------------------------------------------------------------------- overlap
OVERLAP_CASES = [
    # mode, active, buffered, number of fires, run (indexes), buffer (indexes), skip (indexes)
    pytest.param("allow", 3, 0, 2, [0, 1], [], [], id="allow-runs-alongside-active"),
    pytest.param("allow", 0, 0, 3, [0, 1, 2], [], [], id="allow-runs-every-fire"),
    pytest.param("skip", 0, 0, 1, [0], [], [], id="skip-idle-runs"),
    pytest.param("skip", 1, 0, 1, [], [], [0], id="skip-while-active"),
    pytest.param("skip", 0, 0, 3, [0], [], [1, 2], id="skip-several-due-runs-the-oldest"),
    pytest.param("skip", 0, 1, 1, [], [], [0], id="skip-while-one-is-waiting"),
    pytest.param("buffer_one", 0, 0, 1, [0], [], [], id="buffer-one-idle-runs"),
    pytest.param("buffer_one", 1, 0, 1, [], [0], [], id="buffer-one-waits-behind-active"),
    pytest.param("buffer_one", 1, 1, 1, [], [], [0], id="buffer-one-only-one-waits"),
    pytest.param("buffer_one", 0, 0, 3, [0], [1], [2], id="buffer-one-run-wait-skip"),
    pytest.param("buffer_one", 2, 0, 3, [], [0], [1, 2], id="buffer-one-keeps-the-oldest"),
    pytest.param("buffer_one", 0, 1, 2, [], [], [0, 1], id="buffer-one-waiting-goes-first"),
    pytest.param("buffer_one", 1, 0, 0, [], [], [], id="buffer-one-nothing-to-do"),
]


@pytest.mark.parametrize(
    ("mode", "active", "buffered", "count", "run", "buffer", "skip"), OVERLAP_CASES
)
def test_overlap_policy_decides_run_buffer_or_skip_per_fire(
    *,
    mode: OverlapMode,
    active: int,
    buffered: int,
    count: int,
    run: list[int],
    buffer: list[int],
    skip: list[int],
) -> None:
    fires = [ago(10 - i) for i in range(count)]  # ascending
    decision = OverlapPolicy(mode).decide(fires, active=active, buffered=buffered)
    assert decision == OverlapDecision(
        run=tuple(fires[i] for i in run),
        buffer=tuple(fires[i] for i in buffer),
        skipped=tuple((fires[i], OVERLAP) for i in skip),
    )


def test_overlap_policy_orders_fires_oldest_first() -> None:
    decision = OverlapPolicy("buffer_one").decide([ago(1), ago(5)], active=0)
    assert decision.run == (ago(5),)
    assert decision.buffer == (ago(1),)


@pytest.mark.parametrize(("active", "buffered"), [(-1, 0), (0, -1)])
def test_overlap_policy_rejects_negative_counts(active: int, buffered: int) -> None:
    with pytest.raises(ValueError, match="negative"):
        OverlapPolicy("skip").decide([NOW], active=active, buffered=buffered)


def test_overlap_policy_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown overlap mode"):
        OverlapPolicy("queue")  # type: ignore[arg-type]


# -------------------------------------------------------------------------------- jitter
@pytest.mark.parametrize("name", ["daily-report", "a", "", "ünïcødé-workflow"])
@pytest.mark.parametrize("seconds", [1, 30, 3600])
def test_jitter_is_deterministic_and_within_range(name: str, seconds: int) -> None:
    max_jitter = timedelta(seconds=seconds)
    offset = jitter_offset(name, max_jitter)
    assert timedelta(0) <= offset < max_jitter
    assert jitter_offset(name, max_jitter) == offset


def test_jitter_of_zero_is_zero() -> None:
    assert jitter_offset("daily-report", timedelta(0)) == timedelta(0)


def test_jitter_rejects_a_negative_maximum() -> None:
    with pytest.raises(ValueError, match="negative"):
        jitter_offset("daily-report", timedelta(seconds=-1))


def test_jitter_spreads_workflows_over_the_whole_range() -> None:
    max_jitter = timedelta(seconds=60)
    offsets = [jitter_offset(f"workflow-{i}", max_jitter) for i in range(1000)]
    assert len(set(offsets)) > 990
    assert min(offsets) < timedelta(seconds=3)
    assert max(offsets) > timedelta(seconds=57)
    halves = sum(o < timedelta(seconds=30) for o in offsets)
    assert 400 < halves < 600


def test_jitter_is_the_same_after_a_restart_with_another_hash_seed() -> None:
    code = (
        "from datetime import timedelta;"
        "from scheduler.policies import jitter_offset;"
        "print(jitter_offset('daily-report', timedelta(minutes=5)) // timedelta(microseconds=1))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    here = jitter_offset("daily-report", timedelta(minutes=5)) // timedelta(microseconds=1)
    assert int(out) == here


# -------------------------------------------------------------------------------- resume
def test_resume_recomputes_next_run_from_now_without_a_storm() -> None:
    schedule = parse_schedule("0 * * * *")
    paused_at = datetime(2025, 6, 1, 8, 30, tzinfo=UTC)  # months of missed hourly fires
    now = datetime(2026, 1, 1, 12, 34, tzinfo=UTC)
    assert next_run_after(schedule, paused_at) == datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
    assert next_run_after_resume(schedule, now) == datetime(2026, 1, 1, 13, 0, tzinfo=UTC)


def test_resume_at_exactly_a_fire_time_waits_for_the_next_one() -> None:
    schedule = parse_schedule("0 * * * *")
    assert next_run_after_resume(schedule, NOW) == NOW + timedelta(hours=1)


def test_resume_of_a_one_shot_schedule_in_the_past_has_no_next_run() -> None:
    schedule = parse_schedule("at(2025-01-01T00:00:00)")
    assert next_run_after_resume(schedule, NOW) is None
