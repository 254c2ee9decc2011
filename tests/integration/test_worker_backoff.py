"""The retry back-off schedule, as a table: attempt number and random source in, delay out."""

from __future__ import annotations

import random

import pytest

from shared.definition import RetrySpec
from worker.backoff import Backoff


class Fixed:
    """A random source that always returns the same fraction of the range."""

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.fraction


@pytest.mark.parametrize(
    ("attempt", "jitter", "fraction", "expected"),
    [
        (1, "none", 0.5, 2.0),
        (2, "none", 0.5, 4.0),
        (3, "none", 0.5, 8.0),
        (4, "none", 0.5, 16.0),
        (5, "none", 0.5, 30.0),  # capped at max
        (50, "none", 0.5, 30.0),
        (5000, "none", 0.5, 30.0),  # no overflow
        (1, "full", 0.0, 0.0),
        (1, "full", 0.5, 1.0),
        (1, "full", 1.0, 2.0),
        (3, "full", 0.25, 2.0),
        (9, "full", 0.5, 15.0),
    ],
)
def test_the_backoff_delay_grows_by_the_multiplier_up_to_max_with_optional_full_jitter(
    attempt: int, jitter: str, fraction: float, expected: float
) -> None:
    backoff = Backoff(initial=2.0, maximum=30.0, multiplier=2.0, jitter=jitter)  # type: ignore[arg-type]
    assert backoff.delay(attempt, Fixed(fraction)) == pytest.approx(expected)


def test_full_jitter_stays_between_zero_and_the_ceiling() -> None:
    backoff = Backoff(initial=1.0, maximum=10.0, multiplier=3.0, jitter="full")
    rng = random.Random(3)
    for attempt in range(1, 8):
        for _ in range(50):
            assert 0.0 <= backoff.delay(attempt, rng) <= backoff.ceiling(attempt)


def test_a_backoff_is_built_from_a_definitions_retry_spec() -> None:
    spec = RetrySpec.model_validate(
        {"max_attempts": 4, "initial": "500ms", "max": "3s", "multiplier": 3, "jitter": "none"}
    )
    backoff = Backoff.from_spec(spec)
    assert [backoff.delay(n) for n in (1, 2, 3)] == [0.5, 1.5, 3.0]
    assert [backoff.delay(n) for n in (1, 2, 3)] == [
        spec.delay(n).total_seconds() for n in (1, 2, 3)
    ]


def test_attempts_are_one_based() -> None:
    with pytest.raises(ValueError, match="1-based"):
        Backoff(initial=1.0, maximum=2.0).delay(0)
