"""The message browser's search: every HL7 message in (inbound_message), every HL7 message and
wallet call out (outbox_message) and every wallet notification (wallet_notification), by time,
type, state, control id and business keys (docs/staff.md).

One rule says which state a row is in, for the browser and the dashboard's counters alike
(``state_of``): queued (waiting), failed (to be retried or reprocessed), parked (given up or
refused for good: waits for staff) or done.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from adapter.models import (
    Booking,
    InboundMessage,
    InboundStatus,
    OutboxMessage,
    OutboxStatus,
    Patient,
    QueueEventRecord,
    WalletNotification,
)
from adapter.models_billing import Settlement
from adapter.staff.audit import Action, record


class Source(StrEnum):
    """Where a message is kept."""

    INBOUND = "inbound"  # HL7 from the HIS
    OUTBOX = "outbox"  # HL7 to the HIS and wallet calls
    NOTIFICATION = "notification"  # wallet notifications in


class State(StrEnum):
    """A message's state as staff see it, whatever its source."""

    QUEUED = "queued"
    FAILED = "failed"
    PARKED = "parked"
    DONE = "done"


# Wallet notification outcomes besides those the notify endpoint records as applied.
_NOTICE_STATES = {"received": State.QUEUED, "error": State.FAILED, "refused": State.PARKED}


def state_of(source: Source) -> ColumnElement[Any]:
    """The SQL expression of a row's State in ``source``."""
    if source is Source.INBOUND:
        return case(
            (InboundMessage.status == InboundStatus.RECEIVED, literal(State.QUEUED.value)),
            (InboundMessage.status == InboundStatus.FAILED, literal(State.FAILED.value)),
            (InboundMessage.status.in_((InboundStatus.ERROR, InboundStatus.REJECTED)),
             literal(State.PARKED.value)),
            else_=literal(State.DONE.value))
    if source is Source.OUTBOX:
        return case(
            (OutboxMessage.status == OutboxStatus.DONE, literal(State.DONE.value)),
            (OutboxMessage.status == OutboxStatus.FAILED, literal(State.PARKED.value)),
            (OutboxMessage.attempts > 0, literal(State.FAILED.value)),
            else_=literal(State.QUEUED.value))
    return case(*((WalletNotification.outcome == outcome, literal(state.value))
                  for outcome, state in _NOTICE_STATES.items()),
                else_=literal(State.DONE.value))


@dataclass(frozen=True)
class MessageQuery:
    """A search of one source; empty fields do not filter."""

    source: Source = Source.INBOUND
    type: str = ""  # message type (ORU^R01), outbox kind (book), or wallet platform
    state: State | None = None
    control_id: str = ""  # MSH-10 of an inbound message
    booking: str = ""  # a booking's public id (placer id)
    trade: str = ""  # an out_trade_no
    receipt: str = ""  # a HIS receipt number (a paid bill's settlement.receipt_no)
    # A person, by the blind indexes of their document (adapter/protection.py), never by the
    # number itself: their bookings' and patient links' messages and notices.
    patient_indexes: tuple[str, ...] = ()
    open_only: bool = False  # only failures no staff user has acknowledged yet
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = 100


@dataclass(frozen=True)
class MessageLine:
    """One row of the browser (never a message's content: ids, codes and states only)."""

    source: Source
    id: int
    at: dt.datetime
    type: str
    state: str
    key: str  # the control id, the outbox subject, or the trade number
    problem: str  # the error code or reason kept with it
    acknowledged_by: str = ""  # the staff user who marked the failure as handled


def table_of(source: Source) -> tuple[Any, Any, Any]:
    """(model, time column, type column) of a source."""
    if source is Source.INBOUND:
        return InboundMessage, InboundMessage.received_at, InboundMessage.message_type
    if source is Source.OUTBOX:
        return OutboxMessage, OutboxMessage.created_at, OutboxMessage.kind
    return WalletNotification, WalletNotification.received_at, WalletNotification.platform


