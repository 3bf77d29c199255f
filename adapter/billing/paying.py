"""Paying a chosen set of charges: pre-settled (locked, totalled) in the HIS, then one wallet
trade for the set. The amount is the HIS's, never the client's."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.billing.charges import visible_patients
from adapter.db import write_transaction
from adapter.flows import Services
from adapter.identity.binding import require_certified
from adapter.models import Trade, WalletAccount
from adapter.models_billing import (
    Charge,
    ChargeStatus,
    Settlement,
    SettlementLine,
    SettlementStatus,
)
from adapter.outbox import enqueue
from adapter.payments.trades import create_at_wallet, open_trade, to_create
from adapter.ports import HisRefused, HisUnavailable, WalletRefused
from adapter.ports_billing import PreSettled, PreSettleRequest
from adapter.refusals import Refusal

logger = logging.getLogger(__name__)

PURPOSE = "bill"
MAX_CHARGES = 50  # one bill; the HIS's settlement takes a few prescriptions at most
# The HIS holds the lock this long past the payment deadline: a trade paid in its last second
# is notified (and committed) after it. The adapter releases the lock itself (QBP^ZB5) once
# the deadline has passed unpaid, so the grace never keeps the window waiting for nothing.
LOCK_GRACE = dt.timedelta(minutes=10)

# The HIS's reasons (ERR-5) for refusing a pre-settlement, and what the patient is told.
CHARGE_PAID = "CHARGE_PAID"  # paid at the window or elsewhere
CHARGE_CHANGED = "CHARGE_CHANGED"  # amount or items changed since listed
CHARGE_UNKNOWN = "CHARGE_UNKNOWN"  # withdrawn (the order was cancelled)
CHARGE_LOCKED = "CHARGE_LOCKED"  # another channel holds it


@dataclass(frozen=True)
class BillPayment:
    """The trade the patient pays a bill with, created at its wallet."""

    public_id: str
    out_trade_no: str
    trade_no: str  # the platform's, "" when it gives one only once paid
    total_fen: int
    platform: str
    pay_reference: str = ""  # what the wallet's payment call takes


def new_settlement_no(now: dt.datetime) -> str:
    """Our settlement number (sent to the HIS; names the trade)."""
    return f"S{now:%y%m%d}{secrets.token_hex(6).upper()}"


def out_trade_no_of(public_id: str) -> str:
    """The wallet trade of a settlement: named after it, so a retry never pays twice."""
    return f"F{public_id}"


def _choose(session: Session, account_id: int, charge_ids: list[int]) -> list[Charge]:
    """The chosen charges, locked, checked to be one patient's, unpaid and payable together."""
    if not charge_ids:
        raise Refusal("bill.empty")
    if len(set(charge_ids)) > MAX_CHARGES:
        raise Refusal("bill.not_payable")
    his_ids = {p.his_patient_id for p in visible_patients(session, account_id)}
    charges = list(session.scalars(select(Charge).where(Charge.id.in_(sorted(set(charge_ids))))
                                   .order_by(Charge.id).with_for_update()))
    if len(charges) != len(set(charge_ids)) or any(c.his_patient_id not in his_ids
                                                   for c in charges):
        raise Refusal("bill.unknown")  # someone else's is as unknown as a missing one
    if len({c.his_patient_id for c in charges}) != 1:
        raise Refusal("bill.one_patient")
    if any(c.status != ChargeStatus.UNPAID or c.amount_fen <= 0 for c in charges):
        raise Refusal("bill.not_payable")
    groups = {c.group_code for c in charges}
    if len(charges) > 1 and (len(groups) != 1 or "" in groups):
        raise Refusal("bill.not_together")
    return charges


def _open_settlement(session: Session, account_id: int, charges: list[Charge],
                     lock_until: dt.datetime, now: dt.datetime) -> Settlement:
    his_patient_id = charges[0].his_patient_id
    patient = next(p for p in visible_patients(session, account_id)
                   if p.his_patient_id == his_patient_id)
    settlement = Settlement(public_id=new_settlement_no(now), wallet_account_id=account_id,
                            patient_id=patient.id, his_patient_id=his_patient_id,
                            status=SettlementStatus.LOCKING, lock_expires_at=lock_until,
                            created_at=now, updated_at=now)
    session.add(settlement)
    session.flush()
    for charge in charges:
        charge.status, charge.updated_at = ChargeStatus.LOCKED, now
        session.add(SettlementLine(settlement_id=settlement.id, charge_id=charge.id,
                                   amount_fen=charge.amount_fen))
    return settlement


