"""Check-in and the queue view through the API: the HIS told by the outbox, the queue built
from its SIU^S14 events through the real listener, the view guarded like the booking."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace

import pytest
from sqlalchemy import select

from adapter import create_app
from adapter.config import Address, load_config
from adapter.his.header import parse_ack
from adapter.his.listener import make_listener
from adapter.his.mllp_client import MllpClient
from adapter.his.profile import Hl7Profile
from adapter.his.simulator.clinic_wire import build_queue_siu
from adapter.mappings import load_mappings
from adapter.models import Slot, Trade
from adapter.payments.notices import apply_payment_notification
from adapter.ports import PaymentNotice, QueueEvent, QueueEventKind, TradeState
from adapter.protection import DataProtector, generate_key_file, load_keyring
from adapter.queueing.check_in import CheckInTokens
from adapter.registration.policy import RegistrationPolicy
from adapter.registration.rules import BookingRules
from adapter.runtime import Runtime
from adapter.worker.inbound import process_inbound
from adapter.worker.outbox import deliver_outbox
from tests.conftest import MAPPINGS
from tests.fakes import FakeClock, FakeHis, FakeWallet, sign_in
from tests.unit.conftest import resident_id

MAP = load_mappings(MAPPINGS)
TZ = load_config({}).tz
DOCTOR = MAP.doctors_of("PED")[0]
SLOT_AT = dt.datetime(2030, 3, 7, 9, 0, tzinfo=TZ)
HIS_SIDE = Hl7Profile(sending_application="HIS", sending_facility="DEMO_HOSPITAL",
                      his_application="FHA", his_facility="WALLET")
CENTRE = (31.2165, 121.4575)
HERE = {"latitude": 31.2170, "longitude": 121.4580, "accuracy_m": 20}


@pytest.fixture
def system(engine, session_factory, tmp_path):
    key_file = tmp_path / "data.key"
    generate_key_file(key_file)
    config = replace(load_config({}), secret_key="k", data_key_file=key_file,
                     alipay_app_id="APP", alipay_seller_id="SELLER",
                     mllp_listen=Address("127.0.0.1", 0), hospital_latitude=CENTRE[0],
                     hospital_longitude=CENTRE[1], session_idle_minutes=180)
    runtime = Runtime(config, engine, session_factory, MAP, Hl7Profile(),
                      booking_rules=BookingRules(), policy=RegistrationPolicy(),
                      clock=FakeClock(SLOT_AT - dt.timedelta(minutes=70)))
    runtime.wallet, runtime.his = FakeWallet(), FakeHis()
    runtime.protector = DataProtector(load_keyring(key_file))
    with session_factory.begin() as session:
        session.add(Slot(his_slot_id="S1", department_code="PED", doctor_code=DOCTOR.code,
                         service_code=DOCTOR.service_code, start_at=SLOT_AT,
                         end_at=SLOT_AT + dt.timedelta(minutes=10), capacity=2, booked=0,
                         fee_fen=MAP.fee_fen(DOCTOR.service_code)))
    listener = make_listener(runtime.config, runtime.session_factory, runtime.profile)
    listener.start()
    client = MllpClient(*listener.server_address[:2], connect_timeout=2, ack_timeout=10)
    yield create_app(runtime=runtime), runtime, client
    client.close()
    listener.shutdown()


def _confirmed(app, runtime, n: int = 1):
    """A signed-in patient with a paid, confirmed booking: (client, booking id)."""
    client = app.test_client()
    runtime.wallet.add_user(f"code{n}", user_id=f"2088{n:012d}", is_certified=True,
                            name=f"测试{n}", document_type="RESIDENT_ID",
                            document_number=resident_id(n), sex="M")
    assert sign_in(client, f"code{n}").status_code == 201
    patient_id = client.get("/api/v1/patients").json["patients"][0]["id"]
    with runtime.session_factory() as session:
        slot_id = session.scalar(select(Slot.id))
    held = client.post("/api/v1/bookings", json={"slot_id": slot_id, "patient_id": patient_id},
                       headers={"Idempotency-Key": str(uuid.uuid4())})
    assert held.status_code == 201, held.json
    payment = client.post("/api/v1/payments", json={"booking_id": held.json["id"]}).json
    runtime.wallet.pay(payment["out_trade_no"])
    with runtime.session_factory.begin() as session:
        trade = session.get(Trade, payment["out_trade_no"])
        apply_payment_notification(
            session, PaymentNotice("fake", f"n{n}", "APP", "SELLER", trade.out_trade_no,
                                   payment["trade_no"], TradeState.PAID, trade.total_fen),
            app_id="APP", merchant_id="SELLER", on_paid=runtime.paid_handlers,
            now=runtime.clock.now())
    deliver_outbox(runtime)
    assert client.get(f"/api/v1/bookings/{held.json['id']}").json["status"] == "confirmed"
    return client, held.json["id"]


def _hear(runtime, his, *events: QueueEvent) -> None:
    for event in events:
        ack = parse_ack(his.send(build_queue_siu(HIS_SIDE, event, location="MZ-PED",
                                           department_code="PED").encode()))
        assert ack.code == "AA"
    process_inbound(runtime)


def _event(n: int, visit: str, kind: QueueEventKind, minutes: float, *, placer: str = "",
           number: int = 0) -> QueueEvent:
    return QueueEvent(f"Q{n:04d}", DOCTOR.code, SLOT_AT.date(), "am", visit, kind,
                      SLOT_AT - dt.timedelta(minutes=60) + dt.timedelta(minutes=minutes), n,
                      number, his_patient_id=f"P{visit}", placer_id=placer, room="205",
                      slot_start=SLOT_AT)


def test_check_in_in_the_fence_tells_the_his_and_the_queue_view_follows_the_line(system):
    app, runtime, his = system
    client, booking_id = _confirmed(app, runtime)
    url = f"/api/v1/bookings/{booking_id}"
    assert client.get(f"{url}/queue").json["state"] == "not_in_queue"
    runtime.clock.set(SLOT_AT - dt.timedelta(minutes=30))
    done = client.post(f"{url}/check-in", json={"location": HERE})
    assert done.status_code == 200 and done.json["method"] == "remote"
    assert client.post(f"{url}/check-in", json={"location": HERE}).json == done.json
    deliver_outbox(runtime)
    [arrival] = runtime.his.arrivals
    assert arrival.placer_appointment_id == booking_id
    # The HIS's queue: two walk-ins ahead, then our patient, whom the HIS makes Arrived.
    K = QueueEventKind
    _hear(runtime, his,
          _event(1, "V1", K.REGISTERED, 0, number=1), _event(2, "V1", K.ARRIVED, 1, number=1),
          _event(3, "V2", K.REGISTERED, 2, number=2), _event(4, "V2", K.ARRIVED, 3, number=2),
          _event(5, "V3", K.REGISTERED, 4, placer=booking_id, number=3),
          _event(6, "V3", K.ARRIVED, 30, placer=booking_id, number=3))
    view = client.get(f"{url}/queue?lang=en").json
    assert view["state"] == "waiting" and view["checked_in"]
    assert (view["position"], view["ahead"], view["room"]) == (3, 2, "205")
    assert 0 <= view["wait"]["low_minutes"] < view["wait"]["high_minutes"]
    assert view["updated_at"].startswith("2030-03-07T08:30")
    assert view["state_text"] == "Waiting"
    _hear(runtime, his, _event(7, "V1", K.CALLED, 62, number=1))
    assert client.get(f"{url}/queue").json["ahead"] == 1
    _hear(runtime, his, _event(8, "V2", K.CALLED, 70, number=2),
          _event(9, "V3", K.CALLED, 75, placer=booking_id, number=3))
    called = client.get(f"{url}/queue").json
    assert called["state"] == "called" and called["position"] is None and called["wait"] is None


def test_refusals_and_bad_input_are_4xx_with_reasons(system):
    app, runtime, _his = system
    client, booking_id = _confirmed(app, runtime)
    url = f"/api/v1/bookings/{booking_id}/check-in"
    early = client.post(url, json={"location": HERE})
    assert early.status_code == 422 and early.json["error"] == "check_in.too_early"
    runtime.clock.set(SLOT_AT)
    far = client.post(url, json={"location": {"latitude": 31.30, "longitude": 121.4575}})
    assert far.status_code == 422 and far.json["error"] == "check_in.outside_fence"
    expired = CheckInTokens("k").issue(SLOT_AT - dt.timedelta(minutes=30))
    answer = client.post(url, json={"token": expired})
    assert answer.status_code == 422 and answer.json["error"] == "check_in.token_expired"
    for bad in ({"location": {"latitude": 91, "longitude": 0}}, {"token": "a b"},
                {"location": {"latitude": "x", "longitude": 0}}, {"where": 1}, [], "x"):
        answer = client.post(url, json=bad)
        assert answer.status_code == 400, (bad, answer.json)
    assert client.post(url, data="{}", content_type="text/plain").status_code == 415
    foreign = client.post(url, json={"location": HERE},
                          headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert runtime.his.arrivals == [] and deliver_outbox(runtime) == 0
    fresh = CheckInTokens("k").issue(SLOT_AT - dt.timedelta(minutes=1))
    assert client.post(url, json={"token": fresh}).json["method"] == "qr"


def test_someone_elses_booking_and_queue_are_unknown(system):
    app, runtime, _his = system
    _client, booking_id = _confirmed(app, runtime, 1)
    other, _ = _confirmed(app, runtime, 2)
    runtime.clock.set(SLOT_AT)
    assert other.get(f"/api/v1/bookings/{booking_id}/queue").status_code == 404
    assert other.post(f"/api/v1/bookings/{booking_id}/check-in",
                      json={"location": HERE}).status_code == 404
    assert other.get("/api/v1/bookings/not%20an%20id/queue").status_code == 404
    assert app.test_client().get(f"/api/v1/bookings/{booking_id}/queue").status_code == 401
