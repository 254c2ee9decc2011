"""The retry back-off schedule: a pure object, table-tested (no clock, no global randomness).

``Backoff.delay(attempt, rng)`` is the wait after failed attempt number ``attempt`` (1-based):
``initial * multiplier ** (attempt - 1)`` capped at ``max``; with ``jitter: full`` a uniformly
random delay between 0 and that value (AWS's "full jitter"), drawn from the given random source.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, Protocol

from shared.definition import RetrySpec


class RandomSource(Protocol):
    def uniform(self, a: float, b: float) -> float: ...


@dataclass(frozen=True)
class Backoff:
    initial: float
    """Seconds before the second attempt."""
    maximum: float
    multiplier: float = 2.0
    jitter: Literal["full", "none"] = "full"

    @classmethod
    def from_spec(cls, spec: RetrySpec) -> Backoff:
        return cls(
            initial=spec.initial.total_seconds(),
            maximum=spec.max.total_seconds(),
            multiplier=spec.multiplier,
            jitter=spec.jitter,
        )

    def ceiling(self, attempt: int) -> float:
        """The un-jittered delay after failed attempt ``attempt`` (1-based), in seconds."""
        if attempt < 1:
            raise ValueError(f"attempt is 1-based, got {attempt}")
        exponent = attempt - 1
        # multiplier ** exponent overflows for silly attempts; the cap makes that moot
        try:
            raw = self.initial * self.multiplier**exponent
        except OverflowError:
            raw = self.maximum
        return min(raw, self.maximum)

    def delay(self, attempt: int, rng: RandomSource | None = None) -> float:
        ceiling = self.ceiling(attempt)
        if self.jitter == "none" or ceiling <= 0:
            return ceiling
        source = rng if rng is not None else random.SystemRandom()
        return source.uniform(0.0, ceiling)

    def delay_timedelta(self, attempt: int, rng: RandomSource | None = None) -> timedelta:
        return timedelta(seconds=self.delay(attempt, rng))
