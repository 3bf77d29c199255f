"""Registration's use cases called directly, with the fake HIS and wallet and a FakeClock:
hold, cancel, confirm, reject, expire, and the hospital stopping a clinic."""

from __future__ import annotations

import datetime as dt

import pytest

from adapter.models import BookingStatus, TradeStatus, WalletAccount
from adapter.payments.trades import open_trade, trade_found_paid
from adapter.ports import (
    AppointmentMissed,
    SlotWithdrawn,
    TradeState,
    WalletUnavailable,
    WalletUnreachable,
)
from adapter.refusals import Refusal
from adapter.registration.jobs import expire_holds, release_cancelled_slots
from adapter.registration.payment import PURPOSE
from tests.unit.conftest import DOCTOR, FEE, RELEASE_DELAY, START, TZ, VISIT


def refused(code: str, step, *args) -> Refusal:
    with pytest.raises(Refusal) as info:
        step(*args)
    assert info.value.code == code, (info.value.code, info.value.params)
    return info.value


# --- holding a slot ---------------------------------------------------------------------------

def test_a_hold_takes_one_place_until_the_payment_deadline(hospital):
    account_id, patient_id = hospital.patient()
    slot_id = hospital.slot(capacity=2)
    public_id = hospital.hold(account_id, patient_id, slot_id)
    booking = hospital.booking(public_id)
    assert booking.status == BookingStatus.PENDING_PAYMENT and booking.slot_held
    assert booking.hold_expires_at == START + dt.timedelta(minutes=15)
    assert booking.fee_fen == FEE and booking.visit_date == VISIT.astimezone(TZ).date()
    assert hospital.booked(slot_id) == 1


def test_the_last_place_goes_once_and_the_next_patient_is_told_it_is_full(hospital):
    slot_id = hospital.slot(capacity=1)
    first = hospital.patient(1)
    second = hospital.patient(2)
    hospital.hold(*first, slot_id)
    refused("slot.full", hospital.hold, *second, slot_id)
    assert hospital.booked(slot_id) == 1


def test_one_booking_per_doctor_per_day(hospital):
    account_id, patient_id = hospital.patient()
    first, second = hospital.slot(), hospital.slot()  # the same doctor, the same morning
    hospital.hold(account_id, patient_id, first)
    refusal = refused("booking.per_doctor", hospital.hold, account_id, patient_id, second)
    assert refusal.params["limit"] == 1
    assert hospital.booked(second) == 0


def test_a_slot_is_not_held_before_its_release_time(hospital):
    account_id, patient_id = hospital.patient()
    # PED releases seven days ahead at 07:30: a visit in eight days is not open yet
    slot_id = hospital.slot(start=VISIT + dt.timedelta(days=5))
    refused("slot.not_released", hospital.hold, account_id, patient_id, slot_id)
    hospital.clock.set(dt.datetime(2030, 3, 5, 7, 30, tzinfo=TZ))
    hospital.hold(account_id, patient_id, slot_id)
    assert hospital.booked(slot_id) == 1


def test_someone_elses_patient_cannot_be_booked(hospital):
    account_a, _ = hospital.patient(1)
    _, patient_b = hospital.patient(2)
    refused("patient.unknown", hospital.hold, account_a, patient_b, hospital.slot())


# --- cancelling -------------------------------------------------------------------------------

def test_cancelling_an_unpaid_hold_closes_the_trade_and_frees_the_place_after_a_delay(hospital):
    account_id, patient_id = hospital.patient()
    slot_id = hospital.slot()
    public_id = hospital.hold(account_id, patient_id, slot_id)
    out_trade_no = hospital.pay(account_id, public_id).out_trade_no
    hospital.cancel(account_id, public_id)
    booking = hospital.booking(public_id)
    assert (booking.status, booking.status_reason) == (BookingStatus.CANCELLED, "patient")
    assert hospital.wallet.trades[out_trade_no]["state"] is TradeState.CLOSED
    assert hospital.trade(out_trade_no).status == TradeStatus.CLOSED
    # the place returns after a delay, so a bot watching the pool cannot pounce on it
    assert hospital.booked(slot_id) == 1
    hospital.clock.advance(seconds=RELEASE_DELAY - 1)
    assert release_cancelled_slots(hospital.runtime) == 0
    hospital.clock.advance(seconds=1)
    assert release_cancelled_slots(hospital.runtime) == 1
    assert hospital.booked(slot_id) == 0 and not hospital.booking(public_id).slot_held
    assert hospital.refunds() == [] and hospital.outbox("close_trade") == []


