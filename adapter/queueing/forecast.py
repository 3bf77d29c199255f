"""The rest of a doctor's session played forward: when is a waiting patient called?

Pure and seeded. The doctor calls the checked-in patients by number; a booked patient with an
earlier number who has not checked in yet is called before this one only if they arrive before
this one's call, so the wait is a race between the doctor's pace and the arrivals. No single
formula follows that race well (a doctor who keeps up with the bookings empties the hall now
and then, and a walk-in waiting behind every booked number is called at such a moment), so the
session is played forward a few hundred times from what is known now: each consult drawn from
the doctor's learned (lognormal) law, each call finding nobody by the learned share, each
booked patient still expected arriving at a time drawn from the learned arrival law or not at
all. The wait is read off those plays: its median and quantiles.
"""

from __future__ import annotations

import bisect
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

_NORMAL = statistics.NormalDist()


@dataclass(frozen=True)
class Pace:
    """How the doctor works, as learned so far (minutes)."""

    consult_median: float  # of a consult (lognormal)
    consult_sigma: float  # its log standard deviation
    uncertainty: float  # log standard deviation of the learned median itself
    gap: float  # between a consult's end and the next call
    absent_share: float  # calls that find nobody
    absent_minutes: float  # what such a call costs the doctor


@dataclass(frozen=True)
class Start:
    """When the doctor's next call may come: after ``at_least`` minutes and, for a doctor who
    has not started, a late start drawn as ``late_median`` x lognormal(``late_sigma``) after
    the session's start, ``elapsed`` minutes ago (negative: the session is still to start)."""

    at_least: float = 0.0
    late_median: float = 0.0
    late_sigma: float = 0.5
    elapsed: float = 0.0
    running: float | None = None  # minutes the consult in the room has run, when there is one


@dataclass(frozen=True)
class Expected:
    """A booked patient ahead who has not checked in: will they come before the call?
    ``chance`` that they still come; if they do, at ``mean`` +- ``spread`` minutes from now
    (normal), but not before now."""

    chance: float
    mean: float
    spread: float

    def draw(self, rng: random.Random) -> float | None:
        """Minutes from now until they check in, or None when they do not come."""
        if rng.random() >= self.chance:
            return None
        floor = _NORMAL.cdf(-self.mean / self.spread)  # already past: they come from now on
        u = floor + (1 - floor) * rng.random()
        return max(self.mean + self.spread * _NORMAL.inv_cdf(min(max(u, 1e-9), 1 - 1e-9)), 0.0)


def _consult(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def _first_call(rng: random.Random, start: Start, median: float, pace: Pace) -> float:
    """Minutes from now to the doctor's next call."""
    if start.running is not None:  # the consult in the room: one longer than it has run
        for _ in range(20):
            length = _consult(rng, median, pace.consult_sigma)
            if length > start.running:
                return max(length - start.running, start.at_least) + pace.gap
        return max(0.3 * median, start.at_least) + pace.gap
    if start.late_median > 0 or start.elapsed < 0:  # not started yet: later than now
        for _ in range(20):
            late = start.late_median * math.exp(rng.gauss(0.0, start.late_sigma))
            if late > start.elapsed:
                return max(late - start.elapsed, start.at_least)
        return max(rng.expovariate(1 / max(0.3 * start.late_median, 1.0)), start.at_least)
    return start.at_least


def play_once(rng: random.Random, ahead: int, expected: Sequence[Expected], start: Start,
              pace: Pace) -> float:
    """One possible future: minutes until the call of the patient with ``ahead`` checked in
    before them and ``expected`` still to come (those who arrive in time go first)."""
    median = pace.consult_median * math.exp(rng.gauss(0.0, pace.uncertainty))
    arrivals = sorted(t for t in (e.draw(rng) for e in expected) if t is not None)
    t = _first_call(rng, start, median, pace)
    waiting, came = ahead, 0
    while True:
        arrived = bisect.bisect_right(arrivals, t)
        waiting, came = waiting + arrived - came, arrived
        if waiting <= 0:
            return t
        waiting -= 1
        if rng.random() < pace.absent_share:
            t += pace.absent_minutes + pace.gap
        else:
            t += max(_consult(rng, median, pace.consult_sigma), 0.5) + pace.gap


def play_forward(seed: str, ahead: int, expected: Sequence[Expected], start: Start,
                 pace: Pace, plays: int = 300) -> list[float]:
    """The wait in each of ``plays`` futures, sorted; the same seed, the same futures."""
    rng = random.Random(seed)
    return sorted(play_once(rng, ahead, expected, start, pace) for _ in range(plays))


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted values (linear between neighbours)."""
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)
