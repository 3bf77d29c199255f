"""A paid bill posted in the HIS exactly once, or refunded (DESIGN invariant 3).

The wallet's notification (or a query) finds the trade paid: the settlement is queued for the
outbox, which commits it in the HIS and keeps the receipt. Once a commit may have reached the
HIS, every later attempt asks the HIS's status first: a lost answer is settled by the query,
never by a second commit. A commit refused for good, or still failing after
ADAPTER_BILL_COMMIT_GIVE_UP_MINUTES, is refunded in full and raised for staff.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adapter.billing.paying import give_back_charges, lines_of
from adapter.billing.texts import COMMITTED, LATE_PAYMENT, REFUNDED
from adapter.faults import crash_point
from adapter.flows import OutboxJob, Services
from adapter.i18n import translate
from adapter.identity.notices import tell_account
from adapter.models import Trade
from adapter.models_billing import ChargeStatus, Settlement, SettlementStatus
from adapter.money import yuan
from adapter.outbox import enqueue, finish
from adapter.payments.refunds import refund_left, refund_part
from adapter.payments.trades import lock_trade
from adapter.ports import HisRefused
from adapter.ports_billing import CommitRequest, Receipt, SettlementState

logger = logging.getLogger(__name__)

SETTLE = "his_settle"
RELEASE = "his_release"


def receipt_path(public_id: str) -> str:
    """The patient page of a paid bill's receipt."""
    return f"/h5/bills/{public_id}"


def lock_settlement(session: Session, *, id: int | None = None,  # noqa: A002
                    public_id: str | None = None) -> Settlement | None:
    """The settlement row, locked for the rest of the transaction."""
    query = select(Settlement).with_for_update()
    query = query.where(Settlement.id == id) if id is not None else \
        query.where(Settlement.public_id == public_id)
    return session.scalar(query)


def _tell(session: Session, settlement: Settlement, text: str, now: dt.datetime,
          kind: str, **params: str) -> None:
    tell_account(session, settlement.wallet_account_id,
                 translate(text, "zh-CN").format(**params), receipt_path(settlement.public_id),
                 now, message_kind=kind)


def refund_settlement(session: Session, settlement: Settlement, reason: str,
                      now: dt.datetime, *, raise_for_staff: bool = True) -> None:
    """Give back what of the settlement's trade was not asked back yet; raise it for staff."""
    trade = lock_trade(session, settlement.out_trade_no)
    left = refund_left(session, trade)
    if left > 0 and refund_part(session, trade, left, f"{trade.out_trade_no}-R1", reason, now):
        settlement.refunded_fen += left
    settlement.status, settlement.status_reason = SettlementStatus.REFUNDED, reason[:40]
    settlement.updated_at = now
    if raise_for_staff:
        settlement.raised_at, settlement.raised_reason = now, reason[:40]
    give_back_charges(session, settlement, now)


def on_bill_paid(session: Session, trade: Trade, now: dt.datetime) -> None:
    """The trade of a bill is paid: queue the commit, or refund a payment that came late."""
    settlement = lock_settlement(session, public_id=trade.reference)
    if settlement is None:
        logger.error("paid trade %s has no settlement; refunding", trade.out_trade_no)
        refund_part(session, trade, refund_left(session, trade), f"{trade.out_trade_no}-R1",
                    "no bill for this payment", now)
        return
    settlement.paid_at = settlement.paid_at or trade.paid_at or now
    if settlement.status == SettlementStatus.PENDING_PAYMENT:
        settlement.status, settlement.updated_at = SettlementStatus.COMMITTING, now
        enqueue(session, SETTLE, ("settlement", settlement.id), now)
        return
    if settlement.status == SettlementStatus.EXPIRED:
        # Paid after its lock was released: the window may have taken these charges since.
        refund_settlement(session, settlement, "late_payment", now, raise_for_staff=False)
        _tell(session, settlement, LATE_PAYMENT, now, "bill_late_payment",
              total=yuan(settlement.total_fen))


def committed(session: Session, settlement: Settlement, receipt: Receipt,
              now: dt.datetime) -> None:
    """The HIS posted it: keep its receipt, mark the charges paid, tell the patient."""
    settlement.status, settlement.updated_at = SettlementStatus.COMMITTED, now
    settlement.committed_at = now
    settlement.receipt_no = receipt.receipt_no
    settlement.invoice_no, settlement.check_code = receipt.invoice_no, receipt.check_code
    settlement.invoice_url = receipt.invoice_url
    for _line, charge in lines_of(session, settlement):
        charge.status, charge.updated_at = ChargeStatus.PAID, now
    _tell(session, settlement, COMMITTED, now, "bill_committed",
          total=yuan(settlement.total_fen), receipt=receipt.receipt_no)


def refused_for_good(session: Session, settlement: Settlement, reason: str,
                     now: dt.datetime) -> None:
    """Not postable: refund, raise for staff, release the lock, tell the patient."""
    refund_settlement(session, settlement, reason, now)
    enqueue(session, RELEASE, ("settlement", settlement.id), now)
    _tell(session, settlement, REFUNDED, now, "bill_refunded", total=yuan(settlement.total_fen))
    logger.error("settlement %s not posted (%s): refunded and raised", settlement.public_id,
                 reason)