def test_cancelling_a_hold_paid_meanwhile_is_refused_and_the_payment_applied(hospital):
    account_id, patient_id = hospital.patient()
    public_id = hospital.hold(account_id, patient_id, hospital.slot())
    out_trade_no = hospital.pay(account_id, public_id).out_trade_no
    hospital.wallet.pay(out_trade_no)  # paid; its notice is still on the way
    refused("booking.confirming", hospital.cancel, account_id, public_id)
    assert hospital.booking(public_id).status == BookingStatus.CONFIRMING
    assert hospital.trade(out_trade_no).status == TradeStatus.PAID
    assert len(hospital.outbox("his_book")) == 1


def test_cancelling_a_confirmed_booking_asks_the_his_first_then_refunds(hospital):
    account_id, public_id, out_trade_no = hospital.confirmed()
    hospital.cancel(account_id, public_id)
    assert hospital.booking(public_id).status == BookingStatus.CANCELLING
    [his_cancel] = hospital.outbox("his_cancel")
    assert his_cancel.subject_id == str(hospital.booking(public_id).id)
    assert '"filler_appointment_id": "F1"' in his_cancel.payload
    assert hospital.refunds() == []  # no money back before the HIS agrees
    hospital.deliver()
    assert hospital.his.cancelled == [public_id]
    assert hospital.booking(public_id).status == BookingStatus.CANCELLED
    [refund] = hospital.refunds()
    assert (refund.status, refund.refund_fen) == ("done", FEE)
    assert hospital.wallet.refunded_fen(out_trade_no) == FEE
    assert hospital.trade(out_trade_no).status == TradeStatus.REFUNDED
    assert "您已取消" in hospital.told()[-1]


def test_the_his_refusing_a_cancellation_keeps_the_booking_and_the_money(hospital):
    account_id, public_id, out_trade_no = hospital.confirmed()
    hospital.his.refuse_cancel_with = "ALREADY_ARRIVED"
    hospital.cancel(account_id, public_id)
    hospital.deliver()
    booking = hospital.booking(public_id)
    assert (booking.status, booking.status_reason) == (BookingStatus.CONFIRMED, "cancel_refused")
    assert hospital.refunds() == [] and hospital.wallet.refunded_fen(out_trade_no) == 0
    assert "未能取消" in hospital.told()[-1]


def test_cancelling_after_the_deadline_is_refused(hospital):
    account_id, public_id, _ = hospital.confirmed()
    hospital.clock.set(dt.datetime(2030, 3, 6, 15, 0, 1, tzinfo=TZ))  # 15:00 the day before
    refusal = refused("cancel.deadline_passed", hospital.cancel, account_id, public_id)
    assert refusal.params["deadline"] == "03-06 15:00"
    assert hospital.booking(public_id).status == BookingStatus.CONFIRMED
    assert hospital.outbox("his_cancel") == []


# --- confirmed or rejected by the HIS ---------------------------------------------------------

def test_a_paid_booking_is_booked_in_the_his_and_keeps_its_filler_id(hospital):
    account_id, patient_id = hospital.patient()
    public_id = hospital.hold(account_id, patient_id, hospital.slot())
    hospital.paid(account_id, public_id)
    assert hospital.booking(public_id).status == BookingStatus.CONFIRMING
    [his_book] = hospital.outbox("his_book")
    assert his_book.status == "pending" and his_book.next_attempt_at == START
    hospital.deliver()
    [request] = hospital.his.booked
    assert request.placer_appointment_id == public_id
    assert request.his_patient_id == "P000001"  # found or added when the patient signed in
    assert request.doctor_code == DOCTOR.code and request.start_at == VISIT
    booking = hospital.booking(public_id)
    assert (booking.status, booking.filler_appointment_id) == (BookingStatus.CONFIRMED, "F1")
    [his_book] = hospital.outbox("his_book")
    assert (his_book.status, his_book.attempts, his_book.done_at) == ("done", 1, START)
    assert "成功预约" in hospital.told()[-1]


