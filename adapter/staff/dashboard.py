"""The dashboard's figures, read in one transaction: the links, today's money and bookings,
results delivered, the outbox backlog per destination and counters per message type, and the
last 24 hours hour by hour. Amounts stay integer fen here; pages format them with
adapter.money.yuan.

"Today" is the calendar day in the hospital's zone (DESIGN invariant 8).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adapter.db import aggregate_utc
from adapter.models import (
    Booking,
    CheckIn,
    CriticalAlert,
    InboundMessage,
    LinkState,
    OutboxMessage,
    OutboxStatus,
    Refund,
    Trade,
)
from adapter.results.announcing import KIND as RESULT_PUSH
from adapter.staff.messages import Source, State, state_of, table_of, unacknowledged

HOURS = 24


@dataclass(frozen=True)
class LinkView:
    """A link's last known state: connected when it worked within ``max_age``."""

    name: str
    connected: bool
    last_exchange: dt.datetime | None
    latency_ms: int | None
    detail: str


@dataclass(frozen=True)
class Money:
    """How many, and how much in fen."""

    count: int = 0
    fen: int = 0


@dataclass(frozen=True)
class Backlog:
    """Outbox items waiting for one destination (a link: "his", "wallet")."""

    destination: str
    pending: int
    oldest_age_seconds: int


@dataclass(frozen=True)
class Counter:
    """One message type's counts. ``source`` is where the browser finds them: inbound
    (HL7 from the HIS), outbox (HL7 and wallet calls out) or notification (wallet notices in).
    ``received`` counts the last 24 hours; the others what is there now."""

    source: str
    type: str
    received: int = 0
    queued: int = 0  # waiting to be processed or delivered
    failed: int = 0  # failed, still to be retried or reprocessed
    parked: int = 0  # given up or refused for good: waits for staff


@dataclass(frozen=True)
class Hour:
    """One hour of the chart (its start, UTC)."""

    start: dt.datetime
    bookings: int = 0
    messages: int = 0


@dataclass(frozen=True)
class Dashboard:
    """Everything the status page shows."""

    now: dt.datetime
    links: list[LinkView]
    bookings_today: int
    check_ins_today: int
    payments_today: Money
    refunds_today: Money
    results_delivered_today: int
    backlogs: list[Backlog]
    counters: list[Counter]
    hours: list[Hour] = field(default_factory=list)
    alerts_open: int = 0  # critical values nobody has acknowledged
    alerts_escalated: int = 0  # of those, escalated


def day_start(now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Midnight of ``now``'s day in the hospital's zone, in UTC."""
    local = now.astimezone(tz)
    return dt.datetime.combine(local.date(), dt.time(), tzinfo=tz).astimezone(dt.UTC)


def read_dashboard(session: Session, *, now: dt.datetime, tz: ZoneInfo,
                   destinations: Mapping[str, str], link_names: Iterable[str],
                   link_max_age: dt.timedelta) -> Dashboard:
    """The dashboard at ``now``; ``destinations`` maps each outbox kind to its link."""
    today = day_start(now, tz)
    since = now - dt.timedelta(hours=HOURS)
    return Dashboard(
        now=now,
        links=_links(session, now, link_names, link_max_age),
        bookings_today=_count(session, Booking.id, Booking.created_at >= today),
        check_ins_today=_count(session, CheckIn.id, CheckIn.checked_in_at >= today),
        payments_today=_money(session, Trade.total_fen, Trade.paid_at >= today),
        refunds_today=_money(session, Refund.refund_fen, Refund.status == "done",
                             Refund.done_at >= today),
        results_delivered_today=_count(session, OutboxMessage.id,
                                       OutboxMessage.kind == RESULT_PUSH,
                                       OutboxMessage.status == OutboxStatus.DONE,
                                       OutboxMessage.done_at >= today),
        backlogs=_backlogs(session, now, destinations),
        counters=_counters(session, since),
        hours=_hours(session, now),
        alerts_open=_count(session, CriticalAlert.id, CriticalAlert.acknowledged_at.is_(None)),
        alerts_escalated=_count(session, CriticalAlert.id,
                                CriticalAlert.acknowledged_at.is_(None),
                                CriticalAlert.escalated_at.is_not(None)),
    )


def _count(session: Session, column: object, *where: object) -> int:
    return int(session.scalar(select(func.count(column)).where(*where)) or 0)


def _money(session: Session, amount: object, *where: object) -> Money:
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(amount), 0)).where(*where)).one()
    return Money(int(count), int(total))


def _links(session: Session, now: dt.datetime, names: Iterable[str],
           max_age: dt.timedelta) -> list[LinkView]:
    states = {s.name: s for s in session.scalars(select(LinkState))}
    views = []
    for name in sorted(set(names) | set(states)):
        state = states.get(name)
        if state is None:
            views.append(LinkView(name, False, None, None, ""))
            continue
        views.append(LinkView(name, state.up and now - state.checked_at <= max_age,
                              state.checked_at, state.latency_ms, state.detail))
    return views


def _backlogs(session: Session, now: dt.datetime,
              destinations: Mapping[str, str]) -> list[Backlog]:
    pending: dict[str, int] = defaultdict(int)
    oldest: dict[str, dt.datetime] = {}
    for kind, count, first in session.execute(
            select(OutboxMessage.kind, func.count(), func.min(OutboxMessage.created_at))
            .where(OutboxMessage.status == OutboxStatus.PENDING).group_by(OutboxMessage.kind)):
        destination = destinations.get(kind) or kind
        pending[destination] += count
        first = aggregate_utc(first)
        oldest[destination] = min(oldest.get(destination, first), first)
    names = sorted(set(destinations.values()) | set(pending))
    return [Backlog(name, pending.get(name, 0),
                    int((now - oldest[name]).total_seconds()) if name in oldest else 0)
            for name in names]



def _counters(session: Session, since: dt.datetime) -> list[Counter]:
    counters = []
    for source in Source:
        _, at, kind = table_of(source)
        state = state_of(source)
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for name, in_state, n in session.execute(
                select(kind, state, func.count())
                .where(state != State.DONE.value, unacknowledged(source))
                .group_by(kind, state)):
            counts[name or "?"][in_state] += n
        for name, n in session.execute(
                select(kind, func.count()).where(at >= since).group_by(kind)):
            counts[name or "?"]["24h"] += n
        counters += [Counter(source.value, name, received=c["24h"], queued=c[State.QUEUED],
                             failed=c[State.FAILED], parked=c[State.PARKED])
                     for name, c in sorted(counts.items())]
    return counters


def _hours(session: Session, now: dt.datetime) -> list[Hour]:
    first = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=HOURS - 1)
    bookings, messages = [0] * HOURS, [0] * HOURS
    # Bucketed here rather than in SQL: hour truncation is spelt differently by SQLite and
    # PostgreSQL, and a day's rows are one indexed column read.
    for column, where, into in (
            (Booking.created_at, Booking.created_at >= first, bookings),
            (InboundMessage.received_at, InboundMessage.received_at >= first, messages),
            (OutboxMessage.created_at, OutboxMessage.created_at >= first, messages)):
        for moment in session.scalars(select(column).where(where, column <= now)):
            index = int((moment - first).total_seconds() // 3600)
            if 0 <= index < HOURS:
                into[index] += 1
    return [Hour(first + dt.timedelta(hours=i), bookings[i], messages[i]) for i in range(HOURS)]
