"""How long until a waiting patient is called: a range in minutes, leaning pessimistic.

Pure arithmetic over a folded queue (adapter.queueing.line). A patient with ``n`` ahead waits
for the consult now running to end, then for ``n`` turns of the doctor. A turn is a consult
(or, for a patient called and absent, the minute or two the doctor waits) plus the pause before
the next call. The doctor's consult length is learned as the day goes: a recency-weighted mean
of their consults, shrunk toward a prior (their consults of earlier sessions when known, else
the configured default) so the first patients get a sensible figure. A doctor who has not
started yet is expected at the session's start plus their usual lateness. Patients booked
before this one but not yet checked in may still arrive and go first; part of them is counted.

The spread is that of a sum of skewed (lognormal) consults plus the uncertainty of the learned
mean; the range reaches further above the expectation than below it, so that a patient is
rarely called later than the range's upper end (bench/queue_eta.py measures how rarely).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from adapter.queueing.line import LineState, Queue

# A booked patient not there this long after their time is counted a no-show (the day's share).
LATE_ARRIVAL = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class Prior:
    """What is assumed before a doctor's own consults say otherwise (mappings/queue.toml)."""

    consult_minutes: float = 8.0  # a consult, when nothing of the doctor is known
    weight: float = 4.0  # how many consults the prior counts for against the day's own
    spread: float = 0.5  # log standard deviation of a consult
    late_start_minutes: float = 5.0  # how late a doctor starts, when nothing is known
    absent_minutes: float = 2.0  # the doctor's wait for a patient called and absent
    absent_share: float = 0.05  # calls that find nobody
    gap_minutes: float = 0.7  # between a consult's end and the next call
    no_show_share: float = 0.08  # booked patients who never come, before the day says
    arrival_lead_minutes: float = 20.0  # booked patients come about this early...
    arrival_spread_minutes: float = 15.0  # ...give or take this
    below: float = 1.2  # the range's lower end: expectation - below * sd
    above: float = 2.2  # the upper end: expectation + above * sd
    decay: float = 0.9  # the weight of each older consult relative to the next


@dataclass(frozen=True)
class History:
    """The doctor's earlier sessions: consult minutes (latest last) and late starts."""

    consults: Sequence[float] = ()
    late_starts: Sequence[float] = ()


@dataclass(frozen=True)
class WaitRange:
    """Minutes until the call: a range (whole minutes) and the expectation it is built on."""

    low: int
    high: int
    expected: float
    ahead: int

    @property
    def midpoint(self) -> float:
        """The middle of the range, in minutes."""
        return (self.low + self.high) / 2


def _minutes(delta: dt.timedelta) -> float:
    return delta.total_seconds() / 60


def _weighted(values: Sequence[float], decay: float) -> tuple[float, float]:
    """(sum of weights, weighted sum), the latest value weighing most."""
    weight = total = 0.0
    w = 1.0
    for value in reversed(values):
        weight += w
        total += w * value
        w *= decay
    return weight, total


def consult_pace(queue: Queue, history: History, prior: Prior) -> tuple[float, float, int]:
    """(expected consult minutes, log sd, consults seen) of the doctor now."""
    today = [_minutes(c.ended_at - c.called_at) for c in queue.consults if not c.absent]
    earlier = list(history.consults)[-30:]
    if earlier:
        base = sum(earlier) / len(earlier)
        base_logs = [math.log(max(v, 0.2)) for v in earlier]
        mean_log = sum(base_logs) / len(base_logs)
        base_sd = math.sqrt(sum((v - mean_log) ** 2 for v in base_logs) / len(base_logs)) \
            if len(base_logs) > 2 else prior.spread
        base_weight = prior.weight + min(len(earlier), 20) / 4
    else:
        base, base_sd, base_weight = prior.consult_minutes, prior.spread, prior.weight
    weight, total = _weighted(today, prior.decay)
    mean = (base_weight * base + total) / (base_weight + weight)
    logs = [math.log(max(v, 0.2)) for v in today]
    if len(logs) > 2:
        m = sum(logs) / len(logs)
        sd_today = math.sqrt(sum((v - m) ** 2 for v in logs) / (len(logs) - 1))
        sd = (base_weight * base_sd + len(logs) * sd_today) / (base_weight + len(logs))
    else:
        sd = base_sd
    return mean, sd, len(today) + len(earlier)


