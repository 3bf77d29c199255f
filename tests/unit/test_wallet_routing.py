"""Two wallets in one adapter: every use case takes the trade's or the account's platform, never
the default. The second fake plays WeChat Pay's shape: it names its trade only once paid."""

from __future__ import annotations

import pytest

from adapter.identity.patients import sign_in_with_wallet
from adapter.models import TradeStatus
from adapter.payments.notices import apply_payment_notification
from adapter.ports import PaymentNotice, TradeState
from tests.fakes import FakeWallet
from tests.unit.conftest import TZ, resident_id


@pytest.fixture
def second(hospital) -> FakeWallet:
    """A second wallet beside the default one (the default stays first)."""
    wallet = FakeWallet("second", trade_no_at_creation=False)
    wallet.app_id, wallet.merchant_id = "APP2", "MCH2"
    hospital.runtime.wallets = {**hospital.runtime.wallets, wallet.platform: wallet}
    return wallet


def _sign_in(hospital, wallet: FakeWallet, n: int) -> tuple[int, int]:
    wallet.add_user(f"wx{n}", user_id=f"o{n:027d}", is_certified=True, name=f"微信{n}",
                    document_type="RESIDENT_ID", document_number=resident_id(n), sex="M")
    now = hospital.clock.now()
    with hospital.runtime.session_factory.begin() as session:
        signed = sign_in_with_wallet(session, wallet, hospital.runtime.protector, f"wx{n}",
                                     now.astimezone(TZ).date(), now=now)
    return signed.account_id, signed.self_patient_id


def _notice(hospital, wallet: FakeWallet, out_trade_no: str, trade_no: str) -> str:
    trade = hospital.trade(out_trade_no)
    with hospital.runtime.session_factory.begin() as session:
        return apply_payment_notification(
            session, PaymentNotice(wallet.platform, f"n-{out_trade_no}", wallet.app_id,
                                   wallet.merchant_id, out_trade_no, trade_no, TradeState.PAID,
                                   trade.total_fen),
            app_id=wallet.app_id, merchant_id=wallet.merchant_id,
            on_paid=hospital.runtime.paid_handlers, now=hospital.clock.now())


def test_the_default_wallet_is_the_first_and_the_second_is_found_by_name(hospital, second):
    assert hospital.runtime.wallet is hospital.wallet
    assert hospital.runtime.wallet_for("second") is second


def test_an_account_of_the_second_wallet_pays_refunds_and_hears_through_it(hospital, second):
    account_id, patient_id = _sign_in(hospital, second, 5)
    hospital.deliver()
    public_id = hospital.hold(account_id, patient_id, hospital.slot())
    started = hospital.pay(account_id, public_id)
    # created at the account's wallet, not the default: a reference to pay with, no trade_no yet
    assert (started.platform, started.trade_no) == ("second", "")
    assert started.pay_reference == "prepay-T00000001"
    assert list(second.trades) == [started.out_trade_no] and hospital.wallet.trades == {}
    trade = hospital.trade(started.out_trade_no)
    assert (trade.platform, trade.pay_reference, trade.trade_no) == (
        "second", "prepay-T00000001", None)
    # paying again hands out the same reference without a second order
    assert hospital.pay(account_id, public_id).pay_reference == "prepay-T00000001"

    second.pay(started.out_trade_no)
    assert _notice(hospital, second, started.out_trade_no, "4200000001") == "applied"
    assert hospital.trade(started.out_trade_no).trade_no == "4200000001"  # learnt when paid
    hospital.deliver()
    assert hospital.booking(public_id).status == "confirmed"
    hospital.clock.advance(minutes=1)
    hospital.cancel(account_id, public_id)
    for _ in range(3):
        hospital.deliver()
        hospital.clock.advance(minutes=1)
    assert second.refunded_fen(started.out_trade_no) == started.total_fen
    assert hospital.trade(started.out_trade_no).status == TradeStatus.REFUNDED
    # every push about it went through the account's own wallet
    assert second.messages and hospital.wallet.messages == []
    assert {user for user, _ in second.messages} == {f"o{5:027d}"}


def test_a_notice_of_one_wallet_cannot_pay_the_other_wallets_trade(hospital, second):
    account_id, patient_id = _sign_in(hospital, second, 6)
    public_id = hospital.hold(account_id, patient_id, hospital.slot())
    out_trade_no = hospital.pay(account_id, public_id).out_trade_no
    from adapter.payments.notices import NoticeRefused

    with pytest.raises(NoticeRefused, match="platform differs"):
        _notice(hospital, FakeWallet(), out_trade_no, "T1")


def test_the_default_wallets_trade_no_is_kept_at_creation_and_checked(hospital, second):
    account_id, patient_id = hospital.patient(7)
    public_id = hospital.hold(account_id, patient_id, hospital.slot())
    started = hospital.pay(account_id, public_id)
    assert (started.platform, started.trade_no, started.pay_reference) == (
        "fake", "T00000001", "T00000001")
    assert second.trades == {}
    from adapter.payments.notices import NoticeRefused

    with pytest.raises(NoticeRefused, match="trade_no differs"):
        hospital.notify(started.out_trade_no, trade_no="T00000009")
