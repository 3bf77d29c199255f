"""Charges from the HIS: kept by the HIS's id, listed for the patient and their verified
dependants, and announced once when new ones appear."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.billing.texts import NEW_CHARGES
from adapter.flows import Services
from adapter.i18n import translate
from adapter.identity.notices import tell_account
from adapter.links import record_link
from adapter.mappings import Mappings
from adapter.models import Patient, Verification
from adapter.models_billing import Charge, ChargeStatus
from adapter.money import yuan
from adapter.ports import HisRefused, HisUnavailable
from adapter.ports_billing import ChargeLine, ChargesReported

logger = logging.getLogger(__name__)

BILLS_PATH = "/h5/bills"

# A charge the HIS lists again in these states is listed for payment again (it changed).
_RELISTED = (ChargeStatus.UNPAID, ChargeStatus.CHANGED, ChargeStatus.CANCELLED)


def item_kind(mappings: Mappings, item_code: str) -> str:
    """The fee item's kind (fee_items.csv): laboratory, examination, drug..."""
    item = mappings.fee_items.get(item_code)
    return (item.kind or "other") if item is not None else "other"


def keep_charges(session: Session, lines: Iterable[ChargeLine], mappings: Mappings,
                 now: dt.datetime) -> list[Charge]:
    """Store the HIS's unpaid charges; returns those new to us. A line already locked or paid
    through us is left alone (the HIS's settlement decides it); an unpaid one takes the HIS's
    latest amounts."""
    new: list[Charge] = []
    for line in lines:
        charge = session.scalar(select(Charge).where(Charge.his_charge_id == line.his_charge_id)
                                .with_for_update())
        if charge is None:
            charge = Charge(his_charge_id=line.his_charge_id, received_at=now)
            session.add(charge)
            new.append(charge)
        elif charge.status not in _RELISTED:
            continue
        charge.his_patient_id, charge.visit_number = line.his_patient_id, line.visit_number
        charge.item_code, charge.item_name = line.item_code, line.item_name
        charge.item_kind = item_kind(mappings, line.item_code)
        charge.quantity, charge.unit_price_fen = line.quantity, line.unit_price_fen
        charge.amount_fen, charge.department_code = line.amount_fen, line.department_code
        charge.group_code, charge.ordered_at = line.group_code, line.ordered_at
        charge.status, charge.updated_at = ChargeStatus.UNPAID, now
    session.flush()
    return new


def accounts_of(session: Session, his_patient_id: str) -> list[int]:
    """The accounts with a verified link to the HIS patient: only they see or hear of bills."""
    rows = session.scalars(
        select(Patient.wallet_account_id)
        .where(Patient.his_patient_id == his_patient_id,
               Patient.verification.in_(Verification.VERIFIED), Patient.removed_at.is_(None))
        .order_by(Patient.id))
    return list(dict.fromkeys(rows))


def announce_new(session: Session, charges: list[Charge], now: dt.datetime) -> int:
    """One wallet message per account for the charges that just appeared; returns how many."""
    by_patient: dict[str, list[Charge]] = {}
    for charge in charges:
        if charge.amount_fen > 0:
            by_patient.setdefault(charge.his_patient_id, []).append(charge)
    told = 0
    for his_patient_id, new in by_patient.items():
        text = translate(NEW_CHARGES, "zh-CN").format(
            count=len(new), total=yuan(sum(c.amount_fen for c in new)))
        for account_id in accounts_of(session, his_patient_id):
            tell_account(session, account_id, text, BILLS_PATH, now, message_kind="bill_new")
            told += 1
    return told


def charges_reported(services: Services, session: Session, event: ChargesReported,
                     now: dt.datetime) -> None:
    """The HIS sent charges (DFT^P03): keep them, tell the patient about new ones once."""
    new = keep_charges(session, event.lines, services.mappings, now)
    told = announce_new(session, new, now)
    logger.info("charges %s: %d line(s), %d new, %d account(s) told", event.control_id,
                len(event.lines), len(new), told)


def refresh_charges(services: Services, his_patient_ids: Iterable[str],
                    now: dt.datetime) -> bool:
    """Ask the HIS for the patients' unpaid charges (where the profile queries); False when it
    could not answer (the list kept is shown meanwhile)."""
    for his_patient_id in his_patient_ids:
        try:
            lines = services.his.query_charges(his_patient_id)  # outside any transaction
        except (HisUnavailable, HisRefused) as exc:
            logger.warning("charge query skipped (%s)", type(exc).__name__)
            if isinstance(exc, HisUnavailable):
                record_link(services, "his", False, type(exc).__name__)
            return False
        with services.session_factory.begin() as session:
            new = keep_charges(session, lines, services.mappings, now)
            announce_new(session, new, now)
    return True


def visible_patients(session: Session, account_id: int) -> list[Patient]:
    """The account's own and verified dependants' links that the HIS knows."""
    return list(session.scalars(
        select(Patient).where(Patient.wallet_account_id == account_id,
                              Patient.verification.in_(Verification.VERIFIED),
                              Patient.removed_at.is_(None), Patient.his_patient_id.is_not(None))
        .order_by(Patient.id)))


def unpaid_charges(session: Session, account_id: int) -> list[tuple[Patient, list[Charge]]]:
    """The unpaid charges the account may pay, per patient."""
    out = []
    for patient in visible_patients(session, account_id):
        charges = list(session.scalars(
            select(Charge).where(Charge.his_patient_id == patient.his_patient_id,
                                 Charge.status == ChargeStatus.UNPAID, Charge.amount_fen > 0)
            .order_by(Charge.group_code, Charge.id)))
        out.append((patient, charges))
    return out
