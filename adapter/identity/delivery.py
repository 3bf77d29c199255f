"""Identity's outbox deliveries and jobs: a new patient found in or added to the HIS (and a
dependant link verified against the HIS's record), and a wallet message to an account."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from adapter.flows import OutboxJob, Services
from adapter.identity.patients import PHONE_CONTEXT, his_identity
from adapter.identity.verification import his_record_is_ours, his_record_matches, mark_verified
from adapter.models import OutboxMessage, OutboxStatus, Patient, Verification, WalletAccount
from adapter.outbox import enqueue, finish
from adapter.ports import PatientIdentity
from adapter.protection import DataProtector

logger = logging.getLogger(__name__)


def deliver_push(services: Services, job: OutboxJob, now: dt.datetime) -> None:
    """Send a queued wallet message through the account's own wallet."""
    with services.session_factory() as session:
        account = session.get(WalletAccount, int(job.subject_id))
        user_id, platform = account.user_id, account.platform
    url = f"{services.config.effective_public_url}{job.payload.get('path', '')}"
    services.wallet_for(platform).push_message(user_id, job.payload["text"], url)
    with services.session_factory.begin() as session:
        finish(session, job, now)


def _account_phone(session: Session, protector: DataProtector, account_id: int) -> str:
    """The account holder's wallet-certified phone (kept on their "self" patient)."""
    phone_enc = session.scalar(select(Patient.phone_enc).where(
        Patient.wallet_account_id == account_id, Patient.relation == "self"))
    return protector.decrypt(phone_enc, PHONE_CONTEXT) if phone_enc else ""


def deliver_his_patient(services: Services, job: OutboxJob, now: dt.datetime) -> None:
    """Find (QBP^Q22) or add (ADT^A28) a new patient in the HIS ahead of their first booking,
    so the morning rush's bookings need one HIS exchange each, not four; a dependant link is
    verified when the HIS's own record of the document is the same person."""
    patient_id = int(job.subject_id)
    with services.session_factory() as session:
        patient = session.get(Patient, patient_id)
        unverified = patient.verification == Verification.UNVERIFIED
        identity = (his_identity(services.protector, patient)
                    if unverified or not patient.his_patient_id else None)
        account_phone = (_account_phone(session, services.protector, patient.wallet_account_id)
                         if unverified else "")
    found = registered = None
    if identity is not None:
        found = services.his.find_patient(identity.document_type, identity.document_number)
        if found is None and not identity.his_patient_id:
            registered = services.his.register_patient(identity)
    with services.session_factory.begin() as session:
        patient = session.get(Patient, patient_id)
        record = found or registered
        if record is not None:
            remember_his_patient(patient, record.his_patient_id, added=registered is not None)
        if (found is not None and patient.verification == Verification.UNVERIFIED
                and not his_record_is_ours(session, patient.document_index)
                and his_record_matches(found, patient, account_phone,
                                       needs_phone=services.booking_rules.his_match_needs_phone)):
            mark_verified(session, patient, Verification.HIS, now)
        finish(session, job, now)


def remember_his_patient(patient: Patient, his_patient_id: str, *, added: bool) -> None:
    """Keep the patient's HIS id; a dependant's record the adapter added is marked as such
    (it repeats what the account typed, so it verifies nobody)."""
    if not patient.his_patient_id:
        patient.his_patient_id = his_patient_id
    if added and patient.relation != "self":
        patient.his_added = True


def find_or_register(services: Services, identity: PatientIdentity) -> tuple[str, bool]:
    """The patient's HIS id, found by document (QBP^Q22) or else added (ADT^A28), and whether
    it was added."""
    found = services.his.find_patient(identity.document_type, identity.document_number)
    if found is not None:
        return found.his_patient_id, False
    return services.his.register_patient(identity).his_patient_id, True


def retry_unreached_patients(services: Services, limit: int = 200) -> int:
    """Queue the HIS lookup again for patients it never reached (the HIS was down until their
    item was parked), so a dependant added during an outage is still verified."""
    now = services.clock.now()
    with services.session_factory.begin() as session:
        pending = select(OutboxMessage.subject_id).where(
            OutboxMessage.kind == "his_patient", OutboxMessage.subject_type == "patient",
            OutboxMessage.status == OutboxStatus.PENDING)
        due = list(session.scalars(
            select(Patient.id)
            .where(Patient.his_patient_id.is_(None), Patient.removed_at.is_(None),
                   cast(Patient.id, String(64)).not_in(pending))
            .order_by(Patient.id).limit(limit)
        ))
        for patient_id in due:
            enqueue(session, "his_patient", ("patient", patient_id), now)
    if due:
        logger.info("%d patient(s) queued again for the HIS", len(due))
    return len(due)