def _conditions(session: Session, query: MessageQuery) -> list[ColumnElement[bool]] | None:
    """The WHERE of a query; None when a business key matches nothing at all."""
    model, at, kind = table_of(query.source)
    where: list[ColumnElement[bool]] = []
    if query.type:
        where.append(kind == query.type)
    if query.state is not None:
        where.append(state_of(query.source) == query.state.value)
    if query.open_only:
        where.append(model.acknowledged_at.is_(None))
    if query.since is not None:
        where.append(at >= query.since)
    if query.until is not None:
        where.append(at < query.until)
    if query.control_id:
        if query.source is not Source.INBOUND:
            return None
        where.append(InboundMessage.control_id == query.control_id)
    if query.booking:
        booking_id = session.scalar(select(Booking.id).where(Booking.public_id == query.booking))
        if booking_id is None or query.source is Source.NOTIFICATION:
            return None  # a notice names its trade: search by trade number
        if query.source is Source.OUTBOX:
            where.append(and_(OutboxMessage.subject_type == "booking",
                              OutboxMessage.subject_id == str(booking_id)))
        else:  # the HIS's queue events name our booking by its placer id
            where.append(InboundMessage.control_id.in_(select(QueueEventRecord.event_id).where(
                QueueEventRecord.placer_id == query.booking)))
    if query.trade:
        by_trade = _trade_condition(query.source, query.trade)
        if by_trade is None:
            return None
        where.append(by_trade)
    if query.receipt:
        by_receipt = _receipt_condition(session, query.source, query.receipt)
        if by_receipt is None:
            return None
        where.append(by_receipt)
    if query.patient_indexes:
        person = _person_condition(query)
        if person is None:
            return None
        where.append(person)
    return where


def _trade_condition(source: Source, out_trade_no: str) -> ColumnElement[bool] | None:
    """A trade's notifications, or its outbox items (closes and refunds name it); None for
    inbound HL7, which names no trade."""
    if source is Source.NOTIFICATION:
        return WalletNotification.out_trade_no == out_trade_no
    if source is Source.OUTBOX:
        return or_(OutboxMessage.subject_id == out_trade_no,
                   OutboxMessage.subject_id.startswith(f"{out_trade_no}-", autoescape=True),
                   OutboxMessage.payload.contains(f'"{out_trade_no}"', autoescape=True))
    return None


def _receipt_condition(session: Session, source: Source,
                       receipt_no: str) -> ColumnElement[bool] | None:
    """The messages of the bill the HIS gave this receipt: its settlement's outbox items (the
    commit, the release) and its trade's, and the trade's notifications. None when no bill has
    the receipt, or for inbound HL7: the HIS's refund requests name a receipt inside the
    message only (search those by control id or time)."""
    found = session.execute(select(Settlement.id, Settlement.out_trade_no).where(
        Settlement.receipt_no == receipt_no)).first()
    if found is None or source is Source.INBOUND:
        return None
    settlement_id, out_trade_no = found
    by_trade = _trade_condition(source, out_trade_no) if out_trade_no else None
    if source is Source.NOTIFICATION:
        return by_trade
    own = and_(OutboxMessage.subject_type == "settlement",
               OutboxMessage.subject_id == str(settlement_id))
    return own if by_trade is None else or_(own, by_trade)


def _person_condition(query: MessageQuery) -> ColumnElement[bool] | None:
    if query.source is Source.OUTBOX:
        # Subjects are kept as text ("booking", "42"): the ids are compared as text.
        bookings = select(cast(Booking.id, String)).where(
            Booking.patient_document_index.in_(query.patient_indexes))
        links = select(cast(Patient.id, String)).where(
            Patient.document_index.in_(query.patient_indexes))
        return or_(and_(OutboxMessage.subject_type == "booking",
                        OutboxMessage.subject_id.in_(bookings)),
                   and_(OutboxMessage.subject_type == "patient",
                        OutboxMessage.subject_id.in_(links)))
    if query.source is Source.NOTIFICATION:
        return WalletNotification.out_trade_no.in_(select(Booking.out_trade_no).where(
            Booking.patient_document_index.in_(query.patient_indexes),
            Booking.out_trade_no.is_not(None)))
    # Inbound: the queue events of the HIS patient ids the person's links carry (what is kept
    # of other inbound messages names no person the adapter can look up without reading them).
    his_ids = select(Patient.his_patient_id).where(
        Patient.document_index.in_(query.patient_indexes), Patient.his_patient_id.is_not(None))
    return InboundMessage.control_id.in_(select(QueueEventRecord.event_id).where(
        QueueEventRecord.his_patient_id.in_(his_ids)))


def search_messages(session: Session, query: MessageQuery) -> tuple[list[MessageLine], int]:
    """The newest rows matching ``query`` (at most ``limit``) and how many match in all."""
    where = _conditions(session, query)
    if where is None:
        return [], 0
    model = table_of(query.source)[0]
    total = int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)
    return _lines(session, query.source, where, query.limit)[0], total