def test_a_booking_the_his_refuses_is_rejected_refunded_and_its_place_freed(hospital):
    account_id, patient_id = hospital.patient()
    slot_id = hospital.slot()
    public_id = hospital.hold(account_id, patient_id, slot_id)
    out_trade_no = hospital.paid(account_id, public_id)
    hospital.his.refuse_with = "SLOT_TAKEN"
    hospital.deliver()
    booking = hospital.booking(public_id)
    assert (booking.status, booking.status_reason) == (BookingStatus.REJECTED, "SLOT_TAKEN")
    assert hospital.booked(slot_id) == 0 and not booking.slot_held
    [refund] = hospital.refunds()
    assert (refund.out_trade_no, refund.refund_fen, refund.status) == (out_trade_no, FEE, "done")
    assert hospital.wallet.refunded_fen(out_trade_no) == FEE
    assert "号源已被占用" in hospital.told()[-1]


# --- unpaid holds expiring --------------------------------------------------------------------

def test_an_unpaid_hold_expires_at_its_deadline_closing_the_trade(hospital):
    account_id, patient_id = hospital.patient()
    slot_id = hospital.slot()
    public_id = hospital.hold(account_id, patient_id, slot_id)
    out_trade_no = hospital.pay(account_id, public_id).out_trade_no
    hospital.clock.advance(minutes=15, seconds=-1)
    assert expire_holds(hospital.runtime) == 0
    hospital.clock.advance(seconds=1)
    assert expire_holds(hospital.runtime) == 1
    assert hospital.booking(public_id).status == BookingStatus.EXPIRED
    assert hospital.wallet.trades[out_trade_no]["state"] is TradeState.CLOSED
    assert hospital.trade(out_trade_no).status == TradeStatus.CLOSED
    assert hospital.booked(slot_id) == 0  # at once: nobody cancelled it, it ran out


def test_a_hold_found_paid_at_expiry_is_confirmed_instead(hospital):
    account_id, patient_id = hospital.patient()
    slot_id = hospital.slot()
    public_id = hospital.hold(account_id, patient_id, slot_id)
    out_trade_no = hospital.pay(account_id, public_id).out_trade_no
    hospital.wallet.pay(out_trade_no)  # paid at the last moment, the notice not yet here
    hospital.clock.advance(minutes=15)
    assert expire_holds(hospital.runtime) == 0
    assert hospital.booking(public_id).status == BookingStatus.CONFIRMING
    trade = hospital.trade(out_trade_no)
    assert (trade.status, trade.paid_at) == (TradeStatus.PAID, hospital.clock.now())
    assert hospital.booked(slot_id) == 1
    assert hospital.notify(out_trade_no) == "duplicate"  # the notice arriving later
    hospital.deliver()
    assert hospital.booking(public_id).status == BookingStatus.CONFIRMED
    assert len(hospital.his.booked) == 1


def test_a_hold_is_kept_while_the_wallet_cannot_say_whether_it_was_paid(hospital):
    account_id, patient_id = hospital.patient()
    slot_id = hospital.slot()
    public_id = hospital.hold(account_id, patient_id, slot_id)
    hospital.pay(account_id, public_id)
    hospital.clock.advance(minutes=16)
    hospital.wallet.down = True
    assert expire_holds(hospital.runtime) == 0
    assert hospital.booking(public_id).status == BookingStatus.PENDING_PAYMENT
    assert hospital.booked(slot_id) == 1
    hospital.wallet.down = False
    assert expire_holds(hospital.runtime) == 1


def _held(hospital) -> tuple[int, str, int]:
    account_id, patient_id = hospital.patient()
    slot_id = hospital.slot()
    return account_id, hospital.hold(account_id, patient_id, slot_id), slot_id


def test_a_hold_whose_trade_never_reached_the_wallet_expires_on_time_without_it(hospital):
    account_id, public_id, slot_id = _held(hospital)
    hospital.wallet.unreachable = True  # no connection: the creation never left
    with pytest.raises(WalletUnreachable):
        hospital.pay(account_id, public_id)
    out_trade_no = hospital.booking(public_id).out_trade_no
    assert hospital.trade(out_trade_no).status == TradeStatus.UNSENT
    hospital.wallet.down = True  # the wallet stays out for the whole hold
    hospital.clock.advance(minutes=15)
    assert expire_holds(hospital.runtime) == 1
    assert hospital.booking(public_id).status == BookingStatus.EXPIRED
    assert hospital.trade(out_trade_no).status == TradeStatus.CLOSED
    assert hospital.booked(slot_id) == 0
    assert out_trade_no not in hospital.wallet.trades


