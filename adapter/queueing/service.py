"""Queueing's use cases on the database: keep the HIS's queue events, reconcile a snapshot,
push at thresholds, and tell a booking's place in the queue with its estimate."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.flows import Services
from adapter.i18n import translate
from adapter.identity.notices import tell_account
from adapter.models import Booking, CheckIn, QueueEventRecord, QueueNotice, Slot
from adapter.ports import QueueEvent, QueueEventKind, QueueSnapshot, session_of
from adapter.queueing import texts
from adapter.queueing.estimate import History, WaitRange, estimate_wait
from adapter.queueing.line import Line, LineState, Queue, build_queue
from adapter.queueing.policy import QueuePolicy, load_queue_policy
from adapter.refusals import Refusal
from adapter.registration.booking import own_booking

logger = logging.getLogger(__name__)

SESSION_STARTS = {"am": dt.time(8, 0), "pm": dt.time(14, 0)}
# What a snapshot line's latest event means for the line's state.
_STATE_OF = {
    QueueEventKind.REGISTERED: LineState.REGISTERED,
    QueueEventKind.ARRIVED: LineState.WAITING,
    QueueEventKind.RECALLED: LineState.WAITING,
    QueueEventKind.CALLED: LineState.CALLED,
    QueueEventKind.FINISHED: LineState.FINISHED,
    QueueEventKind.NO_SHOW: LineState.MISSED,
    QueueEventKind.CANCELLED: LineState.CANCELLED,
}


def _event_of(row: QueueEventRecord) -> QueueEvent:
    return QueueEvent(row.event_id, row.doctor_code, row.visit_date, row.session,
                      row.visit_number, QueueEventKind(row.kind), row.occurred_at, row.sequence,
                      row.queue_number, row.his_patient_id, row.placer_id, row.room,
                      row.slot_start)


def load_queue(session: Session, doctor_code: str, visit_date: dt.date, session_code: str,
               policy: QueuePolicy) -> Queue:
    """The session's queue, folded from every event kept for it."""
    rows = session.scalars(select(QueueEventRecord).where(
        QueueEventRecord.doctor_code == doctor_code, QueueEventRecord.visit_date == visit_date,
        QueueEventRecord.session == session_code))
    return build_queue((_event_of(r) for r in rows), policy.absent)


def keep_event(session: Session, event: QueueEvent, now: dt.datetime) -> bool:
    """Keep an event once (by its id); False when it was kept already (a replay)."""
    if session.scalar(select(QueueEventRecord.id).where(
            QueueEventRecord.event_id == event.event_id)) is not None:
        return False
    session.add(QueueEventRecord(
        event_id=event.event_id, doctor_code=event.doctor_code, visit_date=event.visit_date,
        session=event.session, visit_number=event.visit_number, kind=event.kind.value,
        occurred_at=event.occurred_at, sequence=event.sequence, queue_number=event.queue_number,
        his_patient_id=event.his_patient_id, placer_id=event.placer_id, room=event.room,
        slot_start=event.slot_start, received_at=now))
    session.flush()
    return True


def record_queue_event(session: Session, event: QueueEvent, policy: QueuePolicy,
                       now: dt.datetime) -> bool:
    """Apply one HIS queue event: kept once, the queue refolded, the wallet patients in it
    pushed at their thresholds. A replayed event changes nothing (returns False)."""
    if not keep_event(session, event, now):
        return False
    queue = load_queue(session, event.doctor_code, event.visit_date, event.session, policy)
    push_thresholds(session, queue, policy, now)
    return True


def reconcile_queue(session: Session, snapshot: QueueSnapshot, policy: QueuePolicy,
                    now: dt.datetime) -> int:
    """Repair the queue from the HIS's snapshot: a registration missing from it left, one whose
    state differs gets the event the snapshot implies (at the snapshot's time, so an event that
    arrives late still lands where it happened). Returns how many events it added."""
    queue = load_queue(session, snapshot.doctor_code, snapshot.visit_date, snapshot.session,
                       policy)
    stamp = snapshot.taken_at.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")
    added: list[QueueEvent] = []

    def add(visit: str, kind: QueueEventKind, **fields: object) -> None:
        added.append(QueueEvent(
            f"snap:{snapshot.doctor_code}:{stamp}:{visit}:{kind.value}", snapshot.doctor_code,
            snapshot.visit_date, snapshot.session, visit, kind, snapshot.taken_at, **fields))

    listed = {line.visit_number for line in snapshot.lines}
    for line in queue.lines.values():
        if line.visit_number not in listed and not line.state.done:
            add(line.visit_number, QueueEventKind.CANCELLED)
    for his in snapshot.lines:
        ours = queue.lines.get(his.visit_number)
        if ours is not None and ours.state is _STATE_OF[his.kind]:
            continue
        add(his.visit_number, his.kind, queue_number=his.queue_number,
            his_patient_id=his.his_patient_id, placer_id=his.placer_id, room=his.room)
    kept = [e for e in added if keep_event(session, e, now)]
    if kept:
        logger.info("queue %s %s %s: snapshot added %d event(s)", snapshot.doctor_code,
                    snapshot.visit_date, snapshot.session, len(kept))
        queue = load_queue(session, snapshot.doctor_code, snapshot.visit_date,
                           snapshot.session, policy)
        push_thresholds(session, queue, policy, now)
    return len(kept)


# --- pushes ---------------------------------------------------------------------------------


