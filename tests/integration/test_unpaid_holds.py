"""The cap on an account's unpaid holds: a bot cannot sit on places it has not paid for."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import update

from adapter.db import write_transaction
from adapter.models import Booking, BookingStatus, Patient, Slot
from adapter.refusals import Refusal
from adapter.registration.booking import hold_slot
from adapter.registration.rules import BookingRules
from tests.integration.test_registration import (
    DOCTOR,
    MAP,
    TZ,
    _book,
    _patient,
    _pay,
    _slot_ids,
    resident_id,
    system,  # noqa: F401 - the fixture
)


def _child(client, n: int) -> int:
    added = client.post("/api/v1/patients", json={
        "name": f"测试宝{n}", "document_type": "RESIDENT_ID",
        "document_number": resident_id("20200601", f"{2 * n + 1:03d}"), "relation": "child",
        "guardian_consent": True})
    assert added.status_code == 201, added.json
    return added.json["id"]


def _more_slots(runtime, count: int, first: int = 0) -> list[int]:
    start = dt.datetime.combine(dt.date.today() + dt.timedelta(days=3), dt.time(14), TZ)
    with runtime.session_factory.begin() as session:
        slots = [Slot(his_slot_id=f"X{n}", department_code="PED", doctor_code=DOCTOR.code,
                      service_code=DOCTOR.service_code,
                      start_at=start + dt.timedelta(minutes=10 * n),
                      end_at=start + dt.timedelta(minutes=10 * (n + 1)), capacity=5,
                      booked=0, fee_fen=MAP.fee_fen(DOCTOR.service_code))
                 for n in range(first, first + count)]
        session.add_all(slots)
        session.flush()
        return [slot.id for slot in slots]


def test_a_third_unpaid_hold_is_refused_until_one_is_paid(system):
    app, runtime = system
    client, me, _ = _patient(app, runtime)
    first_child, second_child = _child(client, 1), _child(client, 2)
    s0, s1, s2 = _slot_ids(runtime)
    held = _book(client, s0, me)
    assert held.status_code == 201
    assert _book(client, s1, first_child).status_code == 201
    third = _book(client, s2, second_child)
    assert third.status_code == 422 and third.json["error"] == "booking.unpaid_holds"
    assert third.json["message"] == "您已有2个待支付的预约，请先支付或取消后再预约。"
    english = client.post("/api/v1/bookings?lang=en",
                          json={"slot_id": s2, "patient_id": second_child},
                          headers={"Idempotency-Key": "en-1"})
    assert english.json["message"].startswith("You already have 2 bookings waiting for payment")
    _pay(runtime, client, held.json["id"])  # paid: no longer an unpaid hold
    assert _book(client, s2, second_child).status_code == 201


def test_a_cancelled_or_expired_hold_frees_the_account_to_hold_again(system):
    app, runtime = system
    runtime.booking_rules = BookingRules(unpaid_holds_per_account=1)
    client, me, _ = _patient(app, runtime)
    child = _child(client, 1)
    s0, s1, s2 = _slot_ids(runtime)
    held = _book(client, s0, me)
    assert _book(client, s1, child).json["error"] == "booking.unpaid_holds"
    assert client.post(f"/api/v1/bookings/{held.json['id']}/cancel", json={}).status_code == 200
    second = _book(client, s1, child)
    assert second.status_code == 201
    # A hold past its deadline does not count, even before the expiry job has swept it.
    with runtime.session_factory.begin() as session:
        session.execute(update(Booking).where(Booking.public_id == second.json["id"]).values(
            hold_expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert _book(client, s2, me).status_code == 201


def test_the_cap_counts_one_account_not_another(system):
    app, runtime = system
    runtime.booking_rules = BookingRules(unpaid_holds_per_account=1)
    a, pa, _ = _patient(app, runtime, 1)
    b, pb, _ = _patient(app, runtime, 2)
    s0, s1, _ = _slot_ids(runtime)
    assert _book(a, s0, pa).status_code == 201
    assert _book(b, s1, pb).status_code == 201


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_two_holds_at_once_never_both_pass_the_cap(system):
    """Two patients of one account hold at the same moment, for different slots (so neither
    the slot nor the per-person lock orders them): the account's lock must."""
    app, runtime = system
    runtime.booking_rules = BookingRules(unpaid_holds_per_account=1)
    client, me, _ = _patient(app, runtime)
    child = _child(client, 1)
    account_id = _account_of(runtime, me)

    def hold(barrier: threading.Barrier, outcomes: list[str], patient_id: int,
             slot_id: int) -> None:
        with runtime.session_factory.begin() as session:
            write_transaction(session)
            barrier.wait()
            try:
                hold_slot(session, account_id=account_id, patient_id=patient_id,
                          slot_id=slot_id, mappings=runtime.mappings,
                          rules=runtime.booking_rules, policy=runtime.policy, tz=TZ,
                          now=dt.datetime.now(dt.UTC))
                outcomes.append("held")
            except Refusal as refusal:
                outcomes.append(refusal.code)

    for round_ in range(5):
        slots = _more_slots(runtime, 2, first=2 * round_)
        barrier, outcomes = threading.Barrier(2), []
        threads = [threading.Thread(target=hold, args=(barrier, outcomes, me, slots[0])),
                   threading.Thread(target=hold, args=(barrier, outcomes, child, slots[1]))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(outcomes) == ["booking.unpaid_holds", "held"], round_
        with runtime.session_factory.begin() as session:  # let it run out for the next round
            session.execute(update(Booking).where(
                Booking.status == BookingStatus.PENDING_PAYMENT).values(
                status=BookingStatus.EXPIRED))


def _account_of(runtime, patient_id: int) -> int:
    with runtime.session_factory() as session:
        return session.get(Patient, patient_id).wallet_account_id
