"""Payments' use cases called directly: a payment notice, a trade found paid on a query, and a
refund asked for once and retried with the same out_request_no until the wallet has done it."""

from __future__ import annotations

import datetime as dt

import pytest

from adapter.models import BookingStatus, TradeStatus
from adapter.payments.notices import NoticeRefused
from adapter.payments.refunds import refund_in_full
from adapter.payments.trades import trade_found_paid
from adapter.ports import TradeState
from tests.unit.conftest import FEE, START


@pytest.fixture
def unpaid(hospital):
    """A held booking whose trade the wallet has created: (account id, public id, trade)."""
    account_id, patient_id = hospital.patient()
    hospital.deliver()  # the new patient is known to the HIS: the outbox is empty
    public_id = hospital.hold(account_id, patient_id, hospital.slot())
    started = hospital.pay(account_id, public_id)
    assert started.total_fen == FEE and started.trade_no == "T00000001"
    return account_id, public_id, started.out_trade_no


def paid_without_a_purpose(hospital, out_trade_no: str) -> None:
    """The trade found paid, with no purpose's handler to run (a refund alone is tested)."""
    hospital.wallet.pay(out_trade_no)
    with hospital.runtime.session_factory.begin() as session:
        trade_found_paid(session, out_trade_no, "T00000001", hospital.clock.now(), on_paid={})


def queue_refund(hospital, out_trade_no: str) -> None:
    with hospital.runtime.session_factory.begin() as session:
        refund_in_full(session, out_trade_no, "test", hospital.clock.now())


# --- payment notices --------------------------------------------------------------------------

def test_a_payment_notice_marks_the_trade_paid_and_hands_it_to_its_purpose(hospital, unpaid):
    _, public_id, out_trade_no = unpaid
    hospital.wallet.pay(out_trade_no)
    hospital.clock.advance(minutes=3)
    assert hospital.notify(out_trade_no) == "applied"
    trade = hospital.trade(out_trade_no)
    assert (trade.status, trade.trade_no, trade.paid_at) == (
        TradeStatus.PAID, "T00000001", START + dt.timedelta(minutes=3))
    assert not trade.paid_after_close
    assert hospital.booking(public_id).status == BookingStatus.CONFIRMING
    assert len(hospital.outbox("his_book")) == 1


def test_a_duplicate_notice_is_answered_as_success_and_changes_nothing(hospital, unpaid):
    _, public_id, out_trade_no = unpaid
    hospital.wallet.pay(out_trade_no)
    paid_at = hospital.clock.now()
    assert hospital.notify(out_trade_no) == "applied"
    hospital.clock.advance(minutes=1)
    assert hospital.notify(out_trade_no) == "duplicate"  # the wallet's retry
    assert hospital.notify(out_trade_no, notice_id="another") == "duplicate"
    assert hospital.trade(out_trade_no).paid_at == paid_at
    assert len(hospital.outbox("his_book")) == 1  # the paid handler ran once


def test_a_paid_time_given_by_the_wallet_is_kept(hospital, unpaid):
    _, _, out_trade_no = unpaid
    at_the_wallet = START + dt.timedelta(seconds=40)
    hospital.clock.advance(minutes=2)
    assert hospital.notify(out_trade_no, paid_at=at_the_wallet) == "applied"
    assert hospital.trade(out_trade_no).paid_at == at_the_wallet


@pytest.mark.parametrize(("changes", "reason"), [
    ({"app_id": "OTHER"}, "app_id is not ours"),
    ({"merchant_id": "OTHER"}, "seller_id is not ours"),
    ({"total_fen": FEE - 1}, "total_amount differs from the order"),
    ({"trade_no": "T99999999"}, "trade_no differs from the order"),
    ({"platform": "other"}, "platform differs from the order"),
])
def test_a_notice_that_does_not_match_the_order_is_refused(hospital, unpaid, changes, reason):
    _, public_id, out_trade_no = unpaid
    with pytest.raises(NoticeRefused) as info:
        hospital.notify(out_trade_no, **changes)
    assert info.value.reason == reason
    assert hospital.trade(out_trade_no).status == TradeStatus.CREATED
    assert hospital.booking(public_id).status == BookingStatus.PENDING_PAYMENT
    assert hospital.outbox("his_book") == []


def test_a_notice_of_an_unknown_order_is_refused(hospital, unpaid):
    with pytest.raises(NoticeRefused, match="unknown out_trade_no"):
        hospital.notify("R-NOT-OURS")


def test_a_notice_of_an_unpaid_trade_is_ignored(hospital, unpaid):
    _, public_id, out_trade_no = unpaid
    assert hospital.notify(out_trade_no, state=TradeState.CREATED) == "ignored"
    assert hospital.notify(out_trade_no, state=TradeState.CLOSED) == "ignored"
    assert hospital.trade(out_trade_no).status == TradeStatus.CREATED
    assert hospital.booking(public_id).status == BookingStatus.PENDING_PAYMENT


def test_a_notice_after_the_patient_cancelled_is_refunded(hospital, unpaid):
    account_id, public_id, out_trade_no = unpaid
    hospital.cancel(account_id, public_id)  # the trade is closed here and at the wallet
    hospital.wallet.pay(out_trade_no)  # a payment that slipped past the close
    assert hospital.notify(out_trade_no) == "applied"
    trade = hospital.trade(out_trade_no)
    assert trade.status == TradeStatus.PAID and trade.paid_after_close
    assert hospital.booking(public_id).status == BookingStatus.CANCELLED
    hospital.deliver()
    assert hospital.wallet.refunded_fen(out_trade_no) == FEE
    assert hospital.trade(out_trade_no).status == TradeStatus.REFUNDED


