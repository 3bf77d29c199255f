"""Registration races and long outages found in review: each test is a sequence that once
lost money, overbooked or leaked a place."""
from __future__ import annotations

import datetime as dt
import threading
from dataclasses import replace

import pytest
from sqlalchemy import func, select, update

from adapter.links import MAX_PROBE_SECONDS
from adapter.models import Booking, OutboxMessage, Slot
from adapter.payments.notices import apply_payment_notification
from adapter.ports import HisOutcome, PaymentNotice, SlotRecord, TradeState, WalletRefused
from adapter.registration.booking import lock_booking
from adapter.registration.cancelling import cancel_by_patient, cancel_for_closed_slot
from adapter.registration.jobs import expire_holds, release_cancelled_slots
from adapter.registration.slots import apply_slot_record, close_slot
from adapter.worker.outbox import deliver_outbox
from tests.fakes import FakeClock
from tests.integration.test_registration import (
    DOCTOR,
    FEE,
    MAP,
    TZ,
    _book,
    _booked,
    _patient,
    _pay,
    _slot_ids,
    _status,
    system,  # noqa: F401 - the fixture
)

NOW = lambda: dt.datetime.now(dt.UTC)  # noqa: E731


def _held(runtime, slot_id) -> int:
    with runtime.session_factory() as s:
        return s.scalar(select(func.count()).select_from(Booking).where(
            Booking.slot_id == slot_id, Booking.slot_held.is_(True)))


def _due_now(runtime):
    """Time passes: every pending item is due, and a link's breaker may probe again."""
    if isinstance(runtime.clock, FakeClock):
        runtime.clock.advance(seconds=MAX_PROBE_SECONDS)
    with runtime.session_factory.begin() as s:
        s.execute(update(OutboxMessage).where(OutboxMessage.status == "pending")
                  .values(next_attempt_at=runtime.clock.now()))


# F1 -------------------------------------------------------------------------------------------
def test_hospital_close_then_reopen_never_overbooks(system):
    app, runtime = system
    runtime.policy = replace(runtime.policy, release_delay_min_seconds=60,
                             release_delay_max_seconds=60)
    start = dt.datetime.combine(dt.date.today() + dt.timedelta(days=3), dt.time(15), TZ)
    rec = SlotRecord(his_slot_id="CAP2", department_code="PED", doctor_code=DOCTOR.code,
                     service_code=DOCTOR.service_code, start_at=start,
                     end_at=start + dt.timedelta(minutes=10), capacity=2, fee_fen=FEE,
                     status="open", available=2)
    with runtime.session_factory.begin() as s:
        apply_slot_record(s, rec, NOW())
    with runtime.session_factory() as s:
        slot_id = s.scalar(select(Slot.id).where(Slot.his_slot_id == "CAP2"))
    pats = [_patient(app, runtime, n) for n in range(1, 6)]
    a = _book(pats[0][0], slot_id, pats[0][1]).json["id"]
    # the place returns to the pool after the random delay (60 s here)
    assert pats[0][0].post(f"/api/v1/bookings/{a}/cancel", json={}).status_code == 200
    assert _book(pats[1][0], slot_id, pats[1][1]).status_code == 201  # B active
    with runtime.session_factory.begin() as s:  # SIU^S15 (or the slot missing from a sync)
        close_slot(s, "CAP2", now=NOW(), on_closed=lambda s2, slot: cancel_for_closed_slot(
            s2, slot, mappings=MAP, tz=TZ, now=NOW()))
    with runtime.session_factory.begin() as s:  # SIU^S14 / next sync lists it open again
        apply_slot_record(s, rec, NOW())
    assert _book(pats[2][0], slot_id, pats[2][1]).status_code == 201
    assert _book(pats[3][0], slot_id, pats[3][1]).status_code == 201
    with runtime.session_factory.begin() as s:  # A's random delay passes
        s.execute(update(Booking).where(Booking.slot_release_at.is_not(None))
                  .values(slot_release_at=NOW()))
    release_cancelled_slots(runtime)
    _book(pats[4][0], slot_id, pats[4][1])
    with runtime.session_factory() as s:
        active = s.scalar(select(func.count()).select_from(Booking).where(
            Booking.slot_id == slot_id, Booking.status == "pending_payment"))
    assert active <= 2, f"{active} active bookings on a capacity-2 slot"


