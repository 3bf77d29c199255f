"""Registration end to end through the API and the worker, with fake HIS and wallet ports."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import replace

import pytest
from sqlalchemy import func, select, update
from stdnum.cn import ric

from adapter import create_app
from adapter.config import load_config
from adapter.his.profile import Hl7Profile
from adapter.links import MAX_PROBE_SECONDS
from adapter.mappings import load_mappings
from adapter.models import Booking, OutboxMessage, Slot, Trade
from adapter.payments.notices import apply_payment_notification
from adapter.ports import PaymentNotice, TradeState
from adapter.protection import DataProtector, generate_key_file, load_keyring
from adapter.registration.cancelling import cancel_for_closed_slot
from adapter.registration.jobs import expire_holds, release_cancelled_slots
from adapter.registration.policy import RegistrationPolicy
from adapter.registration.rules import BookingRules
from adapter.runtime import Runtime
from adapter.worker.outbox import deliver_outbox
from tests.conftest import MAPPINGS
from tests.fakes import FakeClock, FakeHis, FakeWallet, sign_in

MAP = load_mappings(MAPPINGS)
TZ = load_config({}).tz
DOCTOR = MAP.doctors_of("PED")[0]
FEE = MAP.fee_fen(DOCTOR.service_code)


def resident_id(birth: str, order: str) -> str:
    body = "110101" + birth + order
    return body + ric.calc_check_digit(body + "0")


@pytest.fixture
def system(engine, session_factory, tmp_path):
    key_file = tmp_path / "data.key"
    generate_key_file(key_file)
    config = replace(load_config({}), secret_key="k", data_key_file=key_file,
                     alipay_app_id="APP", alipay_seller_id="SELLER")
    policy = RegistrationPolicy(release_delay_min_seconds=0, release_delay_max_seconds=0)
    runtime = Runtime(config, engine, session_factory, MAP, Hl7Profile(),
                      booking_rules=BookingRules(), policy=policy)
    runtime.wallet, runtime.his = FakeWallet(), FakeHis()
    runtime.protector = DataProtector(load_keyring(key_file))
    app = create_app(runtime=runtime)
    # three days ahead: released (7 days ahead) and still cancellable
    start = dt.datetime.combine(dt.date.today() + dt.timedelta(days=3), dt.time(9), TZ)
    with session_factory.begin() as session:
        for n in range(3):
            session.add(Slot(his_slot_id=f"S{n}", department_code="PED",
                             doctor_code=DOCTOR.code, service_code=DOCTOR.service_code,
                             start_at=start + dt.timedelta(minutes=10 * n),
                             end_at=start + dt.timedelta(minutes=10 * (n + 1)), capacity=1,
                             booked=0, fee_fen=MAP.fee_fen(DOCTOR.service_code)))
    return app, runtime


def _slot_ids(runtime) -> list[int]:
    with runtime.session_factory() as session:
        return list(session.scalars(select(Slot.id).order_by(Slot.id)))


def _patient(app, runtime, n: int = 1):
    """A signed-in certified adult; returns (client, self patient id, user id)."""
    client = app.test_client()
    user_id = f"20880000000{n:05d}"
    runtime.wallet.add_user(f"code{n}", user_id=user_id, is_certified=True, name=f"测试{n}",
                            document_type="RESIDENT_ID",
                            document_number=resident_id("19800101", f"{2 * n + 1:03d}"), sex="M")
    response = sign_in(client, f"code{n}")
    assert response.status_code == 201, response.json
    deliver_outbox(runtime)  # the new patient is found in or added to the HIS at once
    return client, response.json["patients"][0]["id"], user_id


def _book(client, slot_id, patient_id, key=None):
    return client.post("/api/v1/bookings", json={"slot_id": slot_id, "patient_id": patient_id},
                       headers={"Idempotency-Key": key or str(uuid.uuid4())})


def _pay(runtime, client, booking_id) -> str:
    payment = client.post("/api/v1/payments", json={"booking_id": booking_id})
    assert payment.status_code == 201, payment.json
    out_trade_no = payment.json["out_trade_no"]
    runtime.wallet.pay(out_trade_no)
    with runtime.session_factory.begin() as session:
        trade = session.get(Trade, out_trade_no)
        apply_payment_notification(
            session, PaymentNotice("fake", "n-" + out_trade_no, "APP", "SELLER", out_trade_no,
                                   payment.json["trade_no"], TradeState.PAID, trade.total_fen),
            app_id="APP", merchant_id="SELLER", on_paid=runtime.paid_handlers,
            now=runtime.clock.now())
    return out_trade_no


def _status(client, booking_id) -> dict:
    return client.get(f"/api/v1/bookings/{booking_id}").json


def _booked(runtime, slot_id) -> int:
    with runtime.session_factory() as session:
        return session.get(Slot, slot_id).booked


def test_book_pay_confirm_and_tell_the_patient(system):
    app, runtime = system
    client, patient_id, user_id = _patient(app, runtime)
    slot_id = _slot_ids(runtime)[0]
    slots = client.get(f"/api/v1/slots?department=PED&date={dt.date.today() + dt.timedelta(3)}")
    assert [s["status"] for s in slots.json["slots"]] == ["open"] * 3
    held = _book(client, slot_id, patient_id)
    assert held.status_code == 201 and held.json["status"] == "pending_payment"
    assert held.json["can_pay"] and held.json["fee"] == f"{FEE // 100}.{FEE % 100:02d}"
    assert _booked(runtime, slot_id) == 1
    _pay(runtime, client, held.json["id"])
    assert _status(client, held.json["id"])["status"] == "confirming"
    deliver_outbox(runtime)
    booking = _status(client, held.json["id"])
    assert booking["status"] == "confirmed" and booking["can_cancel"]
    [request] = runtime.his.booked
    assert request.placer_appointment_id == held.json["id"]
    # the patient was added to the HIS when they signed in, before the booking
    assert request.his_patient_id.startswith("P") and len(runtime.his.patients) == 1
    assert runtime.wallet.messages == [(user_id, runtime.wallet.messages[0][1])]
    assert "成功预约" in runtime.wallet.messages[0][1]


def test_idempotency_key_replays_the_first_answer(system):
    app, runtime = system
    client, patient_id, _ = _patient(app, runtime)
    slot_id = _slot_ids(runtime)[0]
    first = _book(client, slot_id, patient_id, key="k1")
    again = _book(client, slot_id, patient_id, key="k1")
    assert again.status_code == 201 and again.json == first.json
    other = _book(client, _slot_ids(runtime)[1], patient_id, key="k1")
    assert other.status_code == 422 and other.json["error"] == "idempotency.mismatch"
    missing = client.post("/api/v1/bookings", json={"slot_id": slot_id, "patient_id": 1})
    assert missing.status_code == 400
    with runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Booking)) == 1


def test_full_slot_and_anti_scalping_are_refused_with_reasons(system):
    app, runtime = system
    a, pa, _ = _patient(app, runtime, 1)
    b, pb, _ = _patient(app, runtime, 2)
    s0, s1, _ = _slot_ids(runtime)
    assert _book(a, s0, pa).status_code == 201
    full = _book(b, s0, pb)
    assert full.status_code == 409 and full.json["error"] == "slot.full"
    same_doctor = _book(a, s1, pa)  # one booking per doctor per day
    assert same_doctor.status_code == 422 and same_doctor.json["error"] == "booking.per_doctor"
    assert "同一" in same_doctor.json["message"] or "医生" in same_doctor.json["message"]


def test_someone_elses_patient_or_booking_is_not_reachable(system):
    app, runtime = system
    a, pa, _ = _patient(app, runtime, 1)
    b, pb, _ = _patient(app, runtime, 2)
    held = _book(a, _slot_ids(runtime)[0], pa)
    assert _book(b, _slot_ids(runtime)[1], pa).json["error"] == "patient.unknown"
    assert b.get(f"/api/v1/bookings/{held.json['id']}").status_code == 404
    assert b.post(f"/api/v1/bookings/{held.json['id']}/cancel", json={}).status_code == 404


def test_his_refusal_cancels_refunds_and_frees_the_place(system):
    app, runtime = system
    client, patient_id, user_id = _patient(app, runtime)
    slot_id = _slot_ids(runtime)[0]
    held = _book(client, slot_id, patient_id)
    out_trade_no = _pay(runtime, client, held.json["id"])
    runtime.his.refuse_with = "SLOT_TAKEN"
    deliver_outbox(runtime)
    booking = _status(client, held.json["id"])
    assert booking["status"] == "rejected" and booking["refund"]["status"] == "done"
    assert runtime.wallet.refunded_fen(out_trade_no) == FEE
    assert _booked(runtime, slot_id) == 0
    assert "号源已被占用" in runtime.wallet.messages[-1][1]


def test_outbox_retries_while_the_his_is_down(system):
    app, runtime = system
    client, patient_id, _ = _patient(app, runtime)
    held = _book(client, _slot_ids(runtime)[0], patient_id)
    _pay(runtime, client, held.json["id"])
    runtime.his.down = True
    deliver_outbox(runtime)
    with runtime.session_factory() as session:
        message = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "his_book"))
        assert message.status == "pending" and message.attempts == 1
        session.execute(update(OutboxMessage).values(next_attempt_at=dt.datetime.now(dt.UTC)))
        session.commit()
    runtime.his.down = False
    deliver_outbox(runtime)
    assert _status(client, held.json["id"])["status"] == "confirmed"
    assert len(runtime.his.appointments) == 1


def _expire_now(runtime):
    with runtime.session_factory.begin() as session:
        session.execute(update(Booking).values(
            hold_expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))


def test_unpaid_hold_expires_after_closing_the_trade(system):
    app, runtime = system
    client, patient_id, _ = _patient(app, runtime)
    slot_id = _slot_ids(runtime)[0]
    held = _book(client, slot_id, patient_id)
    payment = client.post("/api/v1/payments", json={"booking_id": held.json["id"]})
    _expire_now(runtime)
    assert expire_holds(runtime) == 1
    assert _status(client, held.json["id"])["status"] == "expired"
    assert runtime.wallet.trades[payment.json["out_trade_no"]]["state"] is TradeState.CLOSED
    assert _booked(runtime, slot_id) == 0


def test_a_payment_that_raced_the_expiry_is_honoured(system):
    app, runtime = system
    client, patient_id, _ = _patient(app, runtime)
    held = _book(client, _slot_ids(runtime)[0], patient_id)
    payment = client.post("/api/v1/payments", json={"booking_id": held.json["id"]})
    runtime.wallet.pay(payment.json["out_trade_no"])  # paid, notification not yet arrived
    _expire_now(runtime)
    assert expire_holds(runtime) == 0
    assert _status(client, held.json["id"])["status"] == "confirming"
    deliver_outbox(runtime)
    assert _status(client, held.json["id"])["status"] == "confirmed"


def test_a_notification_after_the_place_was_given_away_is_refunded(system):
    app, runtime = system
    a, pa, _ = _patient(app, runtime, 1)
    b, pb, _ = _patient(app, runtime, 2)
    slot_id = _slot_ids(runtime)[0]
    held = _book(a, slot_id, pa)
    payment = a.post("/api/v1/payments", json={"booking_id": held.json["id"]})
    out_trade_no = payment.json["out_trade_no"]
    # the local state expired it (the wallet close failed to register), someone else took it
    with runtime.session_factory.begin() as session:
        from adapter.registration.cancelling import expire_booking
        booking = session.scalar(select(Booking))
        expire_booking(session, booking, dt.datetime.now(dt.UTC))
    assert _book(b, slot_id, pb).status_code == 201
    with runtime.session_factory.begin() as session:
        apply_payment_notification(
            session, PaymentNotice("fake", "late", "APP", "SELLER", out_trade_no,
                                   payment.json["trade_no"], TradeState.PAID, FEE),
            app_id="APP", merchant_id="SELLER", on_paid=runtime.paid_handlers,
            now=runtime.clock.now())
    deliver_outbox(runtime)
    assert runtime.wallet.refunded_fen(out_trade_no) == FEE
    assert _status(a, held.json["id"])["status"] == "cancelled"
    assert _booked(runtime, slot_id) == 1


def test_patient_cancels_before_the_deadline_refund_and_his_cancel(system):
    app, runtime = system
    client, patient_id, _ = _patient(app, runtime)
    slot_id = _slot_ids(runtime)[0]
    held = _book(client, slot_id, patient_id)
    out_trade_no = _pay(runtime, client, held.json["id"])
    deliver_outbox(runtime)
    cancelling = client.post(f"/api/v1/bookings/{held.json['id']}/cancel", json={})
    assert cancelling.status_code == 200 and cancelling.json["status"] == "cancelling"
    assert runtime.wallet.refunded_fen(out_trade_no) == 0  # not before the HIS agrees
    deliver_outbox(runtime)
    assert _status(client, held.json["id"])["status"] == "cancelled"
    assert runtime.his.cancelled == [held.json["id"]]
    assert runtime.wallet.refunded_fen(out_trade_no) == FEE
    assert _booked(runtime, slot_id) == 1  # back to the pool after the (random) delay...
    release_cancelled_slots(runtime)
    assert _booked(runtime, slot_id) == 0  # ...which is 0 s in this test's policy


def test_cancel_after_the_deadline_is_refused(system):
    app, runtime = system
    client, patient_id, _ = _patient(app, runtime)
    held = _book(client, _slot_ids(runtime)[0], patient_id)
    _pay(runtime, client, held.json["id"])
    deliver_outbox(runtime)
    runtime.policy = replace(runtime.policy, cancel_deadline_days_before=5)
    refused = client.post(f"/api/v1/bookings/{held.json['id']}/cancel?lang=en", json={})
    assert refused.status_code == 422 and refused.json["error"] == "cancel.deadline_passed"
    assert "deadline" in refused.json["message"]


def test_cancelling_an_unpaid_hold_closes_the_trade(system):
    app, runtime = system
    client, patient_id, _ = _patient(app, runtime)
    held = _book(client, _slot_ids(runtime)[0], patient_id)
    payment = client.post("/api/v1/payments", json={"booking_id": held.json["id"]})
    again = client.post("/api/v1/payments", json={"booking_id": held.json["id"]})
    assert again.json["out_trade_no"] == payment.json["out_trade_no"]  # one trade per booking
    # The trade is the signed-in wallet's, paid as that wallet says.
    assert (again.json["platform"], again.json["pay"], again.json["cashier_url"]) == (
        "fake", {"trade_no": payment.json["trade_no"]}, None)
    with runtime.session_factory() as session:
        assert session.get(Trade, payment.json["out_trade_no"]).platform == "fake"
    response = client.post(f"/api/v1/bookings/{held.json['id']}/cancel", json={})
    assert response.json["status"] == "cancelled"
    assert runtime.wallet.trades[payment.json["out_trade_no"]]["state"] is TradeState.CLOSED


def test_clinic_stopped_by_the_hospital_refunds_everyone_on_the_slot(system):
    app, runtime = system
    client, patient_id, user_id = _patient(app, runtime)
    slot_id = _slot_ids(runtime)[0]
    held = _book(client, slot_id, patient_id)
    out_trade_no = _pay(runtime, client, held.json["id"])
    deliver_outbox(runtime)
    with runtime.session_factory.begin() as session:
        slot = session.get(Slot, slot_id)
        slot.status = "closed"
        assert cancel_for_closed_slot(session, slot, mappings=MAP, tz=TZ,
                                      now=dt.datetime.now(dt.UTC)) == 1
    deliver_outbox(runtime)
    assert _status(client, held.json["id"])["status"] == "cancelled"
    assert runtime.wallet.refunded_fen(out_trade_no) == FEE
    assert "停诊" in runtime.wallet.messages[-1][1]


def test_many_patients_racing_for_the_last_place_get_exactly_one(system):
    app, runtime = system
    slot_id = _slot_ids(runtime)[0]
    patients = [_patient(app, runtime, n) for n in range(1, 13)]
    results: list[int] = []
    barrier = threading.Barrier(len(patients))

    def race(client, patient_id) -> None:
        barrier.wait()
        results.append(_book(client, slot_id, patient_id).status_code)

    threads = [threading.Thread(target=race, args=(c, p)) for c, p, _ in patients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [201] + [409] * (len(patients) - 1)
    assert _booked(runtime, slot_id) == 1


def test_a_double_click_books_once(system):
    app, runtime = system
    client, patient_id, _ = _patient(app, runtime)
    slot_id = _slot_ids(runtime)[0]
    answers = []
    barrier = threading.Barrier(2)

    def click() -> None:
        barrier.wait()
        answers.append(_book(client, slot_id, patient_id, key="same-click"))

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json == answers[1].json
    assert _booked(runtime, slot_id) == 1


def test_notifications_racing_hold_expiry_never_lose_or_double_money(system):
    app, runtime = system
    start = dt.datetime.combine(dt.date.today() + dt.timedelta(days=3), dt.time(14), TZ)
    with runtime.session_factory.begin() as session:
        for n in range(8):
            session.add(Slot(his_slot_id=f"R{n}", department_code="PED",
                             doctor_code=MAP.doctors_of("PED")[1 + n % 2].code,
                             service_code=DOCTOR.service_code,
                             start_at=start + dt.timedelta(minutes=10 * n),
                             end_at=start + dt.timedelta(minutes=10 * n + 10), capacity=1,
                             booked=0, fee_fen=FEE))
    with runtime.session_factory() as session:
        slot_ids = list(session.scalars(select(Slot.id).where(Slot.his_slot_id.like("R%"))))
    trades = []
    for n, slot_id in enumerate(slot_ids):
        client, patient_id, _ = _patient(app, runtime, 100 + n)
        held = _book(client, slot_id, patient_id)
        assert held.status_code == 201, held.json
        payment = client.post("/api/v1/payments", json={"booking_id": held.json["id"]}).json
        trades.append((payment["out_trade_no"], payment["trade_no"], n % 2 == 0))
    for out_trade_no, _, paid in trades:
        if paid:
            runtime.wallet.pay(out_trade_no)  # paid at the last second
    _expire_now(runtime)

    def notify() -> None:
        for out_trade_no, trade_no, paid in trades:
            if paid:
                with runtime.session_factory.begin() as session:
                    apply_payment_notification(
                        session, PaymentNotice("fake", "n" + out_trade_no, "APP", "SELLER",
                                               out_trade_no, trade_no, TradeState.PAID, FEE),
                        app_id="APP", merchant_id="SELLER", on_paid=runtime.paid_handlers,
            now=runtime.clock.now())

    threads = [threading.Thread(target=notify), threading.Thread(target=expire_holds,
                                                                 args=(runtime,))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expire_holds(runtime)  # a round that lost a lock race goes again
    with runtime.session_factory() as session:
        for out_trade_no, _, paid in trades:
            booking = session.scalar(select(Booking).where(Booking.out_trade_no == out_trade_no))
            trade = session.get(Trade, out_trade_no)
            books = session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.subject_id == str(booking.id), OutboxMessage.kind == "his_book"))
            refunds = session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.subject_id == f"{out_trade_no}-R1",
                OutboxMessage.kind == "refund"))
            if paid:  # kept: sent to the HIS exactly once, never refunded
                assert (booking.status, trade.status, books, refunds) == (
                    "confirming", "paid", 1, 0), out_trade_no
                assert session.get(Slot, booking.slot_id).booked == 1
            else:  # expired: trade closed, place back, nothing charged
                assert (booking.status, trade.status, books, refunds) == (
                    "expired", "closed", 0, 0), out_trade_no
                assert session.get(Slot, booking.slot_id).booked == 0


def test_a_paid_booking_the_his_never_answers_is_refunded_when_the_visit_begins(system):
    app, runtime = system
    client, patient_id, _ = _patient(app, runtime)
    slot_id = _slot_ids(runtime)[0]
    held = _book(client, slot_id, patient_id)
    out_trade_no = _pay(runtime, client, held.json["id"])
    runtime.his.down = True
    # The worker's time: each round is a probe of the HIS link, which its breaker holds shut.
    runtime.clock = FakeClock(dt.datetime.now(dt.UTC))
    for _ in range(20):  # far past outbox_max_attempts: a paid booking is never parked
        runtime.clock.advance(seconds=MAX_PROBE_SECONDS)
        with runtime.session_factory.begin() as session:
            session.execute(update(OutboxMessage).values(next_attempt_at=runtime.clock.now()))
        deliver_outbox(runtime, limit=1)
    assert _status(client, held.json["id"])["status"] == "confirming"
    runtime.clock.advance(seconds=MAX_PROBE_SECONDS)
    with runtime.session_factory.begin() as session:  # the visit time comes
        slot = session.get(Slot, slot_id)
        slot.start_at = runtime.clock.now() - dt.timedelta(minutes=1)
        session.execute(update(OutboxMessage).values(next_attempt_at=runtime.clock.now()))
    deliver_outbox(runtime)
    runtime.his.down = False
    runtime.clock.advance(seconds=MAX_PROBE_SECONDS)
    with runtime.session_factory.begin() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.status == "pending")
                        .values(next_attempt_at=runtime.clock.now()))
    deliver_outbox(runtime)
    booking = _status(client, held.json["id"])
    assert booking["status"] == "rejected" and booking["refund"]["status"] == "done"
    assert runtime.wallet.refunded_fen(out_trade_no) == FEE
    assert runtime.his.cancelled == [held.json["id"]]


def test_siu_s15_from_the_his_cancels_refunds_and_tells_the_patient(system):
    from adapter.his.header import parse_ack
    from adapter.his.listener import InboundHandler
    from adapter.his.simulator import wire
    from adapter.ports import SlotRecord
    from adapter.worker.inbound import process_inbound

    app, runtime = system
    runtime.profile = Hl7Profile(slot_sync="both")
    client, patient_id, user_id = _patient(app, runtime)
    slot_id = _slot_ids(runtime)[0]
    held = _book(client, slot_id, patient_id)
    out_trade_no = _pay(runtime, client, held.json["id"])
    deliver_outbox(runtime)
    with runtime.session_factory() as session:
        slot = session.get(Slot, slot_id)
        record = SlotRecord(slot.his_slot_id, slot.department_code, slot.doctor_code,
                            slot.service_code, slot.start_at, slot.end_at, 1, 0, slot.fee_fen,
                            "closed")
    his_side = Hl7Profile(sending_application="HIS", sending_facility="DEMO_HOSPITAL")
    siu = wire.build_siu(his_side, "STOP1", dt.datetime.now(TZ), trigger="S15",
                         slot=record, location="MZ-PED")
    ack = InboundHandler(runtime.session_factory, runtime.profile)(siu.encode())
    assert parse_ack(ack).code == "AA"
    assert process_inbound(runtime) == 1
    deliver_outbox(runtime)
    booking = _status(client, held.json["id"])
    assert booking["status"] == "cancelled" and booking["refund"]["status"] == "done"
    assert runtime.wallet.refunded_fen(out_trade_no) == FEE
    assert runtime.wallet.messages[-1][0] == user_id and "停诊" in runtime.wallet.messages[-1][1]
    slots = client.get(f"/api/v1/slots?department=PED&date={dt.date.today() + dt.timedelta(3)}")
    assert slots.json["slots"][0]["status"] == "closed"


def test_a_new_patient_is_registered_in_the_his_once_before_any_booking(system):
    app, runtime = system
    client, patient_id, _ = _patient(app, runtime)  # signs in, the worker runs once
    with runtime.session_factory() as session:
        from adapter.models import Patient
        assert session.get(Patient, patient_id).his_patient_id.startswith("P")
        kinds = session.scalars(select(OutboxMessage.kind)).all()
    assert kinds == ["his_patient"]
    assert len(runtime.his.patients) == 1
    runtime.wallet.add_user("again", user_id="2088000000000001", is_certified=True,
                            name="测试1", document_type="RESIDENT_ID",
                            document_number=resident_id("19800101", "003"), sex="M")
    assert sign_in(client, "again").status_code == 201
    with runtime.session_factory() as session:  # signing in again asks the HIS nothing more
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_a_paid_registration_trade_without_its_booking_is_refunded(system):
    """Money taken for a booking we cannot find is given back, never kept."""
    _app, runtime = system
    now = runtime.clock.now()
    with runtime.session_factory.begin() as session:
        session.add(Trade(out_trade_no="REG-ORPHAN", platform="fake", purpose="registration",
                          reference="0", subject="挂号费", total_fen=FEE, buyer_id="2088",
                          expire_at=now + dt.timedelta(minutes=15)))
    with runtime.session_factory.begin() as session:
        outcome = apply_payment_notification(
            session, PaymentNotice("fake", "n-orphan", "APP", "SELLER", "REG-ORPHAN", "T1",
                                   TradeState.PAID, FEE),
            app_id="APP", merchant_id="SELLER", on_paid=runtime.paid_handlers, now=now)
    assert outcome == "applied"
    runtime.wallet.create_trade("REG-ORPHAN", FEE, "挂号费", "2088", None)
    runtime.wallet.pay("REG-ORPHAN")
    deliver_outbox(runtime)
    assert runtime.wallet.refunded_fen("REG-ORPHAN") == FEE
    with runtime.session_factory() as session:
        assert session.get(Trade, "REG-ORPHAN").status == "refunded"


def test_a_cross_site_form_cannot_cancel_a_booking(system):
    """A foreign page posting a form (or JSON) with the patient's cookie is refused; the
    adapter's own page cancels."""
    app, runtime = system
    client, patient_id, _ = _patient(app, runtime)
    held = _book(client, _slot_ids(runtime)[0], patient_id)
    url = f"/api/v1/bookings/{held.json['id']}/cancel"
    form = client.post(url, data={"x": "1"}, headers={"Origin": "https://evil.example"})
    assert form.status_code == 403 and form.json["error"] == "origin.forbidden"
    foreign_json = client.post(url, json={}, headers={"Origin": "https://evil.example"})
    assert foreign_json.status_code == 403
    own_form = client.post(url, data={"x": "1"}, headers={"Origin": "http://localhost"})
    assert own_form.status_code == 415 and own_form.json["error"] == "content_type.unsupported"
    assert _status(client, held.json["id"])["status"] == "pending_payment"
    own = client.post(url, json={}, headers={"Origin": "http://localhost"})
    assert own.status_code == 200 and own.json["status"] == "cancelled"
