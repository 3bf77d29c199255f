"""Verifying an account's link to a person (docs/identity.md).

A link is verified when the person is the account's certified user (self), when the HIS knew
the person, from the hospital's own records and not from us, with the same document, name and
birth date (and, by default, the account holder's wallet-certified phone), or when the wallet
certifies the relation. Only verified links share the person's limits and no-show ban with
other accounts (adapter.registration.rules.counted_bookings).
"""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from adapter.identity.names import names_match
from adapter.identity.notices import first_verified_link, tell_guardian
from adapter.models import Patient, Verification
from adapter.ports import PatientIdentity

logger = logging.getLogger(__name__)


def is_verified(patient: Patient) -> bool:
    """Whether the link is verified, by whatever means."""
    return patient.verification in Verification.VERIFIED


def mark_verified(session: Session, patient: Patient, by: str, now: dt.datetime) -> None:
    """Record that the link is verified (once). The person's first verified link hears that
    other accounts already added them, if any did.

    The wallet's certification of a relation (Verification.WALLET) enters here too, when a
    wallet offers one: WalletGateway has no such call today, so nothing sets it yet.
    """
    if is_verified(patient):
        return
    first = first_verified_link(session, patient.document_index,
                                patient.wallet_account_id) is None
    patient.verification, patient.verified_at = by, now
    logger.info("patient %s verified (%s)", patient.id, by)
    if first and session.scalar(select(exists().where(
            Patient.document_index == patient.document_index,
            Patient.wallet_account_id != patient.wallet_account_id,
            Patient.removed_at.is_(None)))):
        tell_guardian(session, patient, now)


def his_record_is_ours(session: Session, document_index: str) -> bool:
    """Whether a dependant link of the person put them in the HIS (ADT^A28): that record
    repeats what an account typed, so it verifies nobody."""
    return bool(session.scalar(select(exists().where(
        Patient.document_index == document_index, Patient.his_added.is_(True)))))


def phone_digits(phone: str) -> str:
    """A phone's digits as typed or kept, without the +86 country code (for comparing)."""
    digits = "".join(ch for ch in unicodedata.normalize("NFKC", phone) if ch.isdigit())
    return digits[2:] if len(digits) == 13 and digits.startswith("86") else digits


def his_record_matches(found: PatientIdentity, patient: Patient, account_phone: str, *,
                       needs_phone: bool) -> bool:
    """Whether the HIS's record of the document is the link's person: same name and birth
    date, and (``needs_phone``) the phone the HIS keeps for them is the account holder's own.

    Name and birth date are what anyone holding the person's ID number knows (the birth date
    is in it); the phone a hospital keeps for a child is their guardian's, and the account's
    phone is the one its wallet certified, which a stranger cannot choose.
    """
    if not names_match(found.name, patient.name):
        return False
    if patient.birth_date is None or found.birth_date != patient.birth_date:
        return False
    if needs_phone:
        theirs, ours = phone_digits(found.phone), phone_digits(account_phone)
        return bool(theirs) and theirs == ours
    return True
