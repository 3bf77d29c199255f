"""How good is the queue estimate? Seeded clinic days replayed through the adapter's queue and
estimator, against the time each patient was actually called.

The HIS simulator's clinic generator (adapter.his.simulator.clinic) plays each day: doctors who
start late, consults of a skewed length that differs by doctor, walk-ins and window
registrations among the wallet bookings, no-shows, patients called and absent, recalls and
cancellations. Its events are folded, in the order they happened, into the adapter's queues
(adapter.queueing.line), exactly as the listener's events would be. Each patient is measured at
check-in and again when 5 are ahead of them; the estimate's midpoint is compared with the
actual wait until their call, next to two baselines:

  naive    people ahead x the doctor's slot length
  rolling  people ahead x the mean of the doctor's last 10 consults

It also says how often the actual wait fell above the range's upper end (late_share). In
process, no database and no sockets: it measures the arithmetic, not the transport.

    .venv/bin/python bench/queue_eta.py --days 5 --seed 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapter.his.simulator.clinic import SESSIONS, ClinicRules, clinic_day, clinic_doctors  # noqa: E402
from adapter.ports import QueueEventKind  # noqa: E402
from adapter.queueing.estimate import History, Prior, estimate_wait  # noqa: E402
from adapter.queueing.line import AbsentRule, LineState, Queue  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")


@dataclass
class Measure:
    """One estimate, made at ``at``, of a call that came at ``called``."""

    moment: str  # check_in | five_ahead
    doctor: str
    at: dt.datetime
    ours: float
    low: int
    high: int
    naive: float
    rolling: float
    called: dt.datetime | None = None

    @property
    def actual(self) -> float:
        return (self.called - self.at).total_seconds() / 60


def replay(seed: int, days: int, rules: ClinicRules, prior: Prior) -> list[Measure]:
    doctors = clinic_doctors(seed)
    slot_of = {d.code: d.slot_minutes for d in doctors}
    consults: dict[str, list[float]] = defaultdict(list)  # the doctor's, across days
    lates: dict[str, list[float]] = defaultdict(list)
    measures: list[Measure] = []
    first = dt.date(2030, 3, 4)
    patients = 0
    for n in range(days):
        day = clinic_day(seed * 1000 + n, first + dt.timedelta(days=n), TZ, doctors=doctors,
                         rules=rules)
        patients += len(day.sources)
        queues: dict[tuple[str, str], Queue] = {}
        starts = {(d.code, s): dt.datetime.combine(day.date, SESSIONS[s][0], TZ)
                  for d in doctors for s in SESSIONS}
        histories: dict[tuple[str, str], History] = {}
        open_measures: dict[str, list[Measure]] = defaultdict(list)  # visit -> awaiting call
        made: list[Measure] = []
        five_done: set[str] = set()
        for event in day.events:
            key = (event.doctor_code, event.session)
            queue = queues.setdefault(key, Queue(rule=AbsentRule(rules.absent_rule,
                                                                 rules.absent_skip)))
            if key not in histories:  # what was known of the doctor when the session began
                histories[key] = History(tuple(consults[event.doctor_code]),
                                         tuple(lates[event.doctor_code]))
            before = len(queue.consults)
            queue.apply(event)
            now = event.occurred_at
            for c in queue.consults[before:]:
                if not c.absent:
                    consults[event.doctor_code].append(
                        (c.ended_at - c.called_at).total_seconds() / 60)
            if event.kind is QueueEventKind.CALLED:
                if queue.started_at == now and len(queue.consults) == 0:
                    lates[event.doctor_code].append(
                        max((now - starts[key]).total_seconds() / 60, 0.0))
                for m in open_measures.pop(event.visit_number, []):
                    m.called = now
            elif event.kind in (QueueEventKind.NO_SHOW, QueueEventKind.CANCELLED):
                line = queue.lines[event.visit_number]
                if line.state is not LineState.WAITING:
                    open_measures.pop(event.visit_number, None)  # never called: not measured
            waiting = queue.waiting()
            for ahead, line in enumerate(waiting):
                moment = ""
                if event.kind is QueueEventKind.ARRIVED and line.visit_number == \
                        event.visit_number:
                    moment = "check_in"
                elif ahead <= 5 and line.visit_number not in five_done and \
                        line.arrived_at is not None and line.arrived_at < now:
                    moment = "five_ahead"
                if not moment:
                    continue
                if ahead <= 5:
                    five_done.add(line.visit_number)
                wait = estimate_wait(queue, line.visit_number, now, session_start=starts[key],
                                     prior=prior, history=histories[key])
                recent = consults[event.doctor_code][-10:]
                rolling = statistics.fmean(recent) if recent else slot_of[event.doctor_code]
                made.append(Measure(
                    moment, event.doctor_code, now, wait.midpoint, wait.low, wait.high,
                    ahead * slot_of[event.doctor_code], ahead * rolling))
                open_measures[line.visit_number].append(made[-1])
        measures += [m for m in made if m.called is not None]  # never called: not measured
    print(f"replayed {days} day(s), {len(doctors)} doctors x {len(SESSIONS)} sessions, "
          f"{patients} patients, seed {seed}, absent rule {rules.absent_rule}")
    return measures


def mae(values: list[float]) -> float:
    return statistics.fmean(abs(v) for v in values) if values else 0.0


def report(measures: list[Measure]) -> str:
    print(f"{'moment':<12}{'n':>6}{'ours':>8}{'naive':>8}{'rolling':>9}{'late':>7}"
          f"{'mean wait':>11}")
    for moment in ("check_in", "five_ahead", "all"):
        ms = [m for m in measures if moment in ("all", m.moment)]
        late = sum(1 for m in ms if m.actual > m.high) / len(ms)
        print(f"{moment:<12}{len(ms):>6}{mae([m.ours - m.actual for m in ms]):>8.2f}"
              f"{mae([m.naive - m.actual for m in ms]):>8.2f}"
              f"{mae([m.rolling - m.actual for m in ms]):>9.2f}{late:>7.3f}"
              f"{statistics.fmean(m.actual for m in ms):>11.1f}")
    print("by doctor (all moments): ours / naive / rolling MAE, minutes")
    for doctor in sorted({m.doctor for m in measures}):
        ms = [m for m in measures if m.doctor == doctor]
        print(f"  {doctor}: {mae([m.ours - m.actual for m in ms]):6.2f} "
              f"{mae([m.naive - m.actual for m in ms]):6.2f} "
              f"{mae([m.rolling - m.actual for m in ms]):6.2f}  (n={len(ms)})")
    ours = mae([m.ours - m.actual for m in measures])
    naive = mae([m.naive - m.actual for m in measures])
    rolling = mae([m.rolling - m.actual for m in measures])
    late = sum(1 for m in measures if m.actual > m.high) / len(measures)
    print(f"ours vs naive: {100 * (1 - ours / naive):.0f}% lower; vs rolling: "
          f"{100 * (1 - ours / rolling):.0f}% lower")
    return (f"queue_eta: mae_min={ours:.2f} naive_mae_min={naive:.2f} "
            f"rolling_mae_min={rolling:.2f} late_share={late:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=5, help="clinic days replayed in a row")
    parser.add_argument("--absent-rule", default="skip", choices=("skip", "back", "missed"))
    args = parser.parse_args()
    rules = ClinicRules(absent_rule=args.absent_rule)
    print(report(replay(args.seed, args.days, rules, Prior())))


if __name__ == "__main__":
    main()
