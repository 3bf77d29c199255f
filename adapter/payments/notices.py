"""Use cases of wallet payments: applying a verified payment notification.

DESIGN invariant 4: a notification takes effect only after the signature (checked by the
wallet module before this), app_id, seller, amount and order checks; a duplicate is harmless;
the caller answers ``success`` only after the transaction here has committed.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session

from adapter.models import TradeStatus
from adapter.payments.trades import PaidHandlers, lock_trade, mark_paid
from adapter.ports import PaymentNotice, TradeState

logger = logging.getLogger(__name__)


class NoticeRefused(Exception):
    """A notification that must not take effect (foreign, tampered); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def apply_payment_notification(
    session: Session,
    notice: PaymentNotice,
    *,
    app_id: str,
    merchant_id: str,
    on_paid: PaidHandlers,
    now: dt.datetime,
) -> str:
    """Apply a verified notice inside the caller's transaction; returns applied|duplicate|ignored.

    ``app_id`` and ``merchant_id`` are the receiving wallet's own (WalletGateway). Raises
    NoticeRefused for a notice that is not for us or does not match the order.
    """
    if notice.app_id != app_id:
        raise NoticeRefused("app_id is not ours")
    if merchant_id and notice.merchant_id != merchant_id:
        raise NoticeRefused("seller_id is not ours")
    trade = lock_trade(session, notice.out_trade_no)
    if trade is None:
        raise NoticeRefused("unknown out_trade_no")
    if notice.platform != trade.platform:
        raise NoticeRefused("platform differs from the order")
    if notice.total_fen != trade.total_fen:
        raise NoticeRefused("total_amount differs from the order")
    # Compared only where the platform gave its trade_no at creation (Alipay): one that gives
    # it only once paid (WeChat Pay's transaction_id) is learnt from this notice.
    if trade.trade_no and notice.trade_no and notice.trade_no != trade.trade_no:
        raise NoticeRefused("trade_no differs from the order")
    if notice.state is not TradeState.PAID:
        # Waiting for the buyer, closed: nothing to do; the trade's own life decides.
        return "ignored"
    if trade.status in (TradeStatus.PAID, TradeStatus.REFUNDED) or trade.paid_at is not None:
        return "duplicate"
    mark_paid(session, trade, notice.trade_no, notice.paid_at or now, on_paid)
    logger.info("trade %s paid (%s)", trade.out_trade_no, trade.purpose)
    return "applied"
