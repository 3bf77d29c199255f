"""Real-name binding (实名绑定): an account its wallet did not certify is bound to a verified
person before it may book, pay or read results (docs/identity.md, "Binding").

Two methods, as the hospital configures (ADAPTER_BINDING_METHODS):

- ``his_match``: the patient gives name, document and mobile phone; the HIS's patient index
  must hold the document with the same name and phone, and a one-time code sent to that phone
  (the HIS's, not the one typed) confirms it; where the HIS profile says its phones are
  confirmed by the hospital itself (``patient_phone_confirmed``), the match binds at once.
- ``health_card``: the electronic health card's registry vouches for the card's person.

A binding makes the account certified in the adapter's sense: a verified "self" patient with
the person's facts, and the method and time on the account. Once bound, adding dependants,
booking, paying and reading results follow exactly the rules of a wallet-certified account.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
import unicodedata
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from adapter.identity.dependants import check_lengths
from adapter.identity.documents import DocumentFacts, check_document
from adapter.identity.names import names_match, normalize_name
from adapter.identity.patients import DOCUMENT_CONTEXT, PHONE_CONTEXT, store_self
from adapter.identity.verification import phone_digits
from adapter.models import Patient, WalletAccount
from adapter.models_binding import BindingAttempt, BindingOutcome
from adapter.ports import HisGateway
from adapter.ports_identity import HealthCardRegistry, RegistryUnavailable, SmsSender
from adapter.protection import DataProtector, mask_phone
from adapter.refusals import Refusal

logger = logging.getLogger(__name__)

HIS_MATCH = "his_match"
HEALTH_CARD = "health_card"
METHODS = (HIS_MATCH, HEALTH_CARD)
WALLET = "wallet"  # how a wallet-certified account is "bound", in the binding's status
SMS_CODE = "sms_code"  # the confirmation a started binding waits for
CODE_DIGITS = 6
CODE_KIND = "binding.code"
# The text of the code's SMS (the hospital's SMS gateway adds its signature, 【医院名】).
SMS_TEXT = "验证码{code}，用于绑定就诊人身份，{minutes}分钟内有效。如非本人操作，请忽略本短信。"


@dataclass(frozen=True)
class BindingPolicy:
    """How binding is offered and throttled (docs/identity.md)."""

    methods: tuple[str, ...] = (HIS_MATCH,)  # ADAPTER_BINDING_METHODS
    # The HIS's phones were confirmed by the hospital (Hl7Profile.patient_phone_confirmed):
    # a match of name, document and phone binds without a code of ours.
    his_confirmed: bool = False
    code_lifetime: dt.timedelta = dt.timedelta(minutes=5)
    max_tries: int = 5  # wrong codes per attempt
    resend_after: dt.timedelta = dt.timedelta(seconds=60)
    max_sends: int = 5  # codes per attempt
    # Attempts per account and per document (blind index) in a rolling window: a person
    # typing their own details gets there well inside them, someone guessing does not.
    window: dt.timedelta = dt.timedelta(hours=24)
    per_account: int = 10
    per_document: int = 5


class BindingServices(Protocol):
    """The collaborators of binding (the runtime, or a test's)."""

    session_factory: sessionmaker
    his: HisGateway
    protector: DataProtector
    sms: SmsSender
    health_cards: HealthCardRegistry
    binding: BindingPolicy


@dataclass(frozen=True)
class BindingRequest:
    """What the patient gives to start a binding (``card`` for health_card, the rest for
    his_match)."""

    method: str
    name: str = field(default="", repr=False)
    document_type: str = ""
    document_number: str = field(default="", repr=False)
    phone: str = field(default="", repr=False)
    card: str = field(default="", repr=False)


@dataclass(frozen=True)
class BindingStatus:
    """The account's binding as its page shows it."""

    certified: bool
    bound_by: str  # his_match, health_card, wallet, or "" when not bound
    bound_at: dt.datetime | None
    methods: tuple[str, ...]
    confirmation: str = ""  # sms_code while a code waits to be entered
    phone_masked: str = ""  # where the code went
    code_expires_at: dt.datetime | None = None
    resend_at: dt.datetime | None = None
    tries_left: int = 0


@dataclass(frozen=True)
class _Person:
    name: str = field(repr=False)
    facts: DocumentFacts = field(repr=False)
    sex: str
    phone: str = field(repr=False)
    his_patient_id: str = ""


# --- the use cases --------------------------------------------------------------------------


def binding_status(session: Session, policy: BindingPolicy, account_id: int,
                   now: dt.datetime) -> BindingStatus:
    """Whether the account is bound (or wallet-certified), and the code it waits for."""
    account = session.get(WalletAccount, account_id)
    if account is None:
        raise Refusal("account.disabled")
    bound_by = account.bound_by or (WALLET if account.is_certified else "")
    status = BindingStatus(account.is_certified, bound_by or "", account.bound_at,
                           policy.methods)
    attempt = None if account.is_certified else _pending(session, account_id)
    if attempt is None or attempt.phone_enc is None:
        return status
    return BindingStatus(
        status.certified, status.bound_by, status.bound_at, status.methods,
        confirmation=SMS_CODE, phone_masked=attempt.phone_masked,
        code_expires_at=attempt.code_expires_at,
        resend_at=(attempt.code_sent_at or now) + policy.resend_after,
        tries_left=max(0, policy.max_tries - attempt.tries))


def start_binding(services: BindingServices, account_id: int, asked: BindingRequest,
                  today: dt.date, *, now: dt.datetime) -> BindingStatus:
    """Check what the patient gave against the HIS or the health card registry; bind at once,
    or send the code that confirms it. Raises Refusal, HisUnavailable, RegistryUnavailable."""
    policy = services.binding
    with services.session_factory.begin() as session:
        _account(session, account_id)
        if asked.method not in policy.methods:
            raise Refusal("binding.method_unknown")
        _check_throttle(session, policy, now, account_id=account_id)
    index = ""
    try:
        if asked.method == HIS_MATCH:
            facts = _typed_document(asked, today)
            index = services.protector.blind_index(facts.number, facts.document_type)
            with services.session_factory() as session:
                _check_throttle(session, policy, now, indexes=_indexes(services, facts))
            person = _his_person(services.his, asked, facts)
        else:
            person = _card_person(services.health_cards, asked, today)
            index = services.protector.blind_index(person.facts.number,
                                                   person.facts.document_type)
            with services.session_factory() as session:
                _check_throttle(session, policy, now, indexes=_indexes(services, person.facts))
        with services.session_factory.begin() as session:
            account = _account(session, account_id)
            if _bound_elsewhere(session, account, _indexes(services, person.facts)):
                raise Refusal("binding.bound_elsewhere")
            _supersede(session, account_id, now)
            attempt = _attempt(session, services.protector, account_id, asked.method, index,
                               person, now)
            if asked.method == HEALTH_CARD or policy.his_confirmed:
                _bind(session, services.protector, account, attempt, person, now)
                return binding_status(session, policy, account_id, now)
            code = _new_code(services.protector, attempt, policy, now)
    except Refusal as refusal:
        _record_refused(services, account_id, asked.method, index, refusal.code, now)
        raise
    _send(services, attempt.id, person.phone, code, now)
    with services.session_factory() as session:
        return binding_status(session, policy, account_id, now)


def confirm_binding(services: BindingServices, account_id: int, code: str, today: dt.date,
                    *, now: dt.datetime) -> BindingStatus:
    """Bind the account with the code sent to the HIS's phone. Raises Refusal."""
    policy = services.binding
    refusal: Refusal | None = None
    with services.session_factory.begin() as session:
        account = _account(session, account_id)
        attempt = _pending(session, account_id)
        if attempt is None or attempt.code_expires_at is None:
            raise Refusal("binding.nothing_pending")
        if now >= attempt.code_expires_at:  # the attempt waits on: a new code may be sent
            refusal = Refusal("binding.code_expired")
        elif not _code_matches(services.protector, attempt, code):
            attempt.tries += 1
            left = policy.max_tries - attempt.tries
            if left <= 0:
                _finish(attempt, BindingOutcome.REFUSED, "binding.too_many_tries", now)
                refusal = Refusal("binding.too_many_tries")
            else:
                refusal = Refusal("binding.code_wrong", left=left)
        else:
            person = _stored_person(services.protector, attempt, today)
            if _bound_elsewhere(session, account, _indexes(services, person.facts)):
                _finish(attempt, BindingOutcome.REFUSED, "binding.bound_elsewhere", now)
                refusal = Refusal("binding.bound_elsewhere")
            else:
                _bind(session, services.protector, account, attempt, person, now)
        if refusal is None:
            return binding_status(session, policy, account_id, now)
    logger.info("binding code refused for wallet account %s (%s)", account_id, refusal.code)
    raise refusal


def resend_code(services: BindingServices, account_id: int, *,
                now: dt.datetime) -> BindingStatus:
    """A new code for the waiting binding, to the same phone (throttled). Raises Refusal."""
    policy = services.binding
    with services.session_factory.begin() as session:
        _account(session, account_id)
        attempt = _pending(session, account_id)
        if attempt is None or attempt.phone_enc is None:
            raise Refusal("binding.nothing_pending")
        if attempt.tries >= policy.max_tries:
            raise Refusal("binding.too_many_tries")
        wait = (attempt.code_sent_at or now) + policy.resend_after - now
        if attempt.code_sent_at is not None and wait > dt.timedelta(0):
            raise Refusal("binding.resend_wait", seconds=max(1, int(wait.total_seconds())))
        if attempt.sends >= policy.max_sends:
            raise Refusal("binding.too_many_sends")
        code = _new_code(services.protector, attempt, policy, now)
        attempt_id = attempt.id
        phone = services.protector.decrypt(attempt.phone_enc, PHONE_CONTEXT)
    _send(services, attempt_id, phone, code, now)
    with services.session_factory() as session:
        return binding_status(session, policy, account_id, now)


def require_certified(session: Session, account_id: int) -> WalletAccount:
    """The account, when its wallet certified it or it is bound; else the refusal that sends
    the patient to binding (account.not_certified)."""
    account = session.get(WalletAccount, account_id)
    if account is None or not account.is_certified:
        raise Refusal("account.not_certified")
    return account


# --- the checks -----------------------------------------------------------------------------


def _account(session: Session, account_id: int) -> WalletAccount:
    # Locked: one account's binding steps run one at a time (a code is used once).
    account = session.get(WalletAccount, account_id, with_for_update=True)
    if account is None or account.disabled_at is not None:
        raise Refusal("account.disabled")
    if account.is_certified:
        raise Refusal("binding.already_certified")
    return account


def _typed_document(asked: BindingRequest, today: dt.date) -> DocumentFacts:
    facts = check_document(asked.document_type, asked.document_number, today)
    if not normalize_name(asked.name):
        raise Refusal("name.empty")
    check_lengths(asked.name, asked.phone)
    if not phone_digits(asked.phone):
        raise Refusal("binding.phone_empty")
    return facts


def _his_person(his: HisGateway, asked: BindingRequest, facts: DocumentFacts) -> _Person:
    """The HIS's record of the document, when it is the person typed (names compared as
    everywhere: adapter.identity.names; phones by their digits, +86 aside)."""
    found = his.find_patient(facts.document_type, facts.number)
    if found is None:
        raise Refusal("binding.his_unknown")
    if not names_match(found.name, asked.name):
        raise Refusal("binding.name_mismatch")
    if not phone_digits(found.phone):
        raise Refusal("binding.his_no_phone")
    if phone_digits(found.phone) != phone_digits(asked.phone):
        raise Refusal("binding.phone_mismatch")
    return _Person(normalize_name(found.name), facts, facts.sex or found.sex, found.phone,
                   found.his_patient_id)


def _card_person(cards: HealthCardRegistry, asked: BindingRequest, today: dt.date) -> _Person:
    card = unicodedata.normalize("NFKC", asked.card).strip()
    if not card:
        raise Refusal("binding.card_empty")
    identity = cards.look_up(card)
    if identity is None:
        raise Refusal("binding.card_unknown")
    facts = check_document(identity.document_type, identity.document_number, today)
    check_lengths(identity.name, identity.phone)
    return _Person(normalize_name(identity.name), facts, facts.sex or identity.sex,
                   identity.phone)


def _indexes(services: BindingServices, facts: DocumentFacts) -> list[str]:
    return services.protector.lookup_indexes(facts.number, facts.document_type)


def _check_throttle(session: Session, policy: BindingPolicy, now: dt.datetime, *,
                    account_id: int | None = None, indexes: list[str] | None = None) -> None:
    since = now - policy.window
    query = select(func.count()).select_from(BindingAttempt).where(
        BindingAttempt.started_at > since)
    if account_id is not None:
        count, limit = session.scalar(query.where(
            BindingAttempt.wallet_account_id == account_id)) or 0, policy.per_account
    else:
        count, limit = session.scalar(query.where(
            BindingAttempt.document_index.in_(indexes or []))) or 0, policy.per_document
    if count >= limit:
        raise Refusal("binding.too_many", hours=int(policy.window.total_seconds() // 3600))


def _bound_elsewhere(session: Session, account: WalletAccount, indexes: list[str]) -> bool:
    """Whether another live account of the same wallet has the person as its "self".

    A person has one account per wallet: a second one claiming them is refused, not shared
    (docs/identity.md). Staff disabling the old account (a lost phone) frees the person.
    """
    return bool(session.scalar(select(exists().where(
        Patient.document_index.in_(indexes), Patient.relation == "self",
        Patient.removed_at.is_(None), Patient.wallet_account_id != account.id,
        Patient.wallet_account_id == WalletAccount.id,
        WalletAccount.platform == account.platform, WalletAccount.disabled_at.is_(None),
        WalletAccount.is_certified.is_(True)))))


# --- the attempt ----------------------------------------------------------------------------


def _pending(session: Session, account_id: int) -> BindingAttempt | None:
    return session.scalar(
        select(BindingAttempt)
        .where(BindingAttempt.wallet_account_id == account_id,
               BindingAttempt.outcome == BindingOutcome.PENDING)
        .order_by(BindingAttempt.id.desc()).limit(1))


def _supersede(session: Session, account_id: int, now: dt.datetime) -> None:
    session.execute(
        update(BindingAttempt)
        .where(BindingAttempt.wallet_account_id == account_id,
               BindingAttempt.outcome == BindingOutcome.PENDING)
        .values(outcome=BindingOutcome.SUPERSEDED, finished_at=now))


def _attempt(session: Session, protector: DataProtector, account_id: int, method: str,
             index: str, person: _Person, now: dt.datetime) -> BindingAttempt:
    attempt = BindingAttempt(
        wallet_account_id=account_id, method=method, started_at=now, document_index=index,
        document_type=person.facts.document_type,
        document_number_enc=protector.encrypt(person.facts.number, DOCUMENT_CONTEXT),
        name=person.name, sex=person.sex or "U", his_patient_id=person.his_patient_id,
        phone_enc=protector.encrypt(person.phone, PHONE_CONTEXT) if person.phone else None,
        phone_masked=mask_phone(person.phone) if person.phone else "", sends=0, tries=0)
    session.add(attempt)
    session.flush()
    return attempt


def _record_refused(services: BindingServices, account_id: int, method: str, index: str,
                    code: str, now: dt.datetime) -> None:
    """Keep a refused attempt: it counts toward the account's and the document's throttle."""
    if code in ("binding.too_many", "account.disabled", "binding.already_certified"):
        return
    with services.session_factory.begin() as session:
        session.add(BindingAttempt(
            wallet_account_id=account_id, method=method, started_at=now, document_index=index,
            outcome=BindingOutcome.REFUSED, reason=code, finished_at=now, sends=0, tries=0))
    logger.info("binding refused for wallet account %s (%s, %s)", account_id, method, code)


def _finish(attempt: BindingAttempt, outcome: str, reason: str, now: dt.datetime) -> None:
    attempt.outcome, attempt.reason, attempt.finished_at = outcome, reason, now


def _stored_person(protector: DataProtector, attempt: BindingAttempt,
                   today: dt.date) -> _Person:
    number = protector.decrypt(attempt.document_number_enc or b"", DOCUMENT_CONTEXT)
    phone = protector.decrypt(attempt.phone_enc, PHONE_CONTEXT) if attempt.phone_enc else ""
    return _Person(attempt.name, check_document(attempt.document_type, number, today),
                   attempt.sex, phone, attempt.his_patient_id)


def _bind(session: Session, protector: DataProtector, account: WalletAccount,
          attempt: BindingAttempt, person: _Person, now: dt.datetime) -> None:
    patient = store_self(session, protector, account.id, person.name, person.facts,
                         person.sex, person.phone, now=now)
    if person.his_patient_id and not patient.his_patient_id:
        patient.his_patient_id = person.his_patient_id
    account.is_certified, account.bound_by, account.bound_at = True, attempt.method, now
    _finish(attempt, BindingOutcome.BOUND, "", now)
    logger.info("wallet account %s bound (%s), patient %s", account.id, attempt.method,
                patient.id)


# --- the code -------------------------------------------------------------------------------


def _code_value(attempt_id: int, code: str) -> str:
    return f"{attempt_id}:{code}"


def _new_code(protector: DataProtector, attempt: BindingAttempt, policy: BindingPolicy,
              now: dt.datetime) -> str:
    """A fresh code for the attempt; only its HMAC under the index key is kept (a 6-digit
    code's plain hash would be reversed by trying a million codes)."""
    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    attempt.code_hash = protector.blind_index(_code_value(attempt.id, code), CODE_KIND)
    attempt.code_sent_at, attempt.code_expires_at = now, now + policy.code_lifetime
    attempt.sends += 1
    return code


def _code_matches(protector: DataProtector, attempt: BindingAttempt, code: str) -> bool:
    typed = "".join(unicodedata.normalize("NFKC", code).split())
    if len(typed) != CODE_DIGITS or not typed.isdigit() or not attempt.code_hash:
        return False
    return any(hmac.compare_digest(candidate, attempt.code_hash)
               for candidate in protector.lookup_indexes(_code_value(attempt.id, typed),
                                                         CODE_KIND))


def _send(services: BindingServices, attempt_id: int, phone: str, code: str,
          now: dt.datetime) -> None:
    minutes = int(services.binding.code_lifetime.total_seconds() // 60)
    try:
        services.sms.send(phone, SMS_TEXT.format(code=code, minutes=minutes))
    except RegistryUnavailable:
        # The code never left: the attempt may send again at once.
        with services.session_factory.begin() as session:
            attempt = session.get(BindingAttempt, attempt_id)
            attempt.code_sent_at = None
        logger.warning("binding code for attempt %s not sent: SMS gateway unavailable",
                       attempt_id)
        raise
    logger.info("binding code sent for attempt %s", attempt_id)