def _notices_due(queue: Queue, line: Line, policy: QueuePolicy) -> list[tuple[str, str, dict]]:
    """(notice, text, fields) a line has reached now, most urgent last."""
    due: list[tuple[str, str, dict]] = []
    if line.absences and line.state in (LineState.WAITING, LineState.MISSED):
        due.append(("missed_call", texts.MISSED_CALL, {}))
    if line.state is LineState.CALLED:
        due.append(("your_turn", texts.YOUR_TURN, {"room": line.room or queue.room}))
    elif line.state is LineState.WAITING:
        ahead = queue.position(line.visit_number) or 0
        if line.absences == 0:
            due.append(("checked_in", texts.CHECKED_IN, {"ahead": ahead}))
        for n in policy.push_ahead:  # largest first
            if ahead <= n:
                due.append((f"ahead_{n}", texts.AHEAD, {"ahead": ahead}))
    return due


def push_thresholds(session: Session, queue: Queue, policy: QueuePolicy,
                    now: dt.datetime) -> int:
    """Queue a wallet push for each threshold a wallet booking reached, once per booking and
    threshold (a recall that crosses it again sends nothing); of several reached at once only
    the most urgent is pushed. Returns how many pushes were queued."""
    placers = [ln for ln in queue.lines.values() if ln.placer_id]
    if not placers:
        return 0
    bookings = {b.public_id: b for b in session.scalars(
        select(Booking).where(Booking.public_id.in_([ln.placer_id for ln in placers])))}
    pushed = 0
    for line in placers:
        booking = bookings.get(line.placer_id)
        if booking is None:
            continue
        done = set(session.scalars(select(QueueNotice.notice).where(
            QueueNotice.booking_id == booking.id)))
        fresh = [d for d in _notices_due(queue, line, policy) if d[0] not in done]
        for index, (notice, text, fields) in enumerate(fresh):
            last = index == len(fresh) - 1
            session.add(QueueNotice(booking_id=booking.id, notice=notice, pushed=last,
                                    created_at=now))
            if last:
                words = translate(text, "zh-CN").format(**fields)
                tell_account(session, booking.wallet_account_id, words,
                             f"/h5/bookings/{booking.public_id}", now,
                             message_kind=f"queue_{notice}")
                pushed += 1
    session.flush()
    return pushed


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueStatus:
    """A booking's place in its doctor's queue."""

    state: str  # LineState, or "not_in_queue" before the HIS has it
    position: int | None  # 1 = next
    ahead: int | None
    wait: WaitRange | None
    room: str
    updated_at: dt.datetime | None


def _history(session: Session, doctor_code: str, visit_date: dt.date, session_code: str,
             policy: QueuePolicy, tz: dt.tzinfo) -> History:
    """The doctor's consults and late starts of their sessions in the three days before."""
    consults: list[float] = []
    lates: list[float] = []
    earlier = session.execute(select(
        QueueEventRecord.visit_date, QueueEventRecord.session).where(
        QueueEventRecord.doctor_code == doctor_code,
        QueueEventRecord.visit_date >= visit_date - dt.timedelta(days=3),
        QueueEventRecord.visit_date <= visit_date).distinct()).all()
    for day, code in sorted(earlier):
        if (day, code) >= (visit_date, session_code):
            continue
        queue = load_queue(session, doctor_code, day, code, policy)
        consults += [(c.ended_at - c.called_at).total_seconds() / 60
                     for c in queue.consults if not c.absent]
        if queue.started_at is not None:
            start = dt.datetime.combine(day, SESSION_STARTS[code], tz)
            lates.append(max((queue.started_at - start).total_seconds() / 60, 0.0))
    return History(tuple(consults), tuple(lates))


def queue_status(session: Session, booking: Booking, session_code: str, policy: QueuePolicy,
                 tz: dt.tzinfo, now: dt.datetime) -> QueueStatus:
    """Position, people ahead, the wait's range, the room and when the HIS last said."""
    queue = load_queue(session, booking.doctor_code, booking.visit_date, session_code, policy)
    line = queue.line_of_placer(booking.public_id)
    if line is None:
        return QueueStatus("not_in_queue", None, None, None, "", None)
    ahead = queue.position(line.visit_number)
    wait = None
    if ahead is not None:
        start = dt.datetime.combine(booking.visit_date, SESSION_STARTS[session_code], tz)
        history = _history(session, booking.doctor_code, booking.visit_date, session_code,
                           policy, tz)
        wait = estimate_wait(queue, line.visit_number, now, session_start=start,
                             prior=policy.prior, history=history)
    return QueueStatus(line.state.value, None if ahead is None else ahead + 1, ahead, wait,
                       line.room or queue.room, queue.updated_at)


def booking_queue(services: Services, account_id: int, public_id: str,
                  now: dt.datetime) -> tuple[QueueStatus, dt.datetime | None]:
    """The place of one of the account's bookings in its doctor's queue, and when it was
    checked in (None: not yet); raises Refusal ``booking.unknown`` for anyone else's."""
    tz = services.config.tz
    with services.session_factory() as session:
        booking = own_booking(session, account_id, public_id)
        if booking is None:
            raise Refusal("booking.unknown")
        slot = session.get(Slot, booking.slot_id)
        policy = load_queue_policy(services.config.mappings_dir / "queue.toml")
        status = queue_status(session, booking, session_of(slot.start_at, tz), policy, tz, now)
        checked_in = session.scalar(select(CheckIn.checked_in_at).where(
            CheckIn.booking_id == booking.id))
        return status, checked_in
