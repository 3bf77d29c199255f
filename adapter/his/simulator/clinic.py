"""A clinic day as the HIS lives it: seeded, pure Python, the source of the queue events.

For each doctor and session (morning, afternoon) it plays what happens in the HIS's queue:
bookings made ahead (through the wallet or at the window) and walk-ins registered on the day,
arrivals around the booked time, patients who never come, one who cancels, a doctor who starts
late, consults whose durations follow a skewed (lognormal) law that differs by doctor, patients
called and absent who are moved by the hospital's rule and come back (recalled). The result is
the time-ordered list of :class:`adapter.ports.QueueEvent` the HIS would send; the simulator
plays it over MLLP (``clinic_wire``, any time scale) and the bench replays it in process.

The HIS's own queue order is kept here independently of the adapter's (adapter.queueing.line),
so tests can check that the adapter rebuilds the same positions from the events alone.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field, replace

from adapter.ports import QueueEvent, QueueEventKind, QueueSnapshot, QueueSnapshotLine

SESSIONS = {"am": (dt.time(8, 0), dt.time(12, 0)), "pm": (dt.time(14, 0), dt.time(17, 0))}
K = QueueEventKind


@dataclass(frozen=True)
class ClinicDoctor:
    """How one doctor works: their registration slot length and their real pace."""

    code: str
    room: str
    slot_minutes: int  # what the schedule gives each patient
    consult_median: float  # minutes; the real consults follow lognormal(ln median, sigma)
    consult_sigma: float
    late_median: float  # minutes late at the start of a session (0: on time)
    gap_minutes: float  # between one consult and the next call


@dataclass(frozen=True)
class ClinicRules:
    """The day's mix; the defaults are a busy outpatient clinic."""

    booked_share: float = 0.9  # slots taken ahead
    wallet_share: float = 0.55  # of the bookings, made through the wallet (the rest: window)
    walk_in_share: float = 0.15  # walk-ins, as a share of the slots
    no_show: float = 0.07  # booked patients who never come
    absent_on_call: float = 0.05  # checked-in patients not there when called
    back_after_absent: float = 0.7  # ...who are there at their next call (else missed)
    recall: float = 0.6  # missed patients who come back and are recalled
    cancel: float = 0.5  # chance that a session has one cancellation
    absent_rule: str = "skip"  # as mappings/queue.toml absent_rule
    absent_skip: int = 3


@dataclass
class ClinicDay:
    """A played day: its doctors and every queue event, in the order they happened."""

    date: dt.date
    doctors: tuple[ClinicDoctor, ...]
    events: list[QueueEvent]
    sources: dict[str, str] = field(default_factory=dict)  # visit -> wallet | window | walk_in

    def snapshot(self, doctor_code: str, session: str, at: dt.datetime) -> QueueSnapshot:
        """The HIS's queue of one session at ``at``: each registration's latest event."""
        lines: dict[str, QueueSnapshotLine] = {}
        for e in self.events:
            if e.doctor_code == doctor_code and e.session == session and e.occurred_at <= at:
                lines[e.visit_number] = QueueSnapshotLine(
                    e.visit_number, e.kind, e.queue_number, e.his_patient_id, e.placer_id, e.room)
        return QueueSnapshot(doctor_code, self.date, session, at, tuple(lines.values()))


def clinic_doctors(seed: int, count: int = 6, codes: tuple[str, ...] = ()) -> tuple[ClinicDoctor,
                                                                                     ...]:
    """Doctors who differ: some quick, some slow, some late; the same seed, the same doctors."""
    rng = random.Random(f"doctors-{seed}")
    codes = codes or tuple(f"D{n + 1:02d}" for n in range(count))
    out = []
    for n, code in enumerate(codes):
        slot = rng.choice((8, 10, 12, 15))
        out.append(ClinicDoctor(
            code=code, room=f"{n + 101}", slot_minutes=slot,
            consult_median=round(slot * rng.uniform(0.5, 1.15), 2),
            consult_sigma=round(rng.uniform(0.3, 0.6), 2),
            late_median=rng.choice((0.0, 3.0, 6.0, 12.0, 20.0)),
            gap_minutes=round(rng.uniform(0.3, 1.0), 2)))
    return tuple(out)


