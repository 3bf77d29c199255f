"""Pruning what grows without bound: messages in and out, wallet notifications, queue events
and the idempotency replay cache, once older than ADAPTER_RETENTION_DAYS, after an optional
archive (adapter/retention/archive.py). docs/operations.md#retention.

What is kept whatever its age: a failure (failed, parked, refused) until staff acknowledge it;
an inbound message or outbox item still waiting; an outbox item whose subject has work still
pending; anything about a trade not settled (unpaid and open, a booking or bill still being
posted, a refund on its way).

Rows go in batches, each one short transaction that claims its rows (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, like every other job), archives them, deletes them and commits: tables
are never locked for long and several workers share the work without doing any of it twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from adapter.flows import Services
from adapter.models import (
    Booking,
    BookingStatus,
    IdempotencyRecord,
    InboundMessage,
    InboundStatus,
    OutboxMessage,
    OutboxStatus,
    QueueEventRecord,
    Refund,
    Trade,
    TradeStatus,
    WalletNotification,
)
from adapter.models_billing import Settlement, SettlementStatus
from adapter.retention.archive import archived_row, write_archive
from adapter.staff.audit import Action, record

logger = logging.getLogger(__name__)

BATCH = 500  # rows per transaction (kept HL7 is a few KB a message)
MAX_BATCHES = 200  # per table and run: an hourly run catches up on a backlog over a few hours
# Notification outcomes that still wait or failed (adapter/staff/messages.py State).
UNFINISHED_NOTICES = ("received", "error", "refused")


def _live_trades() -> Any:  # noqa: ANN401 - a SELECT of out_trade_no
    """Trades not settled: open and unpaid, paid for a booking or bill still being posted,
    or with a refund on its way."""
    return select(Trade.out_trade_no).where(Trade.status.in_(
        (TradeStatus.CREATED, TradeStatus.UNSENT))).union(
        select(Refund.out_trade_no).where(Refund.status != "done"),
        select(Booking.out_trade_no).where(
            Booking.status.in_((BookingStatus.PENDING_PAYMENT, BookingStatus.CONFIRMING)),
            Booking.out_trade_no.is_not(None)),
        select(Settlement.out_trade_no).where(Settlement.status.in_(SettlementStatus.OPEN),
                                              Settlement.out_trade_no.is_not(None)))


def _inbound(cutoff: dt.datetime, _: dt.date) -> list[ColumnElement[bool]]:
    return [InboundMessage.received_at < cutoff, or_(
        InboundMessage.status == InboundStatus.PROCESSED,
        and_(InboundMessage.status != InboundStatus.RECEIVED,
             InboundMessage.acknowledged_at.is_not(None)))]


def _outbox(cutoff: dt.datetime, _: dt.date) -> list[ColumnElement[bool]]:
    other = aliased(OutboxMessage)
    return [
        OutboxMessage.created_at < cutoff,
        or_(OutboxMessage.status == OutboxStatus.DONE,
            and_(OutboxMessage.status == OutboxStatus.FAILED,
                 OutboxMessage.acknowledged_at.is_not(None))),
        ~exists().where(other.subject_type == OutboxMessage.subject_type,
                        other.subject_id == OutboxMessage.subject_id,
                        other.status == OutboxStatus.PENDING),
        ~and_(OutboxMessage.subject_type == "trade", OutboxMessage.subject_id.in_(_live_trades())),
        ~and_(OutboxMessage.subject_type == "refund", OutboxMessage.subject_id.in_(
            select(Refund.out_request_no).where(Refund.status != "done"))),
    ]


def _notifications(cutoff: dt.datetime, _: dt.date) -> list[ColumnElement[bool]]:
    return [WalletNotification.received_at < cutoff,
            or_(WalletNotification.outcome.not_in(UNFINISHED_NOTICES),
                WalletNotification.acknowledged_at.is_not(None)),
            or_(WalletNotification.out_trade_no.is_(None),
                WalletNotification.out_trade_no.not_in(_live_trades()))]


def _queue_events(_: dt.datetime, cutoff_day: dt.date) -> list[ColumnElement[bool]]:
    # A session's queue is folded from its day's events; the pace estimate reads 3 days back.
    return [QueueEventRecord.visit_date < cutoff_day]


def _idempotency(cutoff: dt.datetime, _: dt.date) -> list[ColumnElement[bool]]:
    return [IdempotencyRecord.created_at < cutoff]


@dataclass(frozen=True)
class Rule:
    """One table the retention job prunes: which rows, dated by which column, archived or not
    (the idempotency cache is a replay of answers the bookings themselves keep)."""

    table: str
    model: Any
    at: Any  # the column that dates a row (its archive's day)
    prunable: Callable[[dt.datetime, dt.date], list[ColumnElement[bool]]]
    archived: bool = True


RULES = (
    Rule("inbound_message", InboundMessage, InboundMessage.received_at, _inbound),
    Rule("outbox_message", OutboxMessage, OutboxMessage.created_at, _outbox),
    Rule("wallet_notification", WalletNotification, WalletNotification.received_at,
         _notifications),
    Rule("queue_event", QueueEventRecord, QueueEventRecord.visit_date, _queue_events),
    Rule("idempotency_record", IdempotencyRecord, IdempotencyRecord.created_at, _idempotency,
         archived=False),
)


@dataclass
class PruneReport:
    """Rows pruned (or, in a dry run, prunable) per table, and the archive files written."""

    cutoff: dt.datetime
    counts: dict[str, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Rows in all tables."""
        return sum(self.counts.values())

    def target(self) -> str:
        """The counts as the audit trail keeps them: ``inbound_message=12,...``."""
        return ",".join(f"{table}={count}" for table, count in self.counts.items() if count)