def test_a_hold_whose_trade_the_wallet_refused_expires_without_it(hospital):
    account_id, public_id, slot_id = _held(hospital)
    hospital.wallet.refuse_create = True
    with pytest.raises(Refusal) as refused:
        hospital.pay(account_id, public_id)
    assert refused.value.code == "booking.not_payable"
    hospital.wallet.down = True
    hospital.clock.advance(minutes=15)
    assert expire_holds(hospital.runtime) == 1
    assert hospital.booked(slot_id) == 0


def test_after_an_unknown_creation_the_trade_is_closed_at_the_wallet_first(hospital):
    account_id, public_id, slot_id = _held(hospital)
    hospital.wallet.down = True  # the first creation's outcome is unknown
    with pytest.raises(WalletUnavailable):
        hospital.pay(account_id, public_id)
    hospital.wallet.down, hospital.wallet.unreachable = False, True
    with pytest.raises(WalletUnreachable):  # the retry never left, the first may have landed
        hospital.pay(account_id, public_id)
    out_trade_no = hospital.booking(public_id).out_trade_no
    assert hospital.trade(out_trade_no).status == TradeStatus.CREATED
    hospital.clock.advance(minutes=15)
    assert expire_holds(hospital.runtime) == 0  # kept: it may have been paid
    assert hospital.booked(slot_id) == 1
    hospital.wallet.unreachable = False
    assert expire_holds(hospital.runtime) == 1


def test_a_retry_that_reaches_the_wallet_makes_the_trade_real_again(hospital):
    account_id, public_id, _slot_id = _held(hospital)
    hospital.wallet.unreachable = True
    with pytest.raises(WalletUnreachable):
        hospital.pay(account_id, public_id)
    hospital.wallet.unreachable = False
    started = hospital.pay(account_id, public_id)
    assert hospital.trade(started.out_trade_no).status == TradeStatus.CREATED
    hospital.wallet.down = True
    hospital.clock.advance(minutes=15)
    assert expire_holds(hospital.runtime) == 0  # it exists at the wallet: closed there first


def test_an_unsent_hold_is_cancelled_while_the_wallet_is_down(hospital):
    account_id, public_id, _slot_id = _held(hospital)
    hospital.wallet.unreachable = True
    with pytest.raises(WalletUnreachable):
        hospital.pay(account_id, public_id)
    hospital.cancel(account_id, public_id)
    assert hospital.booking(public_id).status == BookingStatus.CANCELLED
    assert hospital.trade(hospital.booking(public_id).out_trade_no).status == TradeStatus.CLOSED
    assert hospital.outbox("close_trade") == []


def test_a_payment_after_expiry_is_refunded_once_the_place_is_taken(hospital):
    late = hospital.patient(1)
    slot_id = hospital.slot()
    public_id = hospital.hold(*late, slot_id)
    out_trade_no = hospital.pay(late[0], public_id).out_trade_no
    hospital.clock.advance(minutes=15)
    assert expire_holds(hospital.runtime) == 1
    hospital.hold(*hospital.patient(2), slot_id)
    hospital.wallet.pay(out_trade_no)  # the wallet took the money all the same
    assert hospital.notify(out_trade_no) == "applied"
    booking = hospital.booking(public_id)
    assert (booking.status, booking.status_reason) == (BookingStatus.CANCELLED, "late_payment")
    assert hospital.trade(out_trade_no).paid_after_close
    hospital.deliver()
    assert hospital.wallet.refunded_fen(out_trade_no) == FEE
    assert hospital.booked(slot_id) == 1  # the other patient's
    assert "晚于预约保留时间" in hospital.told(1)[-1]