def clinic_day(seed: int, date: dt.date, tz: dt.tzinfo, *,
               doctors: tuple[ClinicDoctor, ...] | None = None,
               rules: ClinicRules | None = None) -> ClinicDay:
    """Play one day for every doctor and session; the same seed plays the same day."""
    doctors = doctors or clinic_doctors(seed)
    rules = rules or ClinicRules()
    events: list[tuple[dt.datetime, int, QueueEvent]] = []
    sources: dict[str, str] = {}
    order = 0
    for doctor in doctors:
        for session in SESSIONS:
            rng = random.Random(f"{seed}-{date}-{doctor.code}-{session}")
            for ev in _Session(rng, date, tz, doctor, session, rules, sources).play():
                events.append((ev.occurred_at, order, ev))
                order += 1
    events.sort(key=lambda item: (item[0], item[1]))
    stamped = [replace(ev, event_id=f"Q{date:%Y%m%d}{n + 1:06d}", sequence=n + 1)
               for n, (_, _, ev) in enumerate(events)]
    return ClinicDay(date, doctors, stamped, sources)


@dataclass
class _Visit:
    number: int
    visit: str
    source: str
    slot_start: dt.datetime
    placer: str = ""
    patient: str = ""
    state: str = "registered"  # registered waiting called finished missed cancelled
    key: float = 0.0
    absences: int = 0
    absent_next_call: bool = False