def _day_of(value: dt.datetime | dt.date, tz: dt.tzinfo) -> dt.date:
    return value.astimezone(tz).date() if isinstance(value, dt.datetime) else value


def _prune_batch(session: Session, rule: Rule, where: list[ColumnElement[bool]],
                 archive_dir: Path | None, tz: dt.tzinfo,
                 document_types: frozenset[str]) -> tuple[int, list[Path]]:
    query = select(rule.model).where(*where).order_by(rule.model.id).limit(BATCH)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=rule.model)
    rows = list(session.scalars(query))
    if not rows:
        return 0, []
    files = []
    if archive_dir is not None and rule.archived:
        by_day: dict[dt.date, list[Any]] = {}
        for row in rows:
            by_day.setdefault(_day_of(getattr(row, rule.at.key), tz), []).append(row)
        for day, group in sorted(by_day.items()):
            files.append(write_archive(archive_dir, rule.table, day, group[0].id, group[-1].id,
                                       (archived_row(row, document_types) for row in group)))
    session.execute(delete(rule.model).where(rule.model.id.in_([row.id for row in rows])))
    return len(rows), files


def prune_old_rows(session_factory: sessionmaker, *, days: int, now: dt.datetime,
                   tz: dt.tzinfo, archive_dir: Path | None,
                   document_types: frozenset[str] = frozenset(), actor: str = "worker",
                   dry_run: bool = False) -> PruneReport:
    """Prune every table's rows older than ``days`` (archived first when ``archive_dir`` is
    set); a dry run only counts them. Audited with the counts when anything went."""
    cutoff = now - dt.timedelta(days=days)
    cutoff_day = now.astimezone(tz).date() - dt.timedelta(days=days)
    report = PruneReport(cutoff)
    for rule in RULES:
        where = rule.prunable(cutoff, cutoff_day)
        if dry_run:
            with session_factory() as session:
                report.counts[rule.table] = int(session.scalar(
                    select(func.count()).select_from(rule.model).where(*where)) or 0)
            continue
        report.counts[rule.table] = 0
        for _ in range(MAX_BATCHES):
            with session_factory.begin() as session:
                count, files = _prune_batch(session, rule, where, archive_dir, tz,
                                            document_types)
            report.counts[rule.table] += count
            report.files += files
            if count < BATCH:
                break
    if report.total and not dry_run:
        with session_factory.begin() as session:
            record(session, actor, Action.MESSAGES_PRUNED, report.target(), "", now)
        logger.info("retention: pruned %s (older than %d days)", report.target(), days)
    return report


def prune_old_messages(services: Services) -> int:
    """The retention flow's scheduled job: prune under ADAPTER_RETENTION_DAYS and
    ADAPTER_ARCHIVE_DIR; how many rows went."""
    config = services.config
    if config.retention_days is None:
        return 0
    return prune_old_rows(
        services.session_factory, days=config.retention_days, now=services.clock.now(),
        tz=config.tz, archive_dir=config.archive_dir,
        document_types=document_types_of(services)).total


def document_types_of(services: Services) -> frozenset[str]:
    """The HL7 identifier types (PID-3.5) of the hospital's document types, for masking."""
    return frozenset(t.hl7_type for t in services.mappings.document_types.values())
