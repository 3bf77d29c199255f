"""A doctor's queue for one session, folded from the HIS's events (pure: no database, no clock).

The queue is the HIS's: every registration in it (wallet bookings, the window, walk-ins), in
the order the HIS calls. It is rebuilt by folding the session's events sorted by the time they
happened (then the HIS's sequence number, then the event id), so the same set of events gives
the same queue however it arrived: a replayed or duplicated event is one event (its id), an
event received late lands where it happened. A patient called and absent moves by the
hospital's rule (mappings/queue.toml ``absent_rule``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from adapter.ports import QueueEvent, QueueEventKind


class LineState(StrEnum):
    """Where a registration stands in the queue."""

    REGISTERED = "registered"  # in the HIS's queue, not checked in
    WAITING = "waiting"  # checked in, in the line
    CALLED = "called"  # called to the room, in consult
    FINISHED = "finished"
    MISSED = "missed"  # called and absent (or never came): out of the line until recalled
    CANCELLED = "cancelled"

    @property
    def done(self) -> bool:
        """No event but a recall brings it back (finished and cancelled: none does)."""
        return self in (LineState.FINISHED, LineState.CANCELLED)


@dataclass(frozen=True)
class AbsentRule:
    """What happens to a patient called and absent: ``skip`` (back in the line after ``skip``
    others), ``back`` (to the end of the line) or ``missed`` (out until recalled). A second
    absence is always missed. A recalled patient rejoins after ``skip`` others (rule ``skip``)
    or at the end (``back``, ``missed``)."""

    rule: str = "skip"
    skip: int = 3

    def __post_init__(self) -> None:
        if self.rule not in ("skip", "back", "missed"):
            raise ValueError("absent_rule must be skip, back or missed")
        if self.skip < 0:
            raise ValueError("absent_skip must be 0 or more")


@dataclass
class Line:
    """One registration in the queue."""

    visit_number: str
    queue_number: int
    state: LineState = LineState.REGISTERED
    key: float = 0.0  # the order among waiting lines (smaller is called first)
    his_patient_id: str = ""
    placer_id: str = ""
    room: str = ""
    slot_start: dt.datetime | None = None
    arrived_at: dt.datetime | None = None
    called_at: dt.datetime | None = None  # the latest call
    first_called_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    absences: int = 0
    updated_at: dt.datetime | None = None


@dataclass(frozen=True)
class Consult:
    """A call and how it ended: the pace the estimate learns from."""

    called_at: dt.datetime
    ended_at: dt.datetime
    absent: bool  # the patient did not come: the doctor waited, then called the next


@dataclass
class Queue:
    """A doctor's session: the lines, and what the doctor did so far."""

    rule: AbsentRule = field(default_factory=AbsentRule)
    lines: dict[str, Line] = field(default_factory=dict)
    consults: list[Consult] = field(default_factory=list)
    started_at: dt.datetime | None = None  # the session's first call
    last_call_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    room: str = ""
    seen: set[str] = field(default_factory=set)  # event ids folded

    # --- reading ----------------------------------------------------------------------------

    def waiting(self) -> list[Line]:
        """The line, next first."""
        return sorted((ln for ln in self.lines.values() if ln.state is LineState.WAITING),
                      key=lambda ln: (ln.key, ln.queue_number, ln.visit_number))

    def in_consult(self) -> Line | None:
        """The patient called last and not yet finished, if any."""
        called = [ln for ln in self.lines.values() if ln.state is LineState.CALLED]
        return max(called, key=lambda ln: ln.called_at) if called else None

    def position(self, visit_number: str) -> int | None:
        """How many are ahead of a waiting registration (None when it is not waiting)."""
        for index, line in enumerate(self.waiting()):
            if line.visit_number == visit_number:
                return index
        return None

    def not_arrived_ahead(self, visit_number: str) -> int:
        """Registrations not checked in yet whose number comes before this one's: they may
        still arrive and be called first."""
        me = self.lines.get(visit_number)
        if me is None:
            return 0
        return sum(1 for ln in self.lines.values()
                   if ln.state is LineState.REGISTERED and ln.queue_number < me.queue_number)

    def line_of_placer(self, placer_id: str) -> Line | None:
        """The registration made through us under this booking id."""
        return next((ln for ln in self.lines.values() if ln.placer_id == placer_id), None)

    # --- folding ----------------------------------------------------------------------------

    def apply(self, event: QueueEvent) -> bool:
        """Fold one event in (events must come in time order: see :func:`build_queue`);
        False when the event id was folded already."""
        if event.event_id in self.seen:
            return False
        self.seen.add(event.event_id)
        line = self.lines.get(event.visit_number)
        if line is None:
            # The first event heard of a registration need not be REGISTERED (lost, or the
            # HIS sends arrivals only): the event says what the line needs.
            line = Line(event.visit_number, event.queue_number, key=float(event.queue_number))
            self.lines[event.visit_number] = line
        for name in ("his_patient_id", "placer_id", "room", "slot_start"):
            value = getattr(event, name)
            if value and not getattr(line, name):
                setattr(line, name, value)
        if event.queue_number and not line.queue_number:
            line.queue_number, line.key = event.queue_number, float(event.queue_number)
        if event.room:
            self.room = event.room
        _STEPS[event.kind](self, line, event.occurred_at)
        line.updated_at = event.occurred_at
        self.updated_at = max(self.updated_at or event.occurred_at, event.occurred_at)
        return True

    def _registered(self, line: Line, at: dt.datetime) -> None:
        pass  # created above; a registration heard again changes nothing

    def _arrived(self, line: Line, at: dt.datetime) -> None:
        if line.state is LineState.REGISTERED:
            line.state, line.arrived_at = LineState.WAITING, at
            line.key = float(line.queue_number)  # checked-in patients are called by number
        elif line.state is LineState.MISSED and line.first_called_at is None:
            self._rejoin(line, at)  # a late comer the HIS had marked absent

    def _called(self, line: Line, at: dt.datetime) -> None:
        if line.state.done:
            return
        ongoing = self.in_consult()
        if ongoing is not None and ongoing is not line:
            # The doctor called someone else: the previous call ended then (a HIS that sends
            # no consult-finished event for it).
            self._end(ongoing, at, absent=False)
        line.state, line.called_at = LineState.CALLED, at
        line.arrived_at = line.arrived_at or at
        line.first_called_at = line.first_called_at or at
        self.started_at = min(self.started_at or at, at)
        self.last_call_at = max(self.last_call_at or at, at)

    def _finished(self, line: Line, at: dt.datetime) -> None:
        if line.state is LineState.CALLED:
            self._end(line, at, absent=False)
        elif not line.state.done:
            line.state, line.finished_at = LineState.FINISHED, at

    def _end(self, line: Line, at: dt.datetime, *, absent: bool) -> None:
        if line.called_at is not None:
            self.consults.append(Consult(line.called_at, at, absent))
        if not absent:
            line.state, line.finished_at = LineState.FINISHED, at

    def _no_show(self, line: Line, at: dt.datetime) -> None:
        if line.state.done or line.state is LineState.MISSED:
            return
        if line.state is not LineState.CALLED:
            line.state = LineState.MISSED  # never came (the HIS closes the session)
            return
        self._end(line, at, absent=True)
        line.absences += 1
        if line.absences == 1 and self.rule.rule in ("skip", "back"):
            line.state = LineState.WAITING
            self._place(line)
        else:
            line.state = LineState.MISSED

    def _recalled(self, line: Line, at: dt.datetime) -> None:
        if line.state is LineState.MISSED:
            self._rejoin(line, at)

    def _rejoin(self, line: Line, at: dt.datetime) -> None:
        line.state, line.arrived_at = LineState.WAITING, line.arrived_at or at
        self._place(line)

    def _cancelled(self, line: Line, at: dt.datetime) -> None:
        if line.state is not LineState.FINISHED:
            line.state = LineState.CANCELLED

    def _place(self, line: Line) -> None:
        """Put a waiting line back by the rule: after ``skip`` others, or at the end."""
        others = [ln for ln in self.waiting() if ln is not line]
        skip = self.rule.skip
        if self.rule.rule == "skip" and len(others) > skip:
            after = others[skip].key
            before = others[skip - 1].key if skip else after - 1.0
            line.key = (before + after) / 2
        else:
            line.key = (others[-1].key if others else line.key) + 1.0


_STEPS = {
    QueueEventKind.REGISTERED: Queue._registered,
    QueueEventKind.ARRIVED: Queue._arrived,
    QueueEventKind.CALLED: Queue._called,
    QueueEventKind.FINISHED: Queue._finished,
    QueueEventKind.NO_SHOW: Queue._no_show,
    QueueEventKind.RECALLED: Queue._recalled,
    QueueEventKind.CANCELLED: Queue._cancelled,
}


def event_order(event: QueueEvent) -> tuple:
    """When an event happened: its time, then the HIS's sequence number, then its id."""
    return (event.occurred_at, event.sequence, event.event_id)


def build_queue(events: Iterable[QueueEvent], rule: AbsentRule | None = None) -> Queue:
    """The queue the events say, whatever order they came in and however often."""
    queue = Queue(rule=rule or AbsentRule())
    for event in sorted({e.event_id: e for e in events}.values(), key=event_order):
        queue.apply(event)
    return queue