# F2 -------------------------------------------------------------------------------------------
def test_trade_created_during_a_cancel_is_closed_and_leaks_no_place(system):
    app, runtime = system
    client, pid, _ = _patient(app, runtime)
    slot_id = _slot_ids(runtime)[0]
    public_id = _book(client, slot_id, pid).json["id"]
    # cancel_booking() step 1: reads the booking, out_trade_no is None -> no wallet close
    with runtime.session_factory() as s:
        assert s.scalar(select(Booking.out_trade_no)) is None
    # meanwhile (second tab / double tap) POST /payments creates the wallet trade
    pay = client.post("/api/v1/payments", json={"booking_id": public_id}).json
    # cancel_booking() step 2: the write transaction, exactly as api.py:446-452
    with runtime.session_factory.begin() as s:
        b = lock_booking(s, public_id=public_id)
        cancel_by_patient(s, b, policy=runtime.policy, tz=TZ, now=NOW(),
                          rng=__import__("random").Random(0), closed_trade=None)
    deliver_outbox(runtime)  # the trade that appeared meanwhile is closed at the wallet too
    assert runtime.wallet.trades[pay["out_trade_no"]]["state"] is TradeState.CLOSED
    release_cancelled_slots(runtime)  # delay 0 in this policy
    assert _booked(runtime, slot_id) == 0
    # Had the patient paid before the close (a notification arriving late), it is refunded
    # and no place is taken for the cancelled booking.
    runtime.wallet.trades[pay["out_trade_no"]]["state"] = TradeState.PAID
    with runtime.session_factory.begin() as s:
        apply_payment_notification(s, PaymentNotice("fake", "n1", "APP", "SELLER",
                                                    pay["out_trade_no"], pay["trade_no"],
                                                    TradeState.PAID, FEE),
                                   app_id="APP", merchant_id="SELLER",
                                   on_paid=runtime.paid_handlers,
            now=runtime.clock.now())
    deliver_outbox(runtime)
    release_cancelled_slots(runtime)
    assert runtime.wallet.refunded_fen(pay["out_trade_no"]) == FEE
    assert _status(client, public_id)["status"] == "cancelled"
    assert _booked(runtime, slot_id) == _held(runtime, slot_id) == 0, (
        f"slot.booked={_booked(runtime, slot_id)}: a place is held by a cancelled booking forever")


# F3 -------------------------------------------------------------------------------------------
def test_no_refund_when_the_his_refuses_the_cancellation(system):
    app, runtime = system
    client, pid, _ = _patient(app, runtime)
    public_id = _book(client, _slot_ids(runtime)[0], pid).json["id"]
    out_trade_no = _pay(runtime, client, public_id)
    deliver_outbox(runtime)
    assert _status(client, public_id)["status"] == "confirmed"
    runtime.his.cancel_appointment = lambda *a: HisOutcome(False, error_code="ALREADY_ARRIVED")
    assert client.post(f"/api/v1/bookings/{public_id}/cancel", json={}).status_code == 200
    assert _status(client, public_id)["status"] == "cancelling"
    for _ in range(15):
        _due_now(runtime)
        deliver_outbox(runtime)
    booking = _status(client, public_id)
    # the HIS keeps the appointment, so does the patient: nothing refunded, told why
    assert booking["status"] == "confirmed" and booking["refund"] is None
    assert runtime.wallet.refunded_fen(out_trade_no) == 0
    assert "未能取消" in runtime.wallet.messages[-1][1]


# F4 -------------------------------------------------------------------------------------------
def test_a_refund_is_never_given_up_during_a_long_wallet_outage(system):
    app, runtime = system
    client, pid, _ = _patient(app, runtime)
    public_id = _book(client, _slot_ids(runtime)[0], pid).json["id"]
    out_trade_no = _pay(runtime, client, public_id)
    runtime.his.refuse_with = "SLOT_TAKEN"
    runtime.wallet.down = True
    runtime.clock = FakeClock(NOW())  # the worker's time, moved by _due_now
    for _ in range(12):  # 12 attempts ~= 37 min of backoff
        _due_now(runtime)
        deliver_outbox(runtime)
    runtime.wallet.down = False
    for _ in range(3):
        _due_now(runtime)
        deliver_outbox(runtime)
        expire_holds(runtime)
    assert _status(client, public_id)["status"] == "rejected"
    assert runtime.wallet.refunded_fen(out_trade_no) == FEE, "paid, rejected, never refunded"