def turn_minutes(queue: Queue, consult: float, prior: Prior) -> tuple[float, float]:
    """(minutes per patient ahead, the pause between calls) from today's calls and absences."""
    calls = sorted(queue.consults, key=lambda c: c.called_at)
    absent = sum(1 for c in calls if c.absent)
    share = (absent + prior.absent_share * 10) / (len(calls) + 10)
    gaps = [_minutes(b.called_at - a.ended_at) for a, b in zip(calls, calls[1:], strict=False)]
    gaps = [g for g in gaps if 0 <= g <= 5]  # a longer pause is an empty line, not the pace
    gap = (prior.gap_minutes * 3 + sum(gaps)) / (3 + len(gaps))
    return (1 - share) * consult + share * prior.absent_minutes + gap, gap


def _no_show_share(queue: Queue, now: dt.datetime, prior: Prior) -> float:
    """Of the registrations whose time is well past, the share that never checked in."""
    due = [ln for ln in queue.lines.values()
           if ln.slot_start is not None and ln.slot_start + LATE_ARRIVAL < now]
    absent = sum(1 for ln in due if ln.arrived_at is None and ln.state is not LineState.CANCELLED)
    return (prior.no_show_share * 10 + absent) / (10 + len(due))


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _coming_first(queue: Queue, visit_number: str, now: dt.datetime, call_at: dt.datetime,
                  no_show: float, prior: Prior) -> float:
    """How many of those booked ahead but not checked in are expected to come before the
    call (they are called by number, so they go first). A booked patient arrives about
    ``arrival_lead_minutes`` before their time, give or take ``arrival_spread_minutes``, or
    never; one not there yet is less likely to come soon."""
    me = queue.lines[visit_number]
    expected = 0.0
    for line in queue.lines.values():
        if line.state is not LineState.REGISTERED or line.queue_number >= me.queue_number:
            continue
        if line.slot_start is None:
            expected += 1 - no_show
            continue
        mean = line.slot_start - dt.timedelta(minutes=prior.arrival_lead_minutes)
        spread = prior.arrival_spread_minutes
        by_now = _phi(_minutes(now - mean) / spread)
        by_call = _phi(_minutes(call_at - mean) / spread)
        still = (1 - no_show) * (1 - by_now) + no_show
        expected += (1 - no_show) * max(by_call - by_now, 0.0) / still
    return expected


def estimate_wait(queue: Queue, visit_number: str, now: dt.datetime, *,
                  session_start: dt.datetime, prior: Prior | None = None,
                  history: History | None = None) -> WaitRange | None:
    """The wait of a waiting registration (None when it is not in the line)."""
    prior, history = prior or Prior(), history or History()
    ahead = queue.position(visit_number)
    if ahead is None:
        return None
    consult, sd, seen = consult_pace(queue, history, prior)
    turn, gap = turn_minutes(queue, consult, prior)
    cv = math.sqrt(math.exp(sd * sd) - 1)  # of a lognormal consult
    variance = 0.0
    if queue.started_at is None:
        lates = list(history.late_starts)
        late = (prior.late_start_minutes * 2 + sum(lates)) / (2 + len(lates))
        first = max(_minutes(session_start - now) + late, late * 0.3, 1.0)
        variance += (0.6 * late + 1.0) ** 2
    else:
        current = queue.in_consult()
        if current is not None and current.called_at is not None:
            elapsed = _minutes(now - current.called_at)
            # A lognormal consult that has run long is expected to run on a little longer.
            first = max(consult - elapsed, 0.3 * consult) + gap
            variance += (cv * consult * 0.7) ** 2
        else:
            first = gap
    no_show = _no_show_share(queue, now, prior)
    ahead_eff = float(ahead)
    for _ in range(30):  # those still to come depend on when the call is expected
        call_at = now + dt.timedelta(minutes=first + ahead_eff * turn)
        coming = ahead + _coming_first(queue, visit_number, now, call_at, no_show, prior)
        if abs(coming - ahead_eff) < 0.05:
            break
        ahead_eff = coming
    expected = first + ahead_eff * turn
    variance += ahead_eff * (cv * consult) ** 2
    variance += (ahead_eff * consult) ** 2 * (sd * sd) / (prior.weight + seen)
    spread = math.sqrt(variance)
    low = max(expected - prior.below * spread, 0.0)
    high = expected + prior.above * spread
    return WaitRange(math.floor(low), max(math.ceil(high), math.floor(low) + 1), expected, ahead)