def lines_of(session: Session, settlement: Settlement) -> list[tuple[SettlementLine, Charge]]:
    """A settlement's lines with their charges."""
    return list(session.execute(
        select(SettlementLine, Charge).join(Charge, Charge.id == SettlementLine.charge_id)
        .where(SettlementLine.settlement_id == settlement.id).order_by(Charge.id)))


def give_back_charges(session: Session, settlement: Settlement, now: dt.datetime,
                      to: str = ChargeStatus.UNPAID) -> None:
    """The settlement let go of its charges (refused, expired): list them again (or mark
    them ``to``)."""
    for _line, charge in lines_of(session, settlement):
        if charge.status == ChargeStatus.LOCKED:
            charge.status, charge.updated_at = to, now


def _refused(services: Services, settlement_id: int, exc: HisRefused,
             now: dt.datetime) -> Refusal:
    """Record the HIS's refusal of a pre-settlement; the refusal the patient sees."""
    code = exc.outcome.error_code
    named = exc.outcome.details.get("charge", "")
    with services.session_factory.begin() as session:
        settlement = session.get(Settlement, settlement_id, with_for_update=True)
        settlement.status, settlement.status_reason = SettlementStatus.REFUSED, code[:40]
        settlement.updated_at = now
        item = ""
        for _line, charge in lines_of(session, settlement):
            if charge.his_charge_id == named or not named:
                item = item or charge.item_name
                if code == CHARGE_PAID:
                    charge.status = ChargeStatus.PAID_ELSEWHERE
                elif code == CHARGE_CHANGED:
                    charge.status = ChargeStatus.CHANGED
                elif code == CHARGE_UNKNOWN:
                    charge.status = ChargeStatus.CANCELLED
        give_back_charges(session, settlement, now)
        item = item or lines_of(session, settlement)[0][1].item_name
    logger.info("settlement %s refused by the HIS (%s)", settlement.public_id, code)
    if code == CHARGE_PAID:
        return Refusal("bill.paid_elsewhere", item=item)
    if code in (CHARGE_CHANGED, CHARGE_UNKNOWN):
        return Refusal("bill.changed", item=item)
    if code == CHARGE_LOCKED:
        return Refusal("bill.locked", item=item)
    return Refusal("bill.refused")


def _locked(services: Services, settlement_id: int, answer: PreSettled,
            now: dt.datetime) -> BillPayment | Refusal:
    """The HIS locked the set: the trade for its total, or a refusal when its amounts are not
    the ones the patient chose (the lock is then released)."""
    with services.session_factory.begin() as session:
        write_transaction(session)
        settlement = session.get(Settlement, settlement_id, with_for_update=True)
        lines = lines_of(session, settlement)
        asked = {charge.his_charge_id for _line, charge in lines}
        changed = [charge for _line, charge in lines
                   if answer.amounts_fen.get(charge.his_charge_id) != charge.amount_fen]
        if set(answer.amounts_fen) != asked or answer.total_fen != sum(
                answer.amounts_fen.values()) or changed or answer.total_fen <= 0:
            for charge in changed:
                if charge.his_charge_id in answer.amounts_fen:
                    charge.amount_fen = answer.amounts_fen[charge.his_charge_id]
            settlement.status, settlement.status_reason = (SettlementStatus.REFUSED,
                                                           CHARGE_CHANGED)
            give_back_charges(session, settlement, now)
            enqueue(session, "his_release", ("settlement", settlement.id), now)
            item = changed[0].item_name if changed else lines[0][1].item_name
            return Refusal("bill.changed", item=item)
        for line, _charge in lines:
            line.amount_fen = answer.amounts_fen[_charge.his_charge_id]
        settlement.total_fen = settlement.self_pay_fen = answer.total_fen
        settlement.status, settlement.updated_at = SettlementStatus.PENDING_PAYMENT, now
        trade = open_trade(session, out_trade_no=out_trade_no_of(settlement.public_id),
                           purpose=PURPOSE, reference=settlement.public_id,
                           subject=f"门诊缴费 {len(lines)}项", total_fen=answer.total_fen,
                           account=session.get(WalletAccount, settlement.wallet_account_id),
                           expire_at=settlement.lock_expires_at)
        settlement.out_trade_no = trade.out_trade_no
    try:
        created = create_at_wallet(services, trade)
    except WalletRefused as exc:
        logger.warning("trade %s refused by the wallet: %s %s", trade.out_trade_no, exc.code,
                       exc.sub_code)
        return Refusal("bill.not_payable")
    return BillPayment(settlement.public_id, trade.out_trade_no, created.trade_no,
                       trade.total_fen, trade.platform, created.pay_reference)