class _Session:
    """One doctor's session, played minute by minute of events."""

    def __init__(self, rng: random.Random, date: dt.date, tz: dt.tzinfo, doctor: ClinicDoctor,
                 session: str, rules: ClinicRules, sources: dict[str, str]) -> None:
        self.rng, self.doctor, self.session, self.rules = rng, doctor, session, rules
        start, end = SESSIONS[session]
        self.start = dt.datetime.combine(date, start, tz)
        self.end = dt.datetime.combine(date, end, tz)
        self.date, self.sources = date, sources
        self.visits: dict[str, _Visit] = {}
        self.out: list[QueueEvent] = []
        self.external: list[tuple[float, int, str, str]] = []  # (minute, order, kind, visit)

    def at(self, minute: float) -> dt.datetime:
        """The instant ``minute`` minutes after the session's start, to the second (HL7 DTM)."""
        return self.start + dt.timedelta(seconds=round(minute * 60))

    def emit(self, kind: QueueEventKind, visit: _Visit, minute: float) -> None:
        self.out.append(QueueEvent(
            event_id="", doctor_code=self.doctor.code, visit_date=self.date,
            session=self.session, visit_number=visit.visit, kind=kind,
            occurred_at=self.at(minute), queue_number=visit.number,
            his_patient_id=visit.patient, placer_id=visit.placer, room=self.doctor.room,
            slot_start=visit.slot_start))

    def later(self, minute: float, kind: str, visit: _Visit) -> None:
        # Kept to the second, as the wire will say it, so in-process and over-MLLP agree.
        self.external.append((round(minute * 60) / 60, len(self.external), kind, visit.visit))

    def play(self) -> list[QueueEvent]:
        self._register()
        rules, rng, doctor = self.rules, self.rng, self.doctor
        late = doctor.late_median * math.exp(rng.gauss(0, 0.5)) if doctor.late_median else \
            abs(rng.gauss(0, 1.0))
        t = late
        while True:
            self._happen_until(t)
            waiting = self._waiting()
            if not waiting:
                if not self.external:
                    break
                t = max(t, min(self.external)[0])
                continue
            visit = waiting[0]
            visit.state = "called"
            self.emit(K.CALLED, visit, t)
            if visit.absent_next_call:
                visit.absent_next_call = rng.random() > rules.back_after_absent
                t_gone = t + rng.uniform(1.0, 2.5)  # the doctor calls again, then moves on
                self._happen_until(t_gone)
                self.emit(K.NO_SHOW, visit, t_gone)
                visit.absences += 1
                if visit.absences == 1 and rules.absent_rule in ("skip", "back"):
                    visit.state = "waiting"
                    self._place(visit)
                else:
                    visit.state = "missed"
                    if rng.random() < rules.recall:
                        visit.absent_next_call = False
                        self.later(t_gone + rng.uniform(8, 35), "recall", visit)
                t = t_gone + doctor.gap_minutes
                continue
            # Doctors hurry a little when the line is long.
            hurry = 1 / (1 + 0.03 * max(len(waiting) - 6, 0))
            duration = hurry * doctor.consult_median * math.exp(rng.gauss(0, doctor.consult_sigma))
            t_end = t + max(duration, 0.5)
            self._happen_until(t_end)
            visit.state = "finished"
            self.emit(K.FINISHED, visit, t_end)
            t = t_end + doctor.gap_minutes * rng.uniform(0.5, 1.5)
        close = max(t, (self.end - self.start).total_seconds() / 60)
        for visit in self.visits.values():
            if visit.state == "registered":
                self.emit(K.NO_SHOW, visit, close)  # the HIS closes the session
        return self.out

    def _register(self) -> None:
        rules, rng, doctor = self.rules, self.rng, self.doctor
        length = (self.end - self.start).total_seconds() / 60
        slots = int(length // doctor.slot_minutes)
        tag = f"{self.date:%Y%m%d}{doctor.code}{self.session.upper()}"
        number = 0
        booked: list[_Visit] = []
        for index in range(slots):
            if rng.random() >= rules.booked_share:
                continue
            number = index + 1
            source = "wallet" if rng.random() < rules.wallet_share else "window"
            visit = self._new(number, f"{tag}{number:03d}", source, index * doctor.slot_minutes)
            self.emit(K.REGISTERED, visit, -90 - rng.uniform(0, 30))
            booked.append(visit)
            if rng.random() < rules.no_show:
                continue
            arrive = index * doctor.slot_minutes + rng.gauss(-20, 15)
            arrive = min(max(arrive, index * doctor.slot_minutes - 70, -60),
                         index * doctor.slot_minutes + 25)
            self.later(arrive, "arrive", visit)
            visit.absent_next_call = rng.random() < rules.absent_on_call
        if booked and rng.random() < rules.cancel:
            victim = rng.choice(booked)
            self.external = [e for e in self.external if e[3] != victim.visit]
            self.later(rng.uniform(-60, (victim.slot_start - self.start).total_seconds() / 60),
                       "cancel", victim)
        walk_ins = sorted(rng.uniform(-30, length - 45)
                          for _ in range(round(slots * rules.walk_in_share)))
        number = max(slots, number)
        for minute in walk_ins:
            number += 1
            visit = self._new(number, f"{tag}{number:03d}", "walk_in", minute)
            self.later(minute, "walk_in", visit)
            visit.absent_next_call = rng.random() < rules.absent_on_call

    def _new(self, number: int, visit_number: str, source: str, minute: float) -> _Visit:
        rng = self.rng
        visit = _Visit(number, visit_number, source, self.at(minute), key=float(number),
                       placer=f"B{visit_number}" if source == "wallet" else "",
                       patient=f"P{rng.randrange(10 ** 6):06d}")
        self.visits[visit_number] = visit
        self.sources[visit_number] = source
        return visit

    def _happen_until(self, minute: float) -> None:
        """Apply the arrivals, recalls and cancellations that happen up to ``minute``."""
        self.external.sort()
        while self.external and self.external[0][0] <= minute:
            at, _, kind, number = self.external.pop(0)
            visit = self.visits[number]
            if kind == "walk_in":
                self.emit(K.REGISTERED, visit, at)
            if kind in ("arrive", "walk_in") and visit.state == "registered":
                visit.state, visit.key = "waiting", float(visit.number)
                self.emit(K.ARRIVED, visit, at)
            elif kind == "recall" and visit.state == "missed":
                self.emit(K.RECALLED, visit, at)
                visit.state = "waiting"
                self._place(visit)
            elif kind == "cancel" and visit.state in ("registered", "waiting"):
                visit.state = "cancelled"
                self.emit(K.CANCELLED, visit, at)

    def _waiting(self) -> list[_Visit]:
        return sorted((v for v in self.visits.values() if v.state == "waiting"),
                      key=lambda v: (v.key, v.number, v.visit))

    def _place(self, visit: _Visit) -> None:
        others = [v for v in self._waiting() if v is not visit]
        skip = self.rules.absent_skip
        if self.rules.absent_rule == "skip" and len(others) > skip:
            after = others[skip].key
            before = others[skip - 1].key if skip else after - 1.0
            visit.key = (before + after) / 2
        else:
            visit.key = (others[-1].key if others else visit.key) + 1.0
