"""Fee payment's scheduled job: locks that outlived the payment deadline are released."""

from __future__ import annotations

import logging

from sqlalchemy import select

from adapter.billing.paying import give_back_charges
from adapter.billing.posting import RELEASE, lock_settlement
from adapter.db import write_transaction
from adapter.flows import Services
from adapter.models_billing import Settlement, SettlementStatus
from adapter.outbox import enqueue
from adapter.payments.trades import closed_before_release

logger = logging.getLogger(__name__)


def release_expired_locks(services: Services, limit: int = 100) -> int:
    """Unpaid settlements past their deadline: close the trade first (a payment that raced the
    close is applied instead), then release the HIS's lock and list the charges again."""
    now = services.clock.now()
    with services.session_factory() as session:
        due = list(session.scalars(
            select(Settlement.id).where(Settlement.status == SettlementStatus.PENDING_PAYMENT,
                                        Settlement.lock_expires_at <= now)
            .order_by(Settlement.lock_expires_at).limit(limit)))
    released = 0
    for settlement_id in due:
        with services.session_factory() as session:
            out_trade_no = session.get(Settlement, settlement_id).out_trade_no
        if not closed_before_release(services, out_trade_no, now):
            continue  # paid after all (the commit is queued), or unknown: next round
        with services.session_factory.begin() as session:
            write_transaction(session)
            settlement = lock_settlement(session, id=settlement_id)
            if settlement.status != SettlementStatus.PENDING_PAYMENT:
                continue
            settlement.status, settlement.status_reason = SettlementStatus.EXPIRED, "deadline"
            settlement.updated_at = now
            give_back_charges(session, settlement, now)
            enqueue(session, RELEASE, ("settlement", settlement.id), now)
            released += 1
    if released:
        logger.info("%d bill lock(s) released", released)
    return released
