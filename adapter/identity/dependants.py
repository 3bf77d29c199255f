"""The certified user and the dependants they book for: who may be added, with what consent."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from adapter.identity.documents import (
    EARLIEST_BIRTH_DATE,
    DocumentFacts,
    check_document,
    normalize_document_number,
)
from adapter.identity.names import names_match, normalize_name
from adapter.refusals import Refusal

logger = logging.getLogger(__name__)

# Who a patient is to the wallet user. "child" means a minor (under 18, Civil Code art. 17) in
# the wallet user's guardianship (parent or other guardian, Civil Code art. 27): the only
# relation under which a child under 14 may be added, because the guardian's consent is what
# PIPL art. 31 requires. A grown-up son or daughter is "other". "self" is the certified user,
# added by match_self, never as a dependant.
RELATIONS = ("self", "child", "spouse", "parent", "other")

MAX_PATIENTS = 5  # per wallet user, self included
CHILD_CONSENT_AGE = 14  # PIPL art. 28 and 31
ADULT_AGE = 18  # Civil Code art. 17
# The longest name and phone kept: the patient.name and patient.phone_masked columns (a masked
# phone keeps its length), well inside what HL7 v2.5 carries in PID-5 and PID-13. The API's
# schema refuses longer values first; this is the use cases' own line behind it.
MAX_NAME_LENGTH = 100
MAX_PHONE_LENGTH = 20


def check_lengths(name: str, phone: str = "") -> None:
    """Refuse a name or phone longer than the adapter keeps (the refusal never quotes it)."""
    if len(name) > 4 * MAX_NAME_LENGTH or len(normalize_name(name)) > MAX_NAME_LENGTH:
        raise Refusal("name.too_long", limit=MAX_NAME_LENGTH)
    if len(phone.strip()) > MAX_PHONE_LENGTH:
        raise Refusal("phone.too_long", limit=MAX_PHONE_LENGTH)


@dataclass
class CertifiedIdentity:
    """What the wallet certified about its user (its certificate type and number, name...)."""

    name: str
    document_type: str
    document_number: str
    sex: str = ""  # "M"/"F" when the wallet says
    birth_date: dt.date | None = None  # when the wallet says


def match_self(certified: CertifiedIdentity, claimed_name: str, claimed_type: str,
               claimed_number: str, today: dt.date) -> DocumentFacts:
    """Check that the patient "self" is the wallet's certified user; return the facts."""
    facts = check_document(claimed_type, claimed_number, today)
    if not normalize_name(claimed_name):
        raise Refusal("name.empty")
    if not names_match(certified.name, claimed_name):
        raise Refusal("name.mismatch")
    if (claimed_type != certified.document_type
            or facts.number != normalize_document_number(certified.document_number)):
        raise Refusal("document.mismatch", document_type=claimed_type)
    certified_sex = certified.sex.strip().upper()
    if certified_sex in ("M", "F") and facts.sex and facts.sex != certified_sex:
        raise Refusal("sex.mismatch")
    if certified.birth_date and facts.birth_date and facts.birth_date != certified.birth_date:
        raise Refusal("birth_date.mismatch")
    return facts


@dataclass
class Dependant:
    """A patient the wallet user adds for someone else (child, spouse, parent...)."""

    name: str
    document_type: str
    document_number: str
    relation: str
    guardian_consent: bool = False
    # Declared by the user; needed for the age rules when the document does not carry one
    # (passports, travel permits). Must agree with the document when both say.
    birth_date: dt.date | None = None


def age_on(birth_date: dt.date, today: dt.date) -> int:
    """Age in whole years on ``today``; someone born on 29 February ages on 1 March."""
    before_birthday = (today.month, today.day) < (birth_date.month, birth_date.day)
    return today.year - birth_date.year - before_birthday


def check_new_patient(existing_count: int, new: Dependant, today: dt.date,
                      max_patients: int = MAX_PATIENTS) -> DocumentFacts:
    """Check that a dependant may be added to a wallet user's patients; return the facts.

    ``existing_count`` counts the user's patients already there, self included.
    """
    if existing_count >= max_patients:
        raise Refusal("patients.limit", limit=max_patients)
    if new.relation == "self":
        raise Refusal("relation.self")
    if new.relation not in RELATIONS:
        raise Refusal("relation.unknown")
    facts = check_document(new.document_type, new.document_number, today)
    if not normalize_name(new.name):
        raise Refusal("name.empty")
    birth_date = facts.birth_date
    if new.birth_date is not None:
        if birth_date is not None and birth_date != new.birth_date:
            raise Refusal("birth_date.mismatch")
        if not EARLIEST_BIRTH_DATE <= new.birth_date <= today:
            raise Refusal("document.birth_date", document_type=new.document_type)
        birth_date = new.birth_date
    age = age_on(birth_date, today) if birth_date is not None else None
    if age is not None and age < CHILD_CONSENT_AGE and new.relation != "child":
        raise Refusal("child.guardian_required", age=CHILD_CONSENT_AGE)
    if new.relation == "child":
        if age is not None and age >= ADULT_AGE:
            raise Refusal("relation.adult_as_child", adult_age=ADULT_AGE)
        # With no birth date at all the child is taken to be under 14: consent is asked.
        if (age is None or age < CHILD_CONSENT_AGE) and not new.guardian_consent:
            raise Refusal("child.consent_required", age=CHILD_CONSENT_AGE)
    if birth_date is not None and facts.birth_date is None:
        facts = DocumentFacts(facts.document_type, facts.number, birth_date, facts.sex)
    return facts