def _pending(session: Session, account_id: int, charge_ids: list[int],
             now: dt.datetime) -> Settlement | None:
    """The account's open, unpaid settlement of exactly these charges (a repeated request)."""
    candidates = session.scalars(
        select(Settlement).where(Settlement.wallet_account_id == account_id,
                                 Settlement.status == SettlementStatus.PENDING_PAYMENT,
                                 Settlement.lock_expires_at > now))
    wanted = set(charge_ids)
    for settlement in candidates:
        if {line.charge_id for line, _c in lines_of(session, settlement)} == wanted:
            return settlement
    return None


def pay_bill(services: Services, account_id: int, charge_ids: list[int],
             now: dt.datetime) -> BillPayment:
    """Pre-settle the chosen charges in the HIS and open the one trade that pays them.

    Raises Refusal (the patient is told why), HisUnavailable (nothing locked for sure: the
    lock, if any, is released) or WalletUnavailable (retrying is safe).
    """
    lock_until = now + dt.timedelta(minutes=services.config.bill_payment_minutes)
    with services.session_factory.begin() as session:
        write_transaction(session)
        require_certified(session, account_id)
        pending = _pending(session, account_id, charge_ids, now)
        if pending is None:
            charges = _choose(session, account_id, charge_ids)
            settlement = _open_settlement(session, account_id, charges, lock_until, now)
            request = PreSettleRequest(settlement.public_id, settlement.his_patient_id,
                                       tuple(c.his_charge_id for c in charges),
                                       lock_until + LOCK_GRACE)
        settlement_id = (pending or settlement).id
    if pending is not None:  # the same bill asked again: the same HIS lock, the same trade
        return _resume(services, settlement_id)
    try:
        answer = services.his.pre_settle(request)  # outside any transaction
    except HisRefused as exc:
        raise _refused(services, settlement_id, exc, now) from None
    except HisUnavailable:
        # The HIS may have locked them: release there, list them again here.
        with services.session_factory.begin() as session:
            settlement = session.get(Settlement, settlement_id, with_for_update=True)
            settlement.status, settlement.status_reason = SettlementStatus.EXPIRED, "HIS_DOWN"
            give_back_charges(session, settlement, now)
            enqueue(session, "his_release", ("settlement", settlement_id), now)
        raise
    result = _locked(services, settlement_id, answer, now)
    if isinstance(result, Refusal):
        # Released at once so the patient can pay the new amount now; the outbox item queued
        # with the refusal retries if the HIS does not answer.
        try:
            services.his.release_settlement(request.settlement_no)
        except (HisUnavailable, HisRefused):
            pass
        raise result
    return result


def _resume(services: Services, settlement_id: int) -> BillPayment:
    with services.session_factory() as session:
        settlement = session.get(Settlement, settlement_id)
        out_trade_no = settlement.out_trade_no
    with services.session_factory() as session:
        trade = session.get(Trade, out_trade_no)
        again = to_create(trade)
        public_id = trade.reference
    created = create_at_wallet(services, again)
    return BillPayment(public_id, again.out_trade_no, created.trade_no, again.total_fen,
                       again.platform, created.pay_reference)