def test_a_payment_after_expiry_takes_the_place_again_while_one_is_left(hospital):
    account_id, patient_id = hospital.patient()
    slot_id = hospital.slot()
    public_id = hospital.hold(account_id, patient_id, slot_id)
    out_trade_no = hospital.pay(account_id, public_id).out_trade_no
    hospital.clock.advance(minutes=15)
    assert expire_holds(hospital.runtime) == 1
    hospital.wallet.pay(out_trade_no)
    assert hospital.notify(out_trade_no) == "applied"
    assert hospital.booking(public_id).status == BookingStatus.CONFIRMING
    assert hospital.booked(slot_id) == 1
    hospital.deliver()
    assert hospital.booking(public_id).status == BookingStatus.CONFIRMED
    assert hospital.refunds() == []


# --- the hospital's events --------------------------------------------------------------------

def test_a_stopped_clinic_cancels_refunds_and_tells_each_patient(hospital):
    slot_id = hospital.slot(capacity=2)
    _, paid_booking, paid_trade = hospital.confirmed(1, slot_id)
    account_2, patient_2 = hospital.patient(2)
    held_booking = hospital.hold(account_2, patient_2, slot_id)
    unpaid_trade = hospital.pay(account_2, held_booking).out_trade_no
    assert hospital.booked(slot_id) == 2
    hospital.hear(SlotWithdrawn("S1"))
    for public_id in (paid_booking, held_booking):
        booking = hospital.booking(public_id)
        assert (booking.status, booking.status_reason) == (BookingStatus.CANCELLED, "hospital")
    assert hospital.booked(slot_id) == 0
    [refund] = hospital.refunds()
    assert refund.out_trade_no == paid_trade
    assert [m.subject_id for m in hospital.outbox("close_trade")] == [unpaid_trade]
    hospital.deliver()
    assert hospital.wallet.refunded_fen(paid_trade) == FEE
    assert hospital.wallet.trades[unpaid_trade]["state"] is TradeState.CLOSED
    assert hospital.trade(unpaid_trade).status == TradeStatus.CLOSED
    assert "因医院停诊" in hospital.told(1)[-1] and "因医院停诊" in hospital.told(2)[-1]
    assert hospital.his.cancelled == []  # the HIS cancelled them itself


def test_a_stopped_clinic_while_the_his_is_booking_it_is_cancelled_there_too(hospital):
    account_id, patient_id = hospital.patient()
    hospital.deliver()  # the new patient is known to the HIS
    slot_id = hospital.slot()
    public_id = hospital.hold(account_id, patient_id, slot_id)
    out_trade_no = hospital.paid(account_id, public_id)
    hospital.hear(SlotWithdrawn("S1"))  # before the worker reached the HIS
    hospital.deliver()
    assert hospital.booking(public_id).status == BookingStatus.CANCELLED
    assert hospital.his.booked == []  # nothing left to book
    assert hospital.wallet.refunded_fen(out_trade_no) == FEE


def test_a_withdrawal_of_an_unknown_slot_changes_nothing(hospital):
    _, public_id, _ = hospital.confirmed()
    hospital.hear(SlotWithdrawn("NOT-OURS"))
    assert hospital.booking(public_id).status == BookingStatus.CONFIRMED
    assert hospital.refunds() == []


def test_a_missed_appointment_counts_as_a_no_show(hospital):
    _, public_id, _ = hospital.confirmed()
    hospital.hear(AppointmentMissed("F1"))
    assert hospital.booking(public_id).status == BookingStatus.NO_SHOW
    hospital.hear(AppointmentMissed("MADE-AT-THE-WINDOW"))  # not ours: ignored


def test_a_paid_registration_trade_without_its_booking_is_refunded(hospital):
    account_id, _ = hospital.patient()
    with hospital.runtime.session_factory.begin() as session:
        open_trade(session, out_trade_no="R-ORPHAN", purpose=PURPOSE, reference="B-GONE",
                   subject="挂号费", total_fen=FEE, account=session.get(WalletAccount, account_id),
                   expire_at=START + dt.timedelta(minutes=15))
    with hospital.runtime.session_factory.begin() as session:
        trade_found_paid(session, "R-ORPHAN", "T1", hospital.clock.now(),
                         hospital.runtime.paid_handlers)
    [refund] = hospital.refunds()
    assert (refund.out_trade_no, refund.refund_fen) == ("R-ORPHAN", FEE)
    assert [m.subject_id for m in hospital.outbox("refund")] == ["R-ORPHAN-R1"]
