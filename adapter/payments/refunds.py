"""Refunds: money on its way back to a patient, asked for once and retried with the same
out_request_no until the wallet says it is done (it never refunds one out_request_no twice)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adapter.flows import OutboxJob, Services
from adapter.models import Refund, Trade, TradeStatus
from adapter.outbox import enqueue, finish
from adapter.payments.trades import lock_trade
from adapter.ports import WalletUnavailable


def refund_in_full(session: Session, out_trade_no: str | None, reason: str,
                   now: dt.datetime) -> None:
    """Queue a full refund of a paid trade, once (one out_request_no for all retries)."""
    if not out_trade_no:
        return
    trade = session.get(Trade, out_trade_no)
    if trade is None or trade.status != TradeStatus.PAID or trade.refunded_fen:
        return
    out_request_no = f"{out_trade_no}-R1"
    if session.get(Refund, out_request_no) is not None:
        return
    session.add(Refund(out_request_no=out_request_no, out_trade_no=trade.out_trade_no,
                       refund_fen=trade.total_fen, reason=reason, created_at=now))
    enqueue(session, "refund", ("refund", out_request_no), now)


class RefundTooLarge(Exception):
    """A refund that would give back more than the trade took."""


def refund_part(session: Session, trade: Trade, refund_fen: int, out_request_no: str,
                reason: str, now: dt.datetime) -> bool:
    """Queue a refund of ``refund_fen`` of a paid trade under ``out_request_no``, once; the
    caller holds the trade's lock (lock_trade). Returns False when that request exists already.

    Raises RefundTooLarge when all refunds asked for the trade would exceed what it took.
    """
    if session.get(Refund, out_request_no) is not None:
        return False
    if trade.status not in (TradeStatus.PAID, TradeStatus.REFUNDED) or \
            refund_fen <= 0 or refund_fen > refund_left(session, trade):
        raise RefundTooLarge(out_request_no)
    session.add(Refund(out_request_no=out_request_no, out_trade_no=trade.out_trade_no,
                       refund_fen=refund_fen, reason=reason, created_at=now))
    enqueue(session, "refund", ("refund", out_request_no), now)
    return True


def refund_left(session: Session, trade: Trade) -> int:
    """What of a trade has not been asked back yet (fen)."""
    asked = session.scalar(select(func.coalesce(func.sum(Refund.refund_fen), 0))
                           .where(Refund.out_trade_no == trade.out_trade_no))
    return trade.total_fen - asked


def deliver_refund(services: Services, job: OutboxJob, now: dt.datetime) -> None:
    """Ask the trade's wallet to refund; record it once the money is on its way back."""
    out_request_no = job.subject_id
    with services.session_factory() as session:
        refund = session.get(Refund, out_request_no)
        done = refund.status == "done"
        out_trade_no, refund_fen, reason = refund.out_trade_no, refund.refund_fen, refund.reason
        platform = session.get(Trade, out_trade_no).platform
    if not done:
        # The same out_request_no on every try: the wallet never refunds it twice.
        result = services.wallet_for(platform).refund(out_trade_no, refund_fen, out_request_no,
                                                      reason)
        if not result.done:
            raise WalletUnavailable("refund accepted but not yet done")
    with services.session_factory.begin() as session:
        refund = session.get(Refund, out_request_no)
        if refund.status != "done":
            refund.status, refund.done_at = "done", now
            trade = lock_trade(session, out_trade_no)
            trade.refunded_fen = min(trade.total_fen, trade.refunded_fen + refund_fen)
            if trade.refunded_fen == trade.total_fen:
                trade.status = TradeStatus.REFUNDED
        finish(session, job, now)
