"""Reconciling a day: read the three books, match them, heal what is safe, record everything.

The wallet's bill is streamed into two dicts (payments by out_trade_no, refunds by
out_request_no); our trades and refunds of the day are read as plain rows; whatever a book names
that the day's rows lack is fetched by key in batches. Matching is adapter.reconciliation.
matching. Healing goes through the paths a normal payment takes (mark_paid and the purpose's
paid handler, which posts through the outbox or refunds) and the refund use case, each claimed
once in reconciliation_heal so that no re-run heals twice.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adapter.flows import Services
from adapter.models import (
    ReconciliationDiscrepancy,
    ReconciliationHeal,
    ReconciliationRun,
    Refund,
    Trade,
)
from adapter.payments.refunds import RefundTooLarge, refund_in_full, refund_part
from adapter.payments.trades import lock_trade, mark_paid
from adapter.ports import (
    BillEntryKind,
    HisGateway,
    HisRefused,
    HisSettlement,
    HisUnavailable,
    SettlementChannel,
    SettlementKind,
    SettlementList,
    WalletBillEntry,
    WalletGateway,
    WalletRefused,
    WalletUnavailable,
)
from adapter.reconciliation.matching import (
    PAID,
    UNHEARD,
    Action,
    Books,
    Discrepancy,
    RefundView,
    TradeView,
    classify,
)

logger = logging.getLogger(__name__)

BATCH = 500  # keys per IN (...) lookup
PROGRESS_EVERY = 5000  # bill lines between progress reports
Progress = Callable[[str, int], None]  # (stage, lines so far)


class ReconciliationFailed(Exception):
    """A book could not be read (the wallet's bill not there yet, the HIS down); the run is
    recorded as failed with the reason, and may be run again."""


class AlreadyReconciled(Exception):
    """A scheduled run of this day and wallet is running or done (another worker)."""


@dataclass
class RunResult:
    """What a run found: its summary (counts and fen sums per side) and its discrepancies."""

    run_id: int
    day: dt.date
    platform: str
    summary: dict[str, Any]
    discrepancies: list[Discrepancy] = field(default_factory=list)


def reconcile_day(services: Services, wallet: WalletGateway, his: HisGateway, day: dt.date, *,
                  now: dt.datetime, trigger: str = "cli", progress: Progress | None = None
                  ) -> RunResult:
    """Reconcile one day (in the hospital's zone) of one wallet; heal the safe discrepancies.

    Raises ReconciliationFailed when a book cannot be read, AlreadyReconciled when a scheduled
    run of the day holds it.
    """
    run_id = _start(services, wallet.platform, day, trigger, now)
    try:
        books, summary = _read_books(services, wallet, his, day, progress)
        postable = {purpose: True for purpose in services.paid_handlers}
        found = classify(books, postable)
        found = _drop_posted_next_day(his, day, found, books, services.clock.now())
        if progress:
            progress("matched", len(found))
        _heal_all(services, run_id, day, found, books)
        summary["healed"] = sum(1 for item in found if item.healed)
        summary["by_kind"] = _by_kind(found)
        _finish(services, run_id, found, summary, services.clock.now())
    except (WalletUnavailable, WalletRefused, HisUnavailable, HisRefused) as exc:
        reason = f"{type(exc).__name__}: {exc}"[:200]
        _fail(services, run_id, reason, services.clock.now())
        logger.warning("reconciliation of %s (%s) failed: %s", day, wallet.platform,
                       type(exc).__name__)
        raise ReconciliationFailed(reason) from None
    except Exception as exc:
        # Our bug or the database: the run must not stay "running" (holding the day).
        _fail(services, run_id, f"error: {type(exc).__name__}", services.clock.now())
        raise
    logger.info("reconciliation of %s (%s): %d discrepancies, %d healed", day, wallet.platform,
                len(found), summary["healed"])
    return RunResult(run_id, day, wallet.platform, summary, found)


LATE_WINDOW = dt.timedelta(hours=1)  # paid this close to midnight: posted maybe the next day


def _drop_posted_next_day(his: HisGateway, day: dt.date, found: list[Discrepancy],
                          books: Books, now: dt.datetime) -> list[Discrepancy]:
    """A payment of the day's last hour that the HIS posted after midnight is in order: look
    for it on the next day's list (once the next day has begun; one more query, only when
    there is such a payment). A HIS that does not answer leaves them listed."""
    late = {item.out_trade_no: item for item in found
            if item.action is Action.CHECK_POSTING
            and books.wallet_payments[item.out_trade_no].at >= books.end - LATE_WINDOW}
    if not late or now < books.end:
        return found
    try:
        next_day = his.settlement_list(day + dt.timedelta(days=1))
    except (HisUnavailable, HisRefused):
        return found
    by_reference = {books.trades[key].reference: key for key in late}
    posted = set()
    for entry in next_day.entries:
        key = entry.out_trade_no or by_reference.get(entry.placer_id, "")
        if (key in late and entry.kind is SettlementKind.PAYMENT
                and entry.channel is SettlementChannel.WALLET
                and entry.amount_fen == books.trades[key].total_fen):
            posted.add(key)
    return [item for item in found if not (item.out_trade_no in posted
                                           and late.get(item.out_trade_no) is item)]


# -- the run's record --------------------------------------------------------------------


def _start(services: Services, platform: str, day: dt.date, trigger: str,
           now: dt.datetime) -> int:
    key = f"{platform}:{day.isoformat()}" if trigger == "schedule" else None
    try:
        with services.session_factory.begin() as session:
            run = ReconciliationRun(day=day, platform=platform, trigger=trigger,
                                    schedule_key=key, started_at=now)
            session.add(run)
            session.flush()
            return run.id
    except IntegrityError:
        raise AlreadyReconciled(f"{platform} {day}") from None


def _fail(services: Services, run_id: int, reason: str, now: dt.datetime) -> None:
    with services.session_factory.begin() as session:
        run = session.get(ReconciliationRun, run_id)
        # A failed scheduled run lets the day go: the next tick tries again.
        run.status, run.error, run.finished_at, run.schedule_key = "failed", reason, now, None


def _finish(services: Services, run_id: int, found: list[Discrepancy], summary: dict[str, Any],
            now: dt.datetime) -> None:
    with services.session_factory.begin() as session:
        if found:
            session.execute(insert(ReconciliationDiscrepancy), [
                {"run_id": run_id, "kind": item.kind.value, "out_trade_no": item.out_trade_no,
                 "out_request_no": item.out_request_no, "his_receipt_no": item.his_receipt_no,
                 "purpose": item.purpose, "wallet_fen": item.wallet_fen,
                 "adapter_fen": item.adapter_fen, "his_fen": item.his_fen,
                 "action": item.action.value, "healed": item.healed, "heal": item.heal}
                for item in found])
        run = session.get(ReconciliationRun, run_id)
        run.status, run.finished_at = "done", now
        run.summary = json.dumps(summary, sort_keys=True)
        run.discrepancies, run.healed = len(found), summary["healed"]


def _by_kind(found: list[Discrepancy]) -> dict[str, dict[str, int]]:
    kinds: dict[str, dict[str, int]] = {}
    for item in found:
        entry = kinds.setdefault(item.kind.value, {"count": 0, "fen": 0})
        entry["count"] += 1
        entry["fen"] += max(item.wallet_fen or 0, item.adapter_fen or 0, item.his_fen or 0)
    return kinds


# -- reading the books ---------------------------------------------------------------------


def _read_books(services: Services, wallet: WalletGateway, his: HisGateway, day: dt.date,
                progress: Progress | None) -> tuple[Books, dict[str, Any]]:
    tz = services.config.tz
    start = dt.datetime.combine(day, dt.time(0), tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tz)
    bill = wallet.download_trade_bill(day)
    payments: dict[str, WalletBillEntry] = {}
    refunds: dict[str, WalletBillEntry] = {}
    side = _Sums()
    duplicates = 0
    payment = BillEntryKind.PAYMENT
    for count, entry in enumerate(bill.entries(), start=1):
        if entry.kind is payment:
            book, key = payments, entry.out_trade_no
        else:
            book, key = refunds, entry.out_request_no
        if key in book:
            duplicates += 1  # the same payment twice on one bill: counted once, reported
            continue
        book[key] = entry
        if progress and count % PROGRESS_EVERY == 0:
            progress("bill", count)
    side.payments, side.payment_fen = len(payments), sum(e.amount_fen for e in payments.values())
    side.refunds, side.refund_fen = len(refunds), sum(e.amount_fen for e in refunds.values())
    settlements = his.settlement_list(day)
    with services.session_factory() as session:
        trades = _day_trades(session, wallet.platform, start, end)
        ours = _day_refunds(session, wallet.platform, start, end)
        _fetch_refunds(session, ours, (k for k in refunds if k not in ours))
        foreign: set[str] = set()
        _fetch_trades(session, trades, _named_trades(payments, refunds, ours, settlements),
                      wallet.platform, foreign)
        his_lines, his_keys, his_sums = _his_lines(session, trades, settlements,
                                                   wallet.platform, foreign)
    adapter = _Sums()
    for trade in trades.values():
        if trade.status in PAID and trade.paid_at and start <= trade.paid_at < end:
            adapter.add(True, trade.total_fen)
    for refund in ours.values():
        if refund.status == "done" and refund.done_at and start <= refund.done_at < end:
            adapter.add(False, refund.refund_fen)
    summary = {"day": day.isoformat(), "platform": wallet.platform, "wallet": side.as_dict(),
               "adapter": adapter.as_dict(), "his": his_sums.as_dict(),
               "problems": {"wallet": bill.problem_count + duplicates,
                            "his": len(settlements.problems)}}
    if bill.totals is not None and bill.totals != side.as_tuple():
        summary["problems"]["wallet_totals_disagree"] = True
    return Books(start, end, payments, refunds, trades, ours, his_lines, his_keys), summary


@dataclass
class _Sums:
    payments: int = 0
    payment_fen: int = 0
    refunds: int = 0
    refund_fen: int = 0

    def add(self, payment: bool, fen: int) -> None:
        if payment:
            self.payments, self.payment_fen = self.payments + 1, self.payment_fen + fen
        else:
            self.refunds, self.refund_fen = self.refunds + 1, self.refund_fen + fen

    def as_dict(self) -> dict[str, int]:
        return {"payments": self.payments, "payment_fen": self.payment_fen,
                "refunds": self.refunds, "refund_fen": self.refund_fen}

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.payments, self.payment_fen, self.refunds, self.refund_fen)


_TRADE_COLUMNS = (Trade.out_trade_no, Trade.purpose, Trade.reference, Trade.status,
                  Trade.total_fen, Trade.refunded_fen, Trade.paid_at, Trade.platform)


def _trade_view(row: Any) -> TradeView:  # noqa: ANN401 - a Row of _TRADE_COLUMNS
    return TradeView(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


def _day_trades(session: Session, platform: str, start: dt.datetime,
                end: dt.datetime) -> dict[str, TradeView]:
    # paid_at is not read back: the query puts it inside the day, which is all matching asks
    # (reading 100,000 timestamps through their type costs a second on a big day).
    rows = session.execute(select(*_TRADE_COLUMNS[:6]).where(
        Trade.platform == platform, Trade.paid_at >= start, Trade.paid_at < end))
    return {row[0]: TradeView(*row, start) for row in rows}


def _day_refunds(session: Session, platform: str, start: dt.datetime,
                 end: dt.datetime) -> dict[str, RefundView]:
    columns = (Refund.out_request_no, Refund.out_trade_no, Refund.refund_fen, Refund.status,
               Refund.done_at)
    rows = session.execute(select(*columns).join(Trade).where(
        Trade.platform == platform,
        ((Refund.done_at >= start) & (Refund.done_at < end))
        | ((Refund.status != "done") & (Refund.created_at < end))))
    return {row[0]: RefundView(*row) for row in rows}


def _batches(keys: Iterable[str]) -> Iterable[list[str]]:
    batch: list[str] = []
    for key in keys:
        batch.append(key)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _fetch_refunds(session: Session, ours: dict[str, RefundView], keys: Iterable[str]) -> None:
    columns = (Refund.out_request_no, Refund.out_trade_no, Refund.refund_fen, Refund.status,
               Refund.done_at)
    for batch in _batches(list(keys)):
        for row in session.execute(select(*columns).where(Refund.out_request_no.in_(batch))):
            ours[row[0]] = RefundView(*row)


def _named_trades(payments: dict[str, WalletBillEntry], refunds: dict[str, WalletBillEntry],
                  ours: dict[str, RefundView], settlements: SettlementList) -> Iterable[str]:
    yield from payments
    yield from (entry.out_trade_no for entry in refunds.values())
    yield from (refund.out_trade_no for refund in ours.values())
    yield from (entry.out_trade_no for entry in settlements.entries if entry.out_trade_no)


def _fetch_trades(session: Session, trades: dict[str, TradeView], keys: Iterable[str],
                  platform: str, foreign: set[str]) -> None:
    """Add the trades named by key; another wallet's go to ``foreign`` (its own run)."""
    missing = list(dict.fromkeys(k for k in keys if k not in trades))
    for batch in _batches(missing):
        for row in session.execute(select(*_TRADE_COLUMNS).where(Trade.out_trade_no.in_(batch))):
            if row[7] == platform:
                trades[row[0]] = _trade_view(row)
            else:
                foreign.add(row[0])


def _his_lines(session: Session, trades: dict[str, TradeView], settlements: SettlementList,
               platform: str, foreign: set[str]) -> tuple[list[HisSettlement], list[str], _Sums]:
    """The HIS's lines that concern the wallet (its wallet channel, and every refund), each with
    the out_trade_no it settles ("" when none of ours). Lines of another wallet's trades (in
    ``foreign`` by out_trade_no, or found so by placer id) are left to that wallet's run."""
    by_reference = {t.reference: t.out_trade_no for t in trades.values()}
    unresolved = [e.placer_id for e in settlements.entries
                  if not e.out_trade_no and e.placer_id and e.placer_id not in by_reference]
    foreign_references: set[str] = set()
    for batch in _batches(list(dict.fromkeys(unresolved))):
        for row in session.execute(select(*_TRADE_COLUMNS).where(Trade.reference.in_(batch))):
            if row[7] == platform:
                trades.setdefault(row[0], _trade_view(row))
                by_reference[row[2]] = row[0]
            else:
                foreign_references.add(row[2])
    lines: list[HisSettlement] = []
    keys: list[str] = []
    sums = _Sums()
    for entry in settlements.entries:
        if entry.kind is SettlementKind.PAYMENT and entry.channel is not SettlementChannel.WALLET:
            continue  # paid at the window: the cashier's reconciliation
        if entry.out_trade_no in foreign or (not entry.out_trade_no
                                             and entry.placer_id in foreign_references):
            continue
        key = entry.out_trade_no or by_reference.get(entry.placer_id, "")
        lines.append(entry)
        keys.append(key)
        if entry.channel is SettlementChannel.WALLET:
            sums.add(entry.kind is SettlementKind.PAYMENT, entry.amount_fen)
    return lines, keys, sums


# -- healing -------------------------------------------------------------------------------

HEALING = (Action.APPLY_PAYMENT, Action.REFUND_UNPOSTABLE, Action.REFUND_HIS_REFUND)


def _heal_all(services: Services, run_id: int, day: dt.date, found: list[Discrepancy],
              books: Books) -> None:
    """Heal every safe discrepancy in one transaction, each in its own savepoint: a healing
    claimed before (unique in reconciliation_heal) is rolled back alone and said "earlier"."""
    now = services.clock.now()
    with services.session_factory.begin() as session:
        for item in found:
            if item.action not in HEALING:
                continue
            if item.action is Action.REFUND_HIS_REFUND:
                claim = ("refund", f"{item.out_trade_no[:54]}-D{day:%Y%m%d}")
            else:
                claim = ("post", item.out_trade_no)
            try:
                with session.begin_nested():
                    session.add(ReconciliationHeal(action=claim[0], subject=claim[1],
                                                   run_id=run_id, created_at=now))
                    session.flush()
                    item.heal = _apply(services, session, item, books, claim[1], now)
            except IntegrityError:
                item.heal = "earlier"  # a run before this one healed it: never twice
            item.healed = item.heal in ("posted", "refunded", "earlier")
            if item.healed:
                logger.info("reconciliation: trade %s healed (%s)", item.out_trade_no,
                            item.heal)


def _apply(services: Services, session: Session, item: Discrepancy, books: Books,
           subject: str, now: dt.datetime) -> str:
    if item.action is Action.REFUND_HIS_REFUND:
        trade = lock_trade(session, item.out_trade_no)
        if trade is None:
            return "refused"
        try:
            done = refund_part(session, trade, item.heal_fen, subject,
                               "hospital refund found by reconciliation", now)
        except RefundTooLarge:
            return "refused"
        return "refunded" if done else "refused"
    trade = lock_trade(session, item.out_trade_no)
    if trade is None or trade.status not in UNHEARD:
        return "settled"  # a notification or query got there first
    wallet = books.wallet_payments[item.out_trade_no]
    # The one rule for "the trade turned out paid": the purpose's handler posts it through
    # the outbox, or refunds it when what it paid for is gone.
    mark_paid(session, trade, wallet.trade_no, wallet.at, services.paid_handlers)
    if item.action is Action.REFUND_UNPOSTABLE:
        refund_in_full(session, item.out_trade_no, "paid for nothing that can be posted", now)
        return "refunded"
    return "posted"
