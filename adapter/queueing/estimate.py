"""How long until a waiting patient is called: a range in minutes, leaning pessimistic.

Pure over a folded queue (adapter.queueing.line): what is learned here, the rest of the session
played forward in adapter.queueing.forecast. What is learned, each shrunk from a prior toward
what the day shows:

- the doctor's consult law (lognormal): a recency-weighted mean of today's consults, shrunk
  toward their consults of earlier sessions, else toward the slot length the booking list shows
  (or the configured default); its log spread likewise;
- the pause between a consult's end and the next call, the share of calls that find nobody;
- the doctor's late start (their earlier sessions', else the configured one);
- the day's no-show share, which with the arrival law (booked patients come about 20 minutes
  early, give or take 15) says how likely a booked patient ahead and not there yet still comes.

The wait is the median of the played futures; the range runs from their 3rd to their 92nd
percentile, so it reaches further above the median than below it and a patient is rarely called
after its upper end (bench/queue_eta.py measures how rarely).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from adapter.queueing.forecast import Expected, Pace, Start, play_forward, quantile
from adapter.queueing.line import LineState, Queue

# A booked patient not there this long after their time is counted a no-show (the day's share).
LATE_ARRIVAL = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class Prior:
    """What is assumed before a doctor's own consults say otherwise (mappings/queue.toml)."""

    consult_minutes: float = 8.0  # a consult, when nothing of the doctor is known...
    slot_share: float = 0.9  # ...unless the booking list shows the slot: this share of it
    weight: float = 3.0  # how many consults the prior counts for against the day's own
    spread: float = 0.5  # log standard deviation of a consult
    late_start_minutes: float = 5.0  # how late a doctor starts, when nothing is known
    absent_minutes: float = 2.0  # the doctor's wait for a patient called and absent
    absent_share: float = 0.05  # calls that find nobody
    gap_minutes: float = 0.7  # between a consult's end and the next call
    no_show_share: float = 0.08  # booked patients who never come, before the day says
    arrival_lead_minutes: float = 20.0  # booked patients come about this early...
    arrival_spread_minutes: float = 15.0  # ...give or take this
    decay: float = 0.95  # the weight of each older consult relative to the next
    history_consults: int = 60  # the doctor's latest consults of earlier sessions kept...
    history_share: float = 0.5  # ...each counting for this much of one of today's
    drift: float = 0.1  # log sd of a doctor's pace from one hour to the next
    late_sigma: float = 0.5  # log standard deviation of a late start
    low_quantile: float = 0.03  # the range: these quantiles of the played futures' waits
    high_quantile: float = 0.92
    plays: int = 300  # futures played per estimate


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


def slot_minutes(queue: Queue) -> float | None:
    """The session's slot length, as its booking list shows it: the commonest step between
    consecutive booked times (None when fewer than three lines have one)."""
    starts = sorted({ln.slot_start for ln in queue.lines.values() if ln.slot_start is not None})
    steps = Counter(round(_minutes(b - a)) for a, b in zip(starts, starts[1:], strict=False))
    steps.pop(0, None)
    if len(starts) < 3 or not steps:
        return None
    return float(steps.most_common(1)[0][0])


def consult_pace(queue: Queue, history: History, prior: Prior) -> tuple[float, float, int]:
    """(expected consult minutes, log sd, consults seen) of the doctor now."""
    today = [_minutes(c.ended_at - c.called_at) for c in queue.consults if not c.absent]
    earlier = list(history.consults)[-prior.history_consults:]
    if earlier:
        base = sum(earlier) / len(earlier)
        base_logs = [math.log(max(v, 0.2)) for v in earlier]
        mean_log = sum(base_logs) / len(base_logs)
        base_sd = math.sqrt(sum((v - mean_log) ** 2 for v in base_logs) / len(base_logs)) \
            if len(base_logs) > 2 else prior.spread
        base_weight = prior.weight + len(earlier) * prior.history_share
    else:
        slot = slot_minutes(queue)
        base = prior.consult_minutes if slot is None else prior.slot_share * slot
        base_sd, base_weight = prior.spread, prior.weight
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


