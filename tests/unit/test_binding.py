"""Real-name binding of an account its wallet did not certify (adapter/identity/binding.py):
the HIS match with its SMS code, the health card, and what a bound account may then do."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace

import pytest
from sqlalchemy import func, select
from stdnum.cn import ric

from adapter.identity.binding import (
    HEALTH_CARD,
    HIS_MATCH,
    BindingPolicy,
    BindingRequest,
    binding_status,
    confirm_binding,
    resend_code,
    start_binding,
)
from adapter.identity.dependants import Dependant
from adapter.identity.patients import add_dependant, list_patients, sign_in_with_wallet
from adapter.models import Patient, Verification, WalletAccount
from adapter.models_binding import BindingAttempt, BindingOutcome
from adapter.ports import HisUnavailable, PatientIdentity
from adapter.ports_identity import RegistryUnavailable
from adapter.refusals import Refusal
from adapter.registration.payment import pay_booking
from tests.fakes import FakeHealthCards, FakeSms
from tests.unit.conftest import TZ, Hospital, resident_id

NAME, PHONE = "张伟", "13800138001"
NUMBER = resident_id(40)
CHILD = "11010120200101123" + ric.calc_check_digit("110101202001011230")  # 10 in 2030


@pytest.fixture
def desk(runtime):
    """The runtime with the fake SMS gateway and health card registry, and the HIS knowing
    the person by document, name and phone."""
    runtime.sms, runtime.health_cards = FakeSms(), FakeHealthCards()
    runtime.binding = BindingPolicy(methods=(HIS_MATCH, HEALTH_CARD))
    runtime.his.patients[("RESIDENT_ID", NUMBER)] = PatientIdentity(
        NAME, "M", dt.date(1980, 1, 1), "RESIDENT_ID", NUMBER, PHONE, his_patient_id="H0040")
    return runtime


def _uncertified(runtime, n: int = 1, platform_user: str = "") -> int:
    """A wallet user the wallet shares no identity for (an openid only), signed in."""
    runtime.wallet.add_user(f"u{n}", user_id=platform_user or f"openid-{n}", is_certified=False)
    now = runtime.clock.now()
    with runtime.session_factory.begin() as session:
        return sign_in_with_wallet(session, runtime.wallet, runtime.protector, f"u{n}",
                                   now.astimezone(TZ).date(), now=now).account_id


def _today(runtime) -> dt.date:
    return runtime.clock.now().astimezone(TZ).date()


def _start(runtime, account_id: int, **fields):
    asked = {"method": HIS_MATCH, "name": NAME, "document_type": "RESIDENT_ID",
             "document_number": NUMBER, "phone": PHONE, **fields}
    return start_binding(runtime, account_id, BindingRequest(**asked), _today(runtime),
                         now=runtime.clock.now())


def _confirm(runtime, account_id: int, code: str):
    return confirm_binding(runtime, account_id, code, _today(runtime), now=runtime.clock.now())


def _refused(call, *args, **kwargs) -> str:
    with pytest.raises(Refusal) as caught:
        call(*args, **kwargs)
    return caught.value.code


def test_a_his_match_sends_a_code_to_the_his_phone_and_the_code_binds(desk):
    account_id = _uncertified(desk)
    started = _start(desk, account_id, phone="+86 138-0013-8001", name="张 伟")
    assert (started.certified, started.confirmation) == (False, "sms_code")
    assert started.phone_masked.startswith("138") and PHONE not in started.phone_masked
    assert [to for to, _ in desk.sms.sent] == [PHONE]  # the HIS's phone, not what was typed
    bound = _confirm(desk, account_id, desk.sms.last_code(PHONE))
    assert (bound.certified, bound.bound_by, bound.bound_at) == (True, HIS_MATCH,
                                                                 desk.clock.now())
    with desk.session_factory() as session:
        account = session.get(WalletAccount, account_id)
        (me,) = list_patients(session, account_id)
        assert account.is_certified and account.bound_by == HIS_MATCH
        assert (me.relation, me.verification, me.name) == ("self", Verification.SELF, NAME)
        assert me.his_patient_id == "H0040" and me.birth_date == dt.date(1980, 1, 1)
        assert NUMBER not in me.document_masked


def test_the_code_is_kept_only_as_a_keyed_hash(desk):
    account_id = _uncertified(desk)
    _start(desk, account_id)
    code = desk.sms.last_code(PHONE)
    with desk.session_factory() as session:
        attempt = session.scalar(select(BindingAttempt))
        assert code not in attempt.code_hash and len(attempt.code_hash) == 64
        assert NUMBER.encode() not in attempt.document_number_enc


@pytest.mark.parametrize(("fields", "code"), [
    ({"name": "张卫"}, "binding.name_mismatch"),
    ({"phone": "13800138002"}, "binding.phone_mismatch"),
    ({"document_number": resident_id(42)}, "binding.his_unknown"),
    ({"document_number": NUMBER[:-1] + ("0" if NUMBER[-1] != "0" else "1")},
     "document.checksum"),
    ({"phone": ""}, "binding.phone_empty"),
    ({"method": "passport_office"}, "binding.method_unknown"),
])
def test_a_his_match_is_refused_when_the_hospital_holds_otherwise(desk, fields, code):
    account_id = _uncertified(desk)
    assert _refused(_start, desk, account_id, **fields) == code
    assert desk.sms.sent == []
    with desk.session_factory() as session:
        assert not session.get(WalletAccount, account_id).is_certified


def test_a_his_record_without_a_phone_cannot_be_matched_by_sms(desk):
    desk.his.patients[("RESIDENT_ID", NUMBER)] = replace(
        desk.his.patients[("RESIDENT_ID", NUMBER)], phone="")
    assert _refused(_start, desk, _uncertified(desk)) == "binding.his_no_phone"


def test_a_wrong_code_counts_and_five_end_the_attempt(desk):
    account_id = _uncertified(desk)
    _start(desk, account_id)
    code = desk.sms.last_code(PHONE)
    wrong = "000000" if code != "000000" else "111111"
    for left in (4, 3, 2, 1):
        with pytest.raises(Refusal) as caught:
            _confirm(desk, account_id, wrong)
        assert (caught.value.code, caught.value.params) == ("binding.code_wrong", {"left": left})
    assert _refused(_confirm, desk, account_id, wrong) == "binding.too_many_tries"
    # The right code no longer helps: the attempt is over.
    assert _refused(_confirm, desk, account_id, code) == "binding.nothing_pending"


def test_an_expired_code_is_refused_and_a_new_one_binds(desk):
    account_id = _uncertified(desk)
    _start(desk, account_id)
    old = desk.sms.last_code(PHONE)
    desk.clock.advance(minutes=5)
    assert _refused(_confirm, desk, account_id, old) == "binding.code_expired"
    resend_code(desk, account_id, now=desk.clock.now())
    new = desk.sms.last_code(PHONE)
    if new != old:
        assert _refused(_confirm, desk, account_id, old) == "binding.code_wrong"
    assert _confirm(desk, account_id, new).certified


def test_a_new_code_waits_a_minute_and_at_most_five_are_sent(desk):
    account_id = _uncertified(desk)
    _start(desk, account_id)
    with pytest.raises(Refusal) as caught:
        resend_code(desk, account_id, now=desk.clock.now() + dt.timedelta(seconds=20))
    assert caught.value.code == "binding.resend_wait" and caught.value.params == {"seconds": 40}
    for _ in range(4):
        desk.clock.advance(seconds=60)
        resend_code(desk, account_id, now=desk.clock.now())
    desk.clock.advance(seconds=60)
    assert _refused(resend_code, desk, account_id, now=desk.clock.now()) == \
        "binding.too_many_sends"
    assert len(desk.sms.sent) == 5


def test_attempts_are_throttled_per_account_and_per_document(desk):
    account_id = _uncertified(desk)
    for _ in range(desk.binding.per_account):
        _refused(_start, desk, account_id, name="李四")
    assert _refused(_start, desk, account_id) == "binding.too_many"
    # Another account, the same document: the document's own limit (5) is spent already.
    assert _refused(_start, desk, _uncertified(desk, 2)) == "binding.too_many"
    desk.clock.advance(hours=24, seconds=1)
    assert _start(desk, account_id).confirmation == "sms_code"


def test_a_document_bound_to_another_account_of_the_wallet_is_refused(desk):
    first = _uncertified(desk)
    _start(desk, first)
    _confirm(desk, first, desk.sms.last_code(PHONE))
    second = _uncertified(desk, 2)
    assert _refused(_start, desk, second) == "binding.bound_elsewhere"
    # Staff disable the first (a lost phone): the person may bind their new account.
    with desk.session_factory.begin() as session:
        session.get(WalletAccount, first).disabled_at = desk.clock.now()
    _start(desk, second)
    assert _confirm(desk, second, desk.sms.last_code(PHONE)).certified


def test_a_wallet_certified_account_of_the_same_person_blocks_the_binding(desk):
    hospital = Hospital(desk)
    account_id, _ = hospital.patient(40)  # the wallet certified 测试40 with NUMBER
    assert _refused(_start, desk, _uncertified(desk)) == "binding.bound_elsewhere"
    with desk.session_factory() as session:
        assert session.get(WalletAccount, account_id).bound_by is None


def test_a_confirmed_his_phone_binds_without_a_code(desk):
    desk.binding = BindingPolicy(methods=(HIS_MATCH,), his_confirmed=True)
    account_id = _uncertified(desk)
    assert _start(desk, account_id).certified and desk.sms.sent == []


def test_a_health_card_binds_at_once(desk):
    desk.health_cards.add("HC1", name="孙丽", document_type="RESIDENT_ID",
                          document_number=resident_id(43), phone="13300000201", sex="F")
    account_id = _uncertified(desk)
    assert _refused(_start, desk, account_id, method=HEALTH_CARD, card="HC9") == \
        "binding.card_unknown"
    bound = _start(desk, account_id, method=HEALTH_CARD, card="HC1")
    assert (bound.certified, bound.bound_by) == (True, HEALTH_CARD)
    with desk.session_factory() as session:
        (me,) = list_patients(session, account_id)
        assert (me.name, me.verification) == ("孙丽", Verification.SELF)


def test_a_method_the_hospital_does_not_offer_is_refused(desk):
    desk.binding = BindingPolicy(methods=(HIS_MATCH,))
    assert _refused(_start, desk, _uncertified(desk), method=HEALTH_CARD, card="HC1") == \
        "binding.method_unknown"


def test_outages_are_not_refusals(desk):
    account_id = _uncertified(desk)
    desk.his.down = True
    with pytest.raises(HisUnavailable):
        _start(desk, account_id)
    desk.his.down, desk.sms.down = False, True
    with pytest.raises(RegistryUnavailable):
        _start(desk, account_id)
    desk.sms.down = False  # the code never left: a new one may be asked for at once
    resend_code(desk, account_id, now=desk.clock.now())
    assert _confirm(desk, account_id, desk.sms.last_code(PHONE)).certified


def test_a_bound_account_stays_bound_when_it_signs_in_again(desk):
    account_id = _uncertified(desk, platform_user="openid-7")
    _start(desk, account_id)
    _confirm(desk, account_id, desk.sms.last_code(PHONE))
    assert _uncertified(desk, 2, platform_user="openid-7") == account_id
    with desk.session_factory() as session:
        assert session.get(WalletAccount, account_id).is_certified
        assert binding_status(session, desk.binding, account_id, desk.clock.now()).bound_by \
            == HIS_MATCH
    assert _refused(_start, desk, account_id) == "binding.already_certified"


def test_a_bound_account_adds_a_child_by_the_same_rules(desk):
    account_id = _uncertified(desk)
    today = _today(desk)
    child = Dependant("张小宝", "RESIDENT_ID", CHILD, "child")
    with desk.session_factory.begin() as session, pytest.raises(Refusal) as caught:
        add_dependant(session, desk.protector, account_id, child, today, now=desk.clock.now())
    assert caught.value.code == "account.not_certified"
    _start(desk, account_id)
    _confirm(desk, account_id, desk.sms.last_code(PHONE))
    with desk.session_factory.begin() as session, pytest.raises(Refusal) as caught:
        add_dependant(session, desk.protector, account_id, child, today, now=desk.clock.now())
    assert caught.value.code == "child.consent_required"  # the same rule as anyone's
    with desk.session_factory.begin() as session:
        patient = add_dependant(session, desk.protector, account_id,
                                replace(child, guardian_consent=True), today,
                                now=desk.clock.now())
        assert patient.verification == Verification.UNVERIFIED


def test_an_uncertified_account_may_not_book_or_pay(desk):
    hospital = Hospital(desk)
    account_id = _uncertified(desk)
    slot = hospital.slot()
    with desk.session_factory.begin() as session:
        stranger = Patient(wallet_account_id=account_id, relation="other", name="x",
                           document_type="RESIDENT_ID", document_number_enc=b"x",
                           document_index="x", document_masked="x")
        session.add(stranger)
        session.flush()
        patient_id = stranger.id
    assert _refused(hospital.hold, account_id, patient_id, slot) == "account.not_certified"
    assert _refused(pay_booking, desk, account_id, "B1", desk.clock.now()) == \
        "account.not_certified"


def test_nothing_personal_is_logged(desk, caplog):
    caplog.set_level(logging.DEBUG)
    account_id = _uncertified(desk)
    _refused(_start, desk, account_id, name="张卫")
    _start(desk, account_id)
    code = desk.sms.last_code(PHONE)
    _confirm(desk, account_id, code)
    for secret in (NAME, "张卫", NUMBER, PHONE, code):
        assert secret not in caplog.text
    with desk.session_factory() as session:
        outcomes = dict(session.execute(select(BindingAttempt.outcome, func.count())
                                        .group_by(BindingAttempt.outcome)).all())
    assert outcomes == {BindingOutcome.REFUSED: 1, BindingOutcome.BOUND: 1}
