"""Wallet trades for any purpose (a registration fee today, a bill next): opening one, and the
one rule for "the trade turned out paid", used by notifications, expiry, cancellation and close.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.failures import safe_code
from adapter.flows import OutboxJob, Services
from adapter.models import Trade, TradeStatus, WalletAccount
from adapter.outbox import enqueue, finish
from adapter.ports import CreatedTrade, WalletRefused, WalletUnavailable, WalletUnreachable

logger = logging.getLogger(__name__)

PaidHandlers = Mapping[str, Callable[[Session, Trade], None]]


def lock_trade(session: Session, out_trade_no: str) -> Trade | None:
    """The trade row, locked for the rest of the transaction."""
    return session.scalar(
        select(Trade).where(Trade.out_trade_no == out_trade_no).with_for_update()
    )


def mark_paid(session: Session, trade: Trade, trade_no: str, paid_at: dt.datetime,
              on_paid: PaidHandlers) -> None:
    """The money was taken: record it and hand the trade to its purpose's handler, which
    delivers what was paid for or refunds it (a trade paid after its close included)."""
    trade.paid_after_close = trade.status == TradeStatus.CLOSED
    trade.status = TradeStatus.PAID
    trade.trade_no = trade.trade_no or trade_no
    trade.paid_at = paid_at
    if trade.paid_after_close:
        # Money taken for a hold we had already released: never lost; the purpose's handler
        # refunds it (or honours it if the place is still free).
        logger.warning("trade %s paid after it was closed", trade.out_trade_no)
    handler = on_paid.get(trade.purpose)
    if handler is not None:
        handler(session, trade)


def trade_found_paid(session: Session, out_trade_no: str, trade_no: str, now: dt.datetime,
                     on_paid: PaidHandlers) -> None:
    """A query or a refused close showed the trade paid before its notification arrived: the
    query is as good as the notification (a trade already settled is left as it is)."""
    trade = lock_trade(session, out_trade_no)
    if trade is not None and trade.status == TradeStatus.CREATED:
        mark_paid(session, trade, trade_no, now, on_paid)


@dataclass(frozen=True)
class TradeToCreate:
    """A trade as the wallet must be asked to create it (plain data, outside transactions)."""

    out_trade_no: str
    platform: str
    pay_reference: str  # empty until the wallet created it
    subject: str
    total_fen: int
    buyer_id: str
    expire_at: dt.datetime
    # No earlier attempt to create it can have reached the wallet (new, or every one failed
    # before reaching it): a definite failure now leaves it unsent.
    unsent: bool = False


def open_trade(session: Session, *, out_trade_no: str, purpose: str, reference: str,
               subject: str, total_fen: int, account: WalletAccount,
               expire_at: dt.datetime) -> TradeToCreate:
    """The trade paying ``reference`` for ``purpose``, created in our books if new.

    The caller names it after what it pays: the wallet dedupes out_trade_no, so a retry after an
    unknown outcome can never charge twice.
    """
    trade = session.get(Trade, out_trade_no)
    unsent = trade is None or trade.status == TradeStatus.UNSENT
    if trade is None:
        trade = Trade(out_trade_no=out_trade_no, platform=account.platform, purpose=purpose,
                      reference=reference, subject=subject, total_fen=total_fen,
                      buyer_id=account.user_id, expire_at=expire_at)
        session.add(trade)
    # From the commit of this transaction an attempt may reach the wallet: until it is known
    # to have failed, closing the trade must go through the wallet (a crash mid-call included).
    trade.status = TradeStatus.CREATED if unsent else trade.status
    return TradeToCreate(trade.out_trade_no, trade.platform, trade.pay_reference or "",
                         trade.subject, trade.total_fen, trade.buyer_id, trade.expire_at,
                         unsent=unsent)


def to_create(trade: Trade) -> TradeToCreate:
    """A trade of our books as its wallet is asked to create it (again)."""
    return TradeToCreate(trade.out_trade_no, trade.platform, trade.pay_reference or "",
                         trade.subject, trade.total_fen, trade.buyer_id, trade.expire_at)


def create_at_wallet(services: Services, trade: TradeToCreate) -> CreatedTrade:
    """Ask the trade's wallet to create it (outside any transaction) and keep what paying it
    takes, and the platform's trade_no when the platform gives it at creation (one that gives
    it only once paid gets it from the notification or the query: mark_paid).

    Raises WalletUnavailable (unknown outcome: the same out_trade_no is safe to retry) or
    WalletRefused.
    """
    if trade.pay_reference:
        with services.session_factory() as session:
            return CreatedTrade(trade.pay_reference,
                                session.get(Trade, trade.out_trade_no).trade_no or "")
    try:
        created = services.wallet_for(trade.platform).create_trade(
            trade.out_trade_no, trade.total_fen, trade.subject, trade.buyer_id, trade.expire_at)
    except (WalletUnreachable, WalletRefused) as exc:
        if trade.unsent and (isinstance(exc, WalletUnreachable) or exc.nothing_created):
            _mark_unsent(services, trade.out_trade_no)
        raise
    with services.session_factory.begin() as session:
        row = lock_trade(session, trade.out_trade_no)
        row.pay_reference = row.pay_reference or created.pay_reference
        row.trade_no = row.trade_no or created.trade_no or None
        if row.status == TradeStatus.UNSENT:
            row.status = TradeStatus.CREATED  # a twin attempt failed, this one got through
        elif row.status == TradeStatus.CLOSED:
            # Closed in our books while this creation was on its way: close it there too.
            enqueue(session, "close_trade", ("trade", row.out_trade_no), services.clock.now())
        return CreatedTrade(row.pay_reference, row.trade_no or "")


def _mark_unsent(services: Services, out_trade_no: str) -> None:
    """This attempt, the only one, never created the trade: it can be closed in our books."""
    with services.session_factory.begin() as session:
        trade = lock_trade(session, out_trade_no)
        if (trade is not None and trade.status == TradeStatus.CREATED
                and not trade.pay_reference):
            trade.status = TradeStatus.UNSENT


def is_unsent(session: Session, out_trade_no: str | None) -> bool:
    """Whether the trade exists in our books only (closing it needs no wallet)."""
    trade = session.get(Trade, out_trade_no) if out_trade_no else None
    return trade is not None and trade.status == TradeStatus.UNSENT


def close_at_wallet(services: Services, out_trade_no: str, now: dt.datetime) -> bool:
    """Close an unpaid trade at its wallet (outside any transaction); True when it turned out
    paid, in which case the payment has been applied. Raises WalletUnavailable (unknown)."""
    with services.session_factory() as session:
        platform = session.get(Trade, out_trade_no).platform
    status = services.wallet_for(platform).close_trade(out_trade_no)
    if status.paid:
        with services.session_factory.begin() as session:
            trade_found_paid(session, out_trade_no, status.trade_no, now,
                             services.paid_handlers)
    return status.paid


def closed_before_release(services: Services, out_trade_no: str | None,
                          now: dt.datetime) -> bool:
    """Close an expiring trade before what it holds is let go: True when it is closed (or
    never reached its wallet); False when it turned out paid (the payment has been applied)
    or the wallet could not say (try again later: never let go of what may have been paid)."""
    with services.session_factory() as session:
        if not out_trade_no or is_unsent(session, out_trade_no):
            return True
    try:
        return not close_at_wallet(services, out_trade_no, now)
    except WalletUnavailable:
        return False
    except Exception as exc:  # noqa: BLE001 - one bad trade must not stop the caller's others
        logger.error("closing trade %s failed: %s", out_trade_no, safe_code(exc))
        return False


def deliver_close_trade(services: Services, job: OutboxJob, now: dt.datetime) -> None:
    """Close a trade that appeared after its purpose was given up."""
    out_trade_no = job.subject_id
    with services.session_factory() as session:
        platform = session.get(Trade, out_trade_no).platform
    status = services.wallet_for(platform).close_trade(out_trade_no)
    with services.session_factory.begin() as session:
        if status.paid:
            # Paid just before the close: the purpose's handler refunds it (its cause is gone).
            trade_found_paid(session, out_trade_no, status.trade_no, now,
                             services.paid_handlers)
        else:
            trade = lock_trade(session, out_trade_no)
            if trade.status == TradeStatus.CREATED:
                trade.status = TradeStatus.CLOSED
        finish(session, job, now)