def _absent_share(queue: Queue, prior: Prior) -> float:
    """The share of today's calls that found nobody, shrunk toward the prior."""
    absent = sum(1 for c in queue.consults if c.absent)
    return (absent + prior.absent_share * 10) / (len(queue.consults) + 10)


def call_gap(queue: Queue, prior: Prior) -> float:
    """Minutes between a consult's end and the next call, learned from today's calls."""
    calls = sorted(queue.consults, key=lambda c: c.called_at)
    gaps = [_minutes(b.called_at - a.ended_at) for a, b in zip(calls, calls[1:], strict=False)]
    gaps = [g for g in gaps if 0 <= g <= 5]  # a longer pause is an empty line, not the pace
    return (prior.gap_minutes * 3 + sum(gaps)) / (3 + len(gaps))


def _no_show_share(queue: Queue, now: dt.datetime, prior: Prior) -> float:
    """Of the registrations whose time is well past, the share that never checked in."""
    due = [ln for ln in queue.lines.values()
           if ln.slot_start is not None and ln.slot_start + LATE_ARRIVAL < now]
    absent = sum(1 for ln in due if ln.arrived_at is None and ln.state is not LineState.CANCELLED)
    return (prior.no_show_share * 10 + absent) / (10 + len(due))


def _expected(queue: Queue, visit_number: str, now: dt.datetime, no_show: float,
              prior: Prior) -> list[Expected]:
    """The booked patients ahead (an earlier number) not checked in yet, who are called first
    if they arrive in time. A booked patient arrives about ``arrival_lead_minutes`` before
    their time, give or take ``arrival_spread_minutes``, or never; one not there yet is less
    likely to come at all (Bayes on the day's no-show share)."""
    me = queue.lines[visit_number]
    out = []
    for line in queue.lines.values():
        if line.state is not LineState.REGISTERED or line.queue_number >= me.queue_number:
            continue
        spread = prior.arrival_spread_minutes
        if line.slot_start is None:
            mean = 0.0  # no time booked: any moment now
        else:
            mean = _minutes(line.slot_start - now) - prior.arrival_lead_minutes
        still = (1 - no_show) * (1 - _phi(-mean / spread))
        out.append(Expected(still / (still + no_show), mean, spread))
    return out


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def estimate_wait(queue: Queue, visit_number: str, now: dt.datetime, *,
                  session_start: dt.datetime, prior: Prior | None = None,
                  history: History | None = None) -> WaitRange | None:
    """The wait of a waiting registration (None when it is not in the line)."""
    prior, history = prior or Prior(), history or History()
    ahead = queue.position(visit_number)
    if ahead is None:
        return None
    consult, sd, seen = consult_pace(queue, history, prior)
    gap = call_gap(queue, prior)
    calls = len(queue.consults)
    pace = Pace(consult_median=consult / math.exp(sd * sd / 2), consult_sigma=sd,
                uncertainty=math.hypot(sd / math.sqrt(prior.weight + seen), prior.drift), gap=gap,
                absent_share=_absent_share(queue, prior), absent_minutes=prior.absent_minutes)
    if queue.started_at is None:
        lates = list(history.late_starts)
        late = (prior.late_start_minutes * 2 + sum(lates)) / (2 + len(lates))
        start = Start(late_median=late, late_sigma=prior.late_sigma,
                      elapsed=_minutes(now - session_start))
    else:
        current = queue.in_consult()
        running = None if current is None or current.called_at is None else \
            _minutes(now - current.called_at)
        start = Start(at_least=0.0 if running is not None else gap * (calls > 0), running=running)
    no_show = _no_show_share(queue, now, prior)
    expected = _expected(queue, visit_number, now, no_show, prior)
    waits = play_forward(f"{visit_number}|{now.isoformat()}", ahead, expected, start, pace,
                         prior.plays)
    median = quantile(waits, 0.5)
    low = quantile(waits, prior.low_quantile)
    high = quantile(waits, prior.high_quantile)
    return WaitRange(math.floor(low), max(math.ceil(high), math.floor(low) + 1), median, ahead)