# F5 -------------------------------------------------------------------------------------------
def test_one_refused_close_does_not_block_other_expiries(system):
    app, runtime = system
    a, pa, _ = _patient(app, runtime, 1)
    b, pb, _ = _patient(app, runtime, 2)
    s0, s1, _ = _slot_ids(runtime)
    first = _book(a, s0, pa).json["id"]
    poison = a.post("/api/v1/payments", json={"booking_id": first}).json["out_trade_no"]
    second = _book(b, s1, pb).json["id"]
    b.post("/api/v1/payments", json={"booking_id": second})
    with runtime.session_factory.begin() as s:
        s.execute(update(Booking).where(Booking.public_id == first)
                  .values(hold_expires_at=NOW() - dt.timedelta(seconds=2)))
        s.execute(update(Booking).where(Booking.public_id == second)
                  .values(hold_expires_at=NOW() - dt.timedelta(seconds=1)))
    real_close = runtime.wallet.close_trade

    def close(out_trade_no):
        if out_trade_no == poison:
            raise WalletRefused("40004", "ACQ.INVALID_PARAMETER", "bad")
        return real_close(out_trade_no)

    runtime.wallet.close_trade = close
    for _ in range(3):
        try:
            expire_holds(runtime)
        except WalletRefused:
            pass
    assert _status(b, second)["status"] == "expired", "an unrelated hold never expires"


# F6 (PostgreSQL) ------------------------------------------------------------------------------
@pytest.mark.postgres
def test_a_his_booking_in_flight_does_not_overwrite_a_hospital_cancellation(system, engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises the whole outbox transaction (BEGIN IMMEDIATE)")
    app, runtime = system
    client, pid, _ = _patient(app, runtime)
    slot_id = _slot_ids(runtime)[0]
    public_id = _book(client, slot_id, pid).json["id"]
    out_trade_no = _pay(runtime, client, public_id)
    sent, go = threading.Event(), threading.Event()
    real_book = runtime.his.book_appointment

    def slow_book(request):
        outcome = real_book(request)  # the HIS has booked it
        sent.set()
        go.wait(10)  # SRR^S01 still on the wire
        return outcome

    runtime.his.book_appointment = slow_book
    worker = threading.Thread(target=deliver_outbox, args=(runtime,), kwargs={"limit": 1})
    worker.start()
    assert sent.wait(10)
    with runtime.session_factory.begin() as s:  # SIU^S15 applied by another worker meanwhile
        close_slot(s, s.get(Slot, slot_id).his_slot_id, now=NOW(),
                   on_closed=lambda s2, slot: cancel_for_closed_slot(s2, slot, mappings=MAP,
                                                                      tz=TZ, now=NOW()))
    go.set()
    worker.join()
    runtime.his.book_appointment = real_book
    for _ in range(3):
        _due_now(runtime)
        deliver_outbox(runtime)
    status = _status(client, public_id)["status"]
    refunded = runtime.wallet.refunded_fen(out_trade_no)
    assert not (status == "confirmed" and refunded), (
        f"booking {status} at the HIS and locally, and refunded {refunded} fen")


def test_a_twin_delivery_after_a_lease_ran_out_does_not_cancel_the_booking(system):
    """A slow HIS outlives the lease: a second worker sends the same SRM^S01 (idempotent at the
    HIS by placer id); the later answer must leave the confirmed booking alone."""
    app, runtime = system
    client, pid, _ = _patient(app, runtime)
    public_id = _book(client, _slot_ids(runtime)[0], pid).json["id"]
    _pay(runtime, client, public_id)
    from adapter.registration.delivery import deliver_his_book
    from adapter.worker.outbox import lease_outbox

    first = lease_outbox(runtime, NOW())
    _due_now(runtime)  # the lease "runs out" while the first delivery is still at the HIS
    second = lease_outbox(runtime, NOW())
    assert first.id == second.id
    book = runtime.his.book_appointment

    def slow_his(request):
        runtime.his.book_appointment = book
        deliver_his_book(runtime, second, NOW())  # the twin finishes meanwhile
        return book(request)

    runtime.his.book_appointment = slow_his
    deliver_his_book(runtime, first, NOW())
    deliver_outbox(runtime)
    assert _status(client, public_id)["status"] == "confirmed"
    assert runtime.his.cancelled == [] and len(runtime.his.appointments) == 1