def _lines(session: Session, source: Source, where: list[ColumnElement[bool]],
           limit: int) -> tuple[list[MessageLine], None]:
    model, at, kind = table_of(source)
    if source is Source.INBOUND:
        key, problem = InboundMessage.control_id, InboundMessage.error_code
    elif source is Source.OUTBOX:
        key = OutboxMessage.subject_type + literal(":") + OutboxMessage.subject_id
        problem = OutboxMessage.last_error
    else:
        key, problem = WalletNotification.out_trade_no, WalletNotification.reason
    rows = session.execute(
        select(model.id, at, kind, state_of(source), key, problem, model.acknowledged_by)
        .where(*where).order_by(model.id.desc()).limit(limit))
    return [MessageLine(source, row[0], row[1], row[2] or "", row[3], row[4] or "",
                        row[5] or "", row[6] or "") for row in rows], None


def unacknowledged(source: Source) -> ColumnElement[bool]:
    """Rows no staff user has marked as handled."""
    return table_of(source)[0].acknowledged_at.is_(None)


# The most rows one action of the browser touches: a search wider than this is narrowed first.
MAX_ACTION_ROWS = 10_000


def _matching(session: Session, query: MessageQuery, *extra: ColumnElement[bool]) -> list[Any]:
    where = _conditions(session, query)
    if where is None:
        return []
    model = table_of(query.source)[0]
    return list(session.scalars(select(model).where(*where, *extra).order_by(model.id)
                                .limit(MAX_ACTION_ROWS).with_for_update()))


def reprocess_messages(session: Session, query: MessageQuery, *, actor: str, remote: str,
                       now: dt.datetime) -> list[int]:
    """Process again exactly the searched messages that can be: failed inbound messages go
    back to the inbound runner, failed and parked outbox items are due now with their attempts
    reset. Notifications are not ours to resend (the wallet retries them). Each is audited."""
    failing = state_of(query.source).in_((State.FAILED.value, State.PARKED.value))
    if query.source is Source.INBOUND:
        rows = _matching(session, query, InboundMessage.status == InboundStatus.FAILED)
        for row in rows:
            row.status, row.attempts, row.error_text = InboundStatus.RECEIVED, 0, ""
    elif query.source is Source.OUTBOX:
        rows = _matching(session, query, failing)
        for row in rows:
            row.status, row.attempts, row.next_attempt_at = OutboxStatus.PENDING, 0, now
            row.last_error = ""
    else:
        return []
    for row in rows:
        row.acknowledged_at, row.acknowledged_by = None, None
        record(session, actor, Action.MESSAGE_REPROCESSED, f"{query.source}:{row.id}", remote,
               now)
    return [row.id for row in rows]


def acknowledge_messages(session: Session, query: MessageQuery, *, actor: str, remote: str,
                         now: dt.datetime) -> list[int]:
    """Mark exactly the searched failed and parked messages as handled: they leave the
    dashboard's error counts. Each is audited."""
    failing = state_of(query.source).in_((State.FAILED.value, State.PARKED.value))
    rows = _matching(session, query, failing, unacknowledged(query.source))
    for row in rows:
        row.acknowledged_at, row.acknowledged_by = now, actor[:64]
        record(session, actor, Action.MESSAGE_ACKNOWLEDGED, f"{query.source}:{row.id}", remote,
               now)
    return [row.id for row in rows]


# Parked work: what waits for staff, by where it is kept (docs/staff.md).
PARKED_WORK = ((Source.INBOUND, State.FAILED), (Source.INBOUND, State.PARKED),
               (Source.OUTBOX, State.PARKED))


def parked_work(session: Session, *, limit: int = 50
                ) -> list[tuple[MessageQuery, list[MessageLine], int]]:
    """Each kind of parked work not yet acknowledged: the search that finds it (the browser's
    actions take it as it is), its newest rows and how many there are."""
    found = []
    for source, state in PARKED_WORK:
        query = MessageQuery(source=source, state=state, open_only=True, limit=limit)
        lines, total = search_messages(session, query)
        found.append((query, lines, total))
    return found


def raw_message(session: Session, source: Source, message_id: int, *, actor: str,
                remote: str, now: dt.datetime) -> tuple[MessageLine, bytes, str] | None:
    """A message's kept bytes (HL7 as received, the outbox payload, the notice's body) and
    their declared encoding (MSH-18; "" for UTF-8), for an admin to read once masked; the view
    is audited. None when there is no such message."""
    model, _, _ = table_of(source)
    where = [model.id == message_id]
    lines, _ = _lines(session, source, where, 1)
    if not lines:
        return None
    row = session.get(model, message_id)
    charset = ""
    if source is Source.INBOUND:
        content, charset = row.raw, row.charset
    elif source is Source.OUTBOX:
        content = row.payload.encode("utf-8")
    else:
        content = row.raw or b""
    record(session, actor, Action.MESSAGE_VIEWED, f"{source}:{message_id}", remote, now)
    return lines[0], content, charset