# --- a trade found paid -----------------------------------------------------------------------

def test_a_trade_found_paid_on_a_query_is_as_good_as_its_notice(hospital, unpaid):
    _, public_id, out_trade_no = unpaid
    with hospital.runtime.session_factory.begin() as session:
        trade_found_paid(session, out_trade_no, "T00000001", hospital.clock.now(),
                         hospital.runtime.paid_handlers)
    trade = hospital.trade(out_trade_no)
    assert (trade.status, trade.trade_no, trade.paid_at) == (
        TradeStatus.PAID, "T00000001", START)
    assert hospital.booking(public_id).status == BookingStatus.CONFIRMING
    # found again (another query), then its notice: the purpose hears of it once
    with hospital.runtime.session_factory.begin() as session:
        trade_found_paid(session, out_trade_no, "T00000001", hospital.clock.now(),
                         hospital.runtime.paid_handlers)
    assert hospital.notify(out_trade_no) == "duplicate"
    assert len(hospital.outbox("his_book")) == 1


def test_a_settled_trade_found_paid_again_is_left_as_it_is(hospital, unpaid):
    _, _, out_trade_no = unpaid
    paid_without_a_purpose(hospital, out_trade_no)
    queue_refund(hospital, out_trade_no)
    hospital.deliver()
    assert hospital.trade(out_trade_no).status == TradeStatus.REFUNDED
    with hospital.runtime.session_factory.begin() as session:
        trade_found_paid(session, out_trade_no, "T00000001", hospital.clock.now(),
                         hospital.runtime.paid_handlers)
    assert hospital.trade(out_trade_no).status == TradeStatus.REFUNDED
    assert hospital.outbox("his_book") == []


# --- refunds ----------------------------------------------------------------------------------

def test_a_refund_is_queued_once_and_paid_back_through_the_wallet(hospital, unpaid):
    _, _, out_trade_no = unpaid
    paid_without_a_purpose(hospital, out_trade_no)
    queue_refund(hospital, out_trade_no)
    queue_refund(hospital, out_trade_no)  # asked twice (two compensations): one refund
    [refund] = hospital.refunds()
    assert (refund.out_request_no, refund.refund_fen, refund.status) == (
        f"{out_trade_no}-R1", FEE, "requested")
    [message] = hospital.outbox("refund")
    assert (message.subject_type, message.subject_id) == ("refund", refund.out_request_no)
    hospital.deliver()
    assert hospital.wallet.refund_requests == [refund.out_request_no]
    assert hospital.wallet.refunded_fen(out_trade_no) == FEE
    [refund] = hospital.refunds()
    assert (refund.status, refund.done_at) == ("done", START)
    trade = hospital.trade(out_trade_no)
    assert (trade.status, trade.refunded_fen) == (TradeStatus.REFUNDED, FEE)
    assert [m.status for m in hospital.outbox("refund")] == ["done"]


def test_an_unpaid_trade_is_not_refunded(hospital, unpaid):
    _, _, out_trade_no = unpaid
    queue_refund(hospital, out_trade_no)
    queue_refund(hospital, None)
    assert hospital.refunds() == [] and hospital.outbox("refund") == []


def test_a_refund_is_retried_with_the_same_out_request_no_while_the_wallet_is_down(
        hospital, unpaid):
    _, _, out_trade_no = unpaid
    paid_without_a_purpose(hospital, out_trade_no)
    queue_refund(hospital, out_trade_no)
    hospital.wallet.down = True
    assert hospital.deliver() == 0
    [message] = hospital.outbox("refund")
    assert (message.status, message.attempts, message.last_error) == (
        "pending", 1, "WalletUnavailable")
    assert message.next_attempt_at == START + dt.timedelta(seconds=2)
    assert hospital.refunds()[0].status == "requested"
    hospital.wallet.down = False
    assert hospital.deliver() == 0  # not due yet
    hospital.clock.advance(seconds=2)
    assert hospital.deliver() == 1
    out_request_no = f"{out_trade_no}-R1"
    assert hospital.wallet.refund_requests == [out_request_no, out_request_no]
    assert hospital.wallet.refunded_fen(out_trade_no) == FEE
    assert hospital.refunds()[0].status == "done"


def test_a_refund_accepted_but_not_yet_done_is_asked_again(hospital, unpaid):
    _, _, out_trade_no = unpaid
    paid_without_a_purpose(hospital, out_trade_no)
    queue_refund(hospital, out_trade_no)
    hospital.wallet.refunds_pending = True
    hospital.deliver()
    assert hospital.refunds()[0].status == "requested"
    assert hospital.trade(out_trade_no).refunded_fen == 0
    hospital.wallet.refunds_pending = False
    hospital.clock.advance(seconds=2)
    hospital.deliver()
    assert hospital.refunds()[0].status == "done"
    assert len(hospital.wallet.refund_requests) == 2
    assert len(set(hospital.wallet.refund_requests)) == 1
    assert hospital.trade(out_trade_no).refunded_fen == FEE
