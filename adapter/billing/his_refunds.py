"""Refunds the HIS asks for (a cancelled test, in full or in part): each carried out once
through the wallet under its own out_request_no, reused on retry, never more than was paid."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.billing.posting import lock_settlement
from adapter.billing.texts import HIS_REFUND
from adapter.flows import Services
from adapter.i18n import translate
from adapter.identity.notices import tell_account
from adapter.models_billing import HisRefund, Settlement, SettlementStatus
from adapter.money import yuan
from adapter.payments.refunds import RefundTooLarge, refund_part
from adapter.payments.trades import lock_trade
from adapter.ports import InboundRefused
from adapter.ports_billing import HisRefundLine, RefundsRequested

logger = logging.getLogger(__name__)


def refund_for_his(session: Session, line: HisRefundLine, now: dt.datetime) -> bool:
    """Carry out one refund the HIS asked for; False when it was already (a resend).

    Raises InboundRefused when the receipt is not ours or the refund would exceed what is left
    of the payment (the message is kept for staff; nothing is refunded).
    """
    if session.scalar(select(HisRefund).where(HisRefund.his_refund_id == line.his_refund_id)):
        return False
    settlement_id = session.scalar(select(Settlement.id)
                                   .where(Settlement.receipt_no == line.receipt_no))
    settlement = lock_settlement(session, id=settlement_id) if settlement_id else None
    if settlement is None or settlement.status != SettlementStatus.COMMITTED:
        raise InboundRefused(f"refund {line.his_refund_id}: receipt not paid through us")
    trade = lock_trade(session, settlement.out_trade_no)
    row = HisRefund(his_refund_id=line.his_refund_id, settlement_id=settlement.id,
                    his_charge_id=line.his_charge_id, amount_fen=line.amount_fen,
                    out_request_no="-", created_at=now)
    session.add(row)
    session.flush()
    row.out_request_no = f"{trade.out_trade_no}-H{row.id}"
    try:
        refund_part(session, trade, line.amount_fen, row.out_request_no, "医院退费", now)
    except RefundTooLarge:
        raise InboundRefused(f"refund {line.his_refund_id}: more than is left of the "
                             "payment") from None
    settlement.refunded_fen += line.amount_fen
    settlement.updated_at = now
    tell_account(session, settlement.wallet_account_id,
                 translate(HIS_REFUND, "zh-CN").format(amount=yuan(line.amount_fen)),
                 f"/h5/bills/{settlement.public_id}", now, message_kind="bill_his_refund")
    return True


def refunds_requested(services: Services, session: Session, event: RefundsRequested,
                      now: dt.datetime) -> None:
    """The HIS sent refunds (DFT^P03 with credit lines): carry out each once."""
    done = sum(refund_for_his(session, line, now) for line in event.lines)
    logger.info("HIS refunds %s: %d line(s), %d new", event.control_id, len(event.lines), done)
