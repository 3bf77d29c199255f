"""Bills: the unpaid charges a patient may pay, and a paid bill's receipt and next stops.
Paying one is POST /payments (adapter.web.api.payments)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from adapter.billing.charges import refresh_charges, unpaid_charges, visible_patients
from adapter.billing.receipts import BillView, bill_view, own_settlement
from adapter.billing.stops import load_next_stops
from adapter.i18n import N_
from adapter.models import Patient
from adapter.models_billing import Charge, SettlementStatus
from adapter.money import yuan
from adapter.refusals import Refusal
from adapter.web.api.errors import locale, now, refused, runtime, say, signed_in
from adapter.web.api.schemas import BillPath
from adapter.web.api.slots import name_of
from adapter.web.api.validation import valid

bp = Blueprint("bills", __name__)

STATUS_TEXT = {
    SettlementStatus.PENDING_PAYMENT: N_("待支付"),
    SettlementStatus.COMMITTING: N_("已支付，正在医院入账"),
    SettlementStatus.COMMITTED: N_("缴费成功"),
    SettlementStatus.REFUNDED: N_("医院未能入账，已退款"),
    SettlementStatus.EXPIRED: N_("已过期（未支付）"),
}


def _patient(patient: Patient) -> dict[str, Any]:
    return {"id": patient.id, "name": patient.name, "relation": patient.relation}


def _department(code: str) -> dict[str, str]:
    department = runtime().mappings.departments.get(code)
    return {"code": code, "name": name_of(department) if department else ""}


def charge_json(charge: Charge) -> dict[str, Any]:
    """An unpaid charge as the pages show it."""
    tz = runtime().config.tz
    return {"id": charge.id, "item_code": charge.item_code, "item_name": charge.item_name,
            "kind": charge.item_kind, "quantity": charge.quantity,
            "unit_price": yuan(charge.unit_price_fen), "amount": yuan(charge.amount_fen),
            "amount_fen": charge.amount_fen, "department": _department(charge.department_code),
            "group_code": charge.group_code,
            "ordered_at": charge.ordered_at.astimezone(tz).isoformat()
            if charge.ordered_at else None}


def bill_json(db: Session, view: BillView) -> dict[str, Any]:
    """A bill as the receipt page shows it."""
    settlement = view.settlement
    receipt = None
    if settlement.receipt_no:
        receipt = {"receipt_no": settlement.receipt_no, "invoice_no": settlement.invoice_no,
                   "check_code": settlement.check_code, "invoice_url": settlement.invoice_url}
    text = STATUS_TEXT.get(settlement.status)
    return {
        "id": settlement.public_id, "status": settlement.status,
        "status_text": say(text) if text else settlement.status,
        "total": yuan(settlement.total_fen),
        "split": {"self_pay": yuan(settlement.self_pay_fen),
                  "insurance_fund": yuan(settlement.insurance_fund_fen),
                  "personal_account": yuan(settlement.personal_account_fen)},
        "refunded": yuan(settlement.refunded_fen),
        "patient": _patient(db.get(Patient, settlement.patient_id)),
        "lines": [{"charge_id": charge.id, "item_name": charge.item_name,
                   "quantity": charge.quantity, "amount": yuan(line.amount_fen)}
                  for line, charge in view.lines],
        "receipt": receipt,
        "next_stops": [{"kind": stop.kind, "place": stop.place(locale()),
                        "location": stop.location} for stop in view.next_stops],
        "lock_expires_at": settlement.lock_expires_at.astimezone(
            runtime().config.tz).isoformat(),
    }


@bp.get("/bills")
@signed_in
def list_bills(account_id: int) -> ResponseReturnValue:
    """Unpaid charges of the account's own and verified dependants' records."""
    rt = runtime()
    current = True
    if rt.profile.charge_source in ("query", "both"):
        with rt.session_factory() as db:
            his_ids = [p.his_patient_id for p in visible_patients(db, account_id)]
        current = refresh_charges(rt, his_ids, now())
    with rt.session_factory() as db:
        return jsonify(current=current, patients=[
            {"patient": _patient(patient), "charges": [charge_json(c) for c in charges]}
            for patient, charges in unpaid_charges(db, account_id)])


@bp.get("/bills/<public_id>")
@signed_in
def get_bill(account_id: int, public_id: str) -> ResponseReturnValue:
    """A bill of the account: its state, the HIS's receipt and where to go next."""
    rt = runtime()
    with rt.session_factory() as db:
        settlement = own_settlement(db, account_id, public_id) \
            if valid(BillPath, public_id=public_id) else None
        if settlement is None or settlement.status not in STATUS_TEXT:
            return refused(Refusal("bill.unknown"), 404)
        view = bill_view(db, settlement, load_next_stops(rt.config.mappings_dir))
        return jsonify(bill_json(db, view))