def deliver_his_settle(services: Services, job: OutboxJob, now: dt.datetime) -> None:
    """Commit a paid settlement in the HIS (status query first once a commit was sent)."""
    settlement_id = int(job.subject_id)
    with services.session_factory.begin() as session:
        settlement = lock_settlement(session, id=settlement_id)
        if settlement.status != SettlementStatus.COMMITTING:
            finish(session, job, now)
            return
        sent_before = settlement.commit_sent > 0
        trade = session.get(Trade, settlement.out_trade_no)
        request = CommitRequest(settlement.public_id, settlement.his_patient_id,
                                trade.out_trade_no, trade.trade_no or "",
                                settlement.total_fen, settlement.self_pay_fen,
                                settlement.insurance_fund_fen, settlement.personal_account_fen,
                                settlement.paid_at)
        if not sent_before:
            # From this commit on, the commit may reach the HIS: later attempts ask first.
            settlement.commit_sent = 1
    receipt: Receipt | None = None
    refusal = ""
    if sent_before:
        status = services.his.settlement_status(request.settlement_no)
        if status.state is SettlementState.COMMITTED and status.receipt is not None:
            receipt = status.receipt
        elif _past_limit(services, settlement, now):
            refusal = "HIS_UNREACHABLE"  # not posted, and too late to post: refund
        else:
            with services.session_factory.begin() as session:
                lock_settlement(session, id=settlement_id).commit_sent += 1
    if receipt is None and not refusal:
        try:
            receipt = services.his.commit_settlement(request)
        except HisRefused as exc:
            refusal = exc.outcome.error_code or "refused"
    crash_point("outbox.after_his_settle")
    with services.session_factory.begin() as session:
        settlement = lock_settlement(session, id=settlement_id)
        if settlement.status == SettlementStatus.COMMITTING:
            if receipt is not None:
                committed(session, settlement, receipt, now)
            else:
                refused_for_good(session, settlement, refusal, now)
        finish(session, job, now)


def _past_limit(services: Services, settlement: Settlement, now: dt.datetime) -> bool:
    limit = dt.timedelta(minutes=services.config.bill_commit_give_up_minutes)
    return (settlement.paid_at or settlement.updated_at) + limit <= now


def give_up_his_settle(services: Services, session: Session, job: OutboxJob,
                       now: dt.datetime) -> bool:
    """A paid bill the HIS has not answered for the configured time: refunded and raised when
    no commit can have reached the HIS; else raised only, and kept asking the HIS's status."""
    settlement = lock_settlement(session, id=int(job.subject_id))
    if settlement.status != SettlementStatus.COMMITTING or not _past_limit(
            services, settlement, now):
        return False
    if settlement.commit_sent:
        if settlement.raised_at is None:
            settlement.raised_at, settlement.raised_reason = now, "HIS_UNREACHABLE"
            logger.error("settlement %s: the HIS has not answered in time; raised",
                         settlement.public_id)
        return False
    refused_for_good(session, settlement, "HIS_UNREACHABLE", now)
    return True


def deliver_his_release(services: Services, job: OutboxJob, now: dt.datetime) -> None:
    """Release a lock the HIS may hold for a settlement that will not be paid."""
    with services.session_factory() as session:
        public_id = session.get(Settlement, int(job.subject_id)).public_id
    services.his.release_settlement(public_id)
    with services.session_factory.begin() as session:
        finish(session, job, now)


def raised_settlements(session: Session, limit: int = 100) -> tuple[list[Settlement], int]:
    """Paid bills that could not be posted and no staff user has handled yet, newest first
    (for the parked work page), and how many there are."""
    where = (Settlement.raised_at.is_not(None), Settlement.acknowledged_at.is_(None))
    total = session.scalar(select(func.count()).select_from(Settlement).where(*where)) or 0
    rows = list(session.scalars(select(Settlement).where(*where)
                                .order_by(Settlement.raised_at.desc()).limit(limit)))
    return rows, total


def acknowledge_settlement(session: Session, public_id: str, actor: str,
                           now: dt.datetime) -> tuple[Settlement | None, bool]:
    """A staff user has handled a raised bill (refunded at the window, posted by hand...): the
    first acknowledgment is kept. (None, False) when no raised bill has that id; the bool says
    whether this call acknowledged it."""
    settlement = session.scalar(select(Settlement).where(
        Settlement.public_id == public_id, Settlement.raised_at.is_not(None))
        .with_for_update())
    if settlement is None or settlement.acknowledged_at is not None:
        return settlement, False
    settlement.acknowledged_at, settlement.acknowledged_by = now, actor[:64]
    logger.info("settlement %s: raised %s, acknowledged by staff user %s",
                settlement.public_id, settlement.raised_reason, settlement.acknowledged_by)
    return settlement, True
