"""Use cases of real-name identity: signing in with the wallet, the patients a user books for.

DESIGN invariant 6: a booking is made only for the wallet's certified user or a dependant whose
documents were checked; document numbers and phones are stored encrypted with a blind index and
shown masked. Invariant 7: a user sees only their own patients.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adapter.identity.dependants import (
    CertifiedIdentity,
    Dependant,
    check_lengths,
    check_new_patient,
    match_self,
)
from adapter.identity.documents import DocumentFacts
from adapter.identity.names import normalize_name
from adapter.identity.notices import tell_first_guardian
from adapter.identity.verification import mark_verified
from adapter.models import Patient, Verification, WalletAccount
from adapter.outbox import enqueue
from adapter.ports import PatientIdentity, WalletGateway
from adapter.protection import DataProtector, mask_document, mask_phone
from adapter.refusals import Refusal

logger = logging.getLogger(__name__)

DOCUMENT_CONTEXT = "patient.document_number"
PHONE_CONTEXT = "patient.phone"


@dataclass(frozen=True)
class SignedIn:
    """Who signed in: their account and, when the wallet certified them, their own patient."""

    account_id: int
    is_certified: bool
    self_patient_id: int | None


def _patients(session: Session, account_id: int) -> list[Patient]:
    return list(session.scalars(
        select(Patient)
        .where(Patient.wallet_account_id == account_id, Patient.removed_at.is_(None))
        .order_by(Patient.id)
    ))


def list_patients(session: Session, account_id: int) -> list[Patient]:
    """The account's patients, self first."""
    return sorted(_patients(session, account_id), key=lambda p: (p.relation != "self", p.id))


def get_patient(session: Session, account_id: int, patient_id: int) -> Patient | None:
    """One of the account's own patients; None for anybody else's (invariant 7)."""
    patient = session.get(Patient, patient_id)
    if patient is None or patient.wallet_account_id != account_id or patient.removed_at:
        return None
    return patient


def _store(
    session: Session, protector: DataProtector, account_id: int, relation: str, name: str,
    facts: DocumentFacts, sex: str, phone: str, consent: bool, now: dt.datetime,
) -> Patient:
    check_lengths(name, phone)
    index = protector.blind_index(facts.number, facts.document_type)
    patient = session.scalar(
        select(Patient).where(
            Patient.wallet_account_id == account_id, Patient.document_index == index
        )
    )
    new = patient is None
    if patient is None:
        patient = Patient(wallet_account_id=account_id, document_index=index)
        session.add(patient)
    patient.relation = relation
    patient.name = normalize_name(name)
    patient.document_type = facts.document_type
    patient.document_number_enc = protector.encrypt(facts.number, DOCUMENT_CONTEXT)
    patient.document_masked = mask_document(facts.number)
    patient.birth_date = facts.birth_date
    patient.sex = facts.sex or sex or "U"
    if phone:
        patient.phone_enc = protector.encrypt(phone, PHONE_CONTEXT)
        patient.phone_masked = mask_phone(phone)
    if consent and patient.guardian_consent_at is None:
        patient.guardian_consent_at = now
    patient.removed_at = None
    session.flush()
    if relation == "self":
        mark_verified(session, patient, Verification.SELF, now)
    if new:
        # Ask the HIS for them now, not in the morning rush (see delivery.deliver_his_patient).
        enqueue(session, "his_patient", ("patient", patient.id), now)
    return patient


def store_self(session: Session, protector: DataProtector, account_id: int, name: str,
               facts: DocumentFacts, sex: str, phone: str, *, now: dt.datetime) -> Patient:
    """Keep the account's certified person as its verified "self" patient (signing in with a
    certifying wallet, or a real-name binding)."""
    return _store(session, protector, account_id, "self", name, facts, sex, phone,
                  consent=False, now=now)


def sign_in_with_wallet(
    session: Session, wallet: WalletGateway, protector: DataProtector, auth_code: str,
    today: dt.date, *, now: dt.datetime,
) -> SignedIn:
    """Exchange a wallet auth code for the user's account; a certified user becomes "self"."""
    user = wallet.exchange_auth_code(auth_code)
    account = session.scalar(
        select(WalletAccount).where(
            WalletAccount.platform == wallet.platform, WalletAccount.user_id == user.user_id
        )
    )
    if account is None:
        account = WalletAccount(platform=wallet.platform, user_id=user.user_id)
        session.add(account)
    wallet_certified = user.is_certified and bool(user.document_number)
    # A bound account stays bound (its "self" came from the binding, docs/identity.md); the
    # wallet's certificate makes the "self" of an account that is not.
    account.is_certified = wallet_certified or account.bound_at is not None
    account.last_login_at = now
    session.flush()
    self_id = None
    if wallet_certified and account.bound_at is None:
        certified = CertifiedIdentity(user.name, user.document_type, user.document_number,
                                      sex=user.sex)
        facts = match_self(certified, user.name, user.document_type, user.document_number,
                           today)
        self_id = store_self(session, protector, account.id, user.name, facts, user.sex,
                             user.mobile, now=now).id
    elif account.is_certified:
        self_id = session.scalar(select(Patient.id).where(
            Patient.wallet_account_id == account.id, Patient.relation == "self",
            Patient.removed_at.is_(None)))
    logger.info("wallet account %s signed in (certified: %s)", account.id, account.is_certified)
    return SignedIn(account.id, account.is_certified, self_id)


def add_dependant(
    session: Session, protector: DataProtector, account_id: int, dependant: Dependant,
    today: dt.date, phone: str = "", *, now: dt.datetime,
) -> Patient:
    """Add a child, spouse or parent the user books for, after checking their document."""
    account = session.get(WalletAccount, account_id)
    if account is None or not account.is_certified:
        raise Refusal("account.not_certified")
    count = session.scalar(
        select(func.count()).select_from(Patient).where(
            Patient.wallet_account_id == account_id, Patient.removed_at.is_(None)
        )
    ) or 0
    facts = check_new_patient(count, dependant, today)
    index = protector.blind_index(facts.number, facts.document_type)
    if session.scalar(select(Patient.id).where(
        Patient.wallet_account_id == account_id, Patient.document_index == index,
        Patient.removed_at.is_(None),
    )):
        raise Refusal("patient.exists")
    patient = _store(session, protector, account_id, dependant.relation, dependant.name, facts,
                     "", phone, consent=dependant.guardian_consent, now=now)
    # Unverified until the HIS's record shows it is the person (delivery.deliver_his_patient);
    # the person's first verified guardian hears of it meanwhile.
    tell_first_guardian(session, patient, now)
    logger.info("patient %s added to wallet account %s (%s)", patient.id, account_id,
                dependant.relation)
    return patient


def his_identity(protector: DataProtector, patient: Patient) -> PatientIdentity:
    """The patient as the HIS should know them (decrypted for the HL7 message only)."""
    return PatientIdentity(
        name=patient.name,
        sex=patient.sex,
        birth_date=patient.birth_date or dt.date(1900, 1, 1),
        document_type=patient.document_type,
        document_number=protector.decrypt(patient.document_number_enc, DOCUMENT_CONTEXT),
        phone=(protector.decrypt(patient.phone_enc, PHONE_CONTEXT) if patient.phone_enc
               else ""),
        his_patient_id=patient.his_patient_id or "",
    )
