"""Identity's outbox deliveries: a new patient found in or added to the HIS, and a wallet
message to a patient's account."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session

from adapter.flows import OutboxJob, Services
from adapter.identity.patients import his_identity
from adapter.models import Patient, WalletAccount
from adapter.outbox import enqueue, finish
from adapter.ports import PatientIdentity

logger = logging.getLogger(__name__)


def tell_account(session: Session, account_id: int, text: str, path: str, now: dt.datetime,
                 message_kind: str = "") -> None:
    """Queue a wallet message to an account, linking to ``path`` under the public URL."""
    enqueue(session, "push", ("wallet_account", account_id), now, message_kind=message_kind,
            text=text, path=path)


def deliver_push(services: Services, job: OutboxJob, now: dt.datetime) -> None:
    """Send a queued wallet message through the account's own wallet."""
    with services.session_factory() as session:
        account = session.get(WalletAccount, int(job.subject_id))
        user_id, platform = account.user_id, account.platform
    url = f"{services.config.effective_public_url}{job.payload.get('path', '')}"
    services.wallet_for(platform).push_message(user_id, job.payload["text"], url)
    with services.session_factory.begin() as session:
        finish(session, job, now)


def deliver_his_patient(services: Services, job: OutboxJob, now: dt.datetime) -> None:
    """Find (QBP^Q22) or add (ADT^A28) a new patient in the HIS ahead of their first booking,
    so the morning rush's bookings need one HIS exchange each, not four."""
    patient_id = int(job.subject_id)
    with services.session_factory() as session:
        patient = session.get(Patient, patient_id)
        identity = None if patient.his_patient_id else his_identity(services.protector, patient)
    his_patient_id = ""
    if identity is not None:
        his_patient_id = find_or_register(services, identity)
    with services.session_factory.begin() as session:
        patient = session.get(Patient, patient_id)
        if identity is not None and not patient.his_patient_id:
            patient.his_patient_id = his_patient_id
        finish(session, job, now)


def find_or_register(services: Services, identity: PatientIdentity) -> str:
    """The patient's HIS id: found by document (QBP^Q22), else added (ADT^A28)."""
    found = services.his.find_patient(identity.document_type, identity.document_number)
    return (found or services.his.register_patient(identity)).his_patient_id
