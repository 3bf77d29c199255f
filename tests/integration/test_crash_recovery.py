"""Kill the worker between "paid" and "sent to the HIS": after a restart the booking reaches the
HIS exactly once (the placer id makes the resend idempotent) and nothing is lost."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from dataclasses import replace

import pytest
from sqlalchemy import select

from adapter import create_app
from adapter.config import Address, load_config
from adapter.flows import OutboxKind
from adapter.his.mllp import MllpServer
from adapter.his.profile import Hl7Profile
from adapter.his.simulator import HisSimulator
from adapter.mappings import load_mappings
from adapter.models import Booking, OutboxMessage, Slot, Trade
from adapter.outbox import enqueue, finish
from adapter.payments.notices import apply_payment_notification
from adapter.ports import PaymentNotice, TradeState
from adapter.protection import DataProtector, generate_key_file, load_keyring
from adapter.runtime import Runtime
from adapter.worker.outbox import LEASE_SECONDS
from tests.conftest import MAPPINGS
from tests.fakes import FakeWallet, sign_in
from tests.integration.test_registration import resident_id

MAP = load_mappings(MAPPINGS)


def pool_simulator_slots(session_factory, simulator: HisSimulator, count: int) -> list[int]:
    """The simulator's first ``count`` open slots from tomorrow on, in our pool (capacity 1
    each, as the slot sync would add them); their ids, in order."""
    after = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    records = sorted((s for s in simulator.slots.values()
                      if s.status == "open" and s.available and s.start_at > after),
                     key=lambda s: s.start_at)[:count]
    assert len(records) == count
    with session_factory.begin() as session:
        slots = [Slot(his_slot_id=r.his_slot_id, department_code=r.department_code,
                      doctor_code=r.doctor_code, service_code=r.service_code,
                      start_at=r.start_at, end_at=r.end_at, capacity=1, booked=0,
                      fee_fen=r.fee_fen) for r in records]
        session.add_all(slots)
        session.flush()
        return [slot.id for slot in slots]


@pytest.fixture
def his():
    simulator = HisSimulator(MAP, tz=load_config({}).tz, seed=1)
    server = MllpServer("127.0.0.1", 0, simulator.handle)
    server.start()
    yield simulator, server.server_address
    server.shutdown()


def _worker(env: dict[str, str], crash_at: str = "") -> subprocess.Popen:
    env = {**env, "ADAPTER_CRASH_AT": crash_at} if crash_at else env
    return subprocess.Popen([sys.executable, "-m", "adapter.cli", "worker"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_worker_killed_after_the_his_booked_it_books_once_after_restart(
    engine, session_factory, his, tmp_path
):
    simulator, address = his
    key_file = tmp_path / "data.key"
    generate_key_file(key_file)
    config = replace(load_config({}), secret_key="k", data_key_file=key_file,
                     alipay_app_id="APP", alipay_seller_id="SELLER",
                     his_mllp=Address(*address[:2]))
    runtime = Runtime(config, engine, session_factory, MAP, Hl7Profile())
    runtime.wallet = FakeWallet()
    runtime.protector = DataProtector(load_keyring(key_file))
    app = create_app(runtime=runtime)

    # A slot of the simulator's pool, in ours.
    pool_simulator_slots(session_factory, simulator, 1)
    runtime.wallet.add_user("c1", user_id="2088000000000777", is_certified=True, name="王五",
                            document_type="RESIDENT_ID",
                            document_number=resident_id("19750505", "135"), sex="M")
    client = app.test_client()
    patient_id = sign_in(client, "c1").json["patients"][0]["id"]
    with session_factory() as session:
        slot_id = session.scalar(select(Slot.id))
    held = client.post("/api/v1/bookings", json={"slot_id": slot_id, "patient_id": patient_id},
                       headers={"Idempotency-Key": str(uuid.uuid4())})
    assert held.status_code == 201, held.json
    payment = client.post("/api/v1/payments", json={"booking_id": held.json["id"]}).json
    with session_factory.begin() as session:
        apply_payment_notification(
            session, PaymentNotice("fake", "n1", "APP", "SELLER", payment["out_trade_no"],
                                   payment["trade_no"], TradeState.PAID,
                                   session.get(Trade, payment["out_trade_no"]).total_fen),
            app_id="APP", merchant_id="SELLER", on_paid=runtime.paid_handlers,
            now=runtime.clock.now())

    env = {**os.environ, "ADAPTER_DATABASE_URL": engine.url.render_as_string(False),
           "ADAPTER_DATA_DIR": str(tmp_path), "ADAPTER_DATA_KEY_FILE": str(key_file),
           "ADAPTER_HIS_MLLP": f"{address[0]}:{address[1]}", "ADAPTER_MAPPINGS_DIR": str(MAPPINGS),
           # The HIS timeouts stay at their defaults (5 s + 30 s): the takeover must not
           # depend on them, only on the lease its worker stopped renewing.
           "ADAPTER_MLLP_LISTEN": "127.0.0.1:1"}

    crashed = _worker(env, crash_at="outbox.after_his_book")
    output, _ = crashed.communicate(timeout=60)
    died = time.monotonic()
    assert crashed.returncode == 70, output  # died at the crash point, after the HIS said AA
    assert [a.placer_appointment_id for a in simulator.appointments.values()] == [held.json["id"]]
    with session_factory() as session:
        assert session.scalar(select(Booking.status)) == "confirming"  # nothing committed

    restarted = _worker(env)
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            with session_factory() as session:
                status = session.scalar(select(Booking.status))
            if status == "confirmed":
                break
            time.sleep(0.3)
        took_over = time.monotonic() - died
    finally:
        restarted.terminate()
        restarted.communicate(timeout=20)
    assert status == "confirmed"
    # the lease ran out within its bound (plus the new worker's start), whatever the HIS timeouts
    assert took_over < LEASE_SECONDS + 15, took_over
    print(f"\ntakeover: confirmed {took_over:.1f} s after the worker died mid-exchange "
          f"(lease {LEASE_SECONDS:.0f} s, HIS timeouts 5 s + 30 s)")
    with session_factory() as session:
        booking = session.scalar(select(Booking))
        outbox = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "his_book"))
    # exactly once at the HIS: one appointment, and ours carries its filler id
    [appointment] = [a for a in simulator.appointments.values() if a.status == "booked"]
    assert appointment.placer_appointment_id == booking.public_id
    assert booking.filler_appointment_id == appointment.filler_appointment_id
    # the crashed try counted (its lease ran out), its effect never committed
    assert outbox.status == "done" and outbox.attempts == 2


def test_a_live_worker_keeps_its_item_while_the_his_is_slow(engine, session_factory,
                                                            monkeypatch, tmp_path):
    """The lease is renewed while the exchange runs: a slower HIS than the lease never puts
    the item in two workers' hands (the HIS sees one request)."""
    import threading

    from adapter.worker import outbox as runner
    monkeypatch.setattr(runner, "LEASE_SECONDS", 0.6)
    key_file = tmp_path / "data.key"
    generate_key_file(key_file)
    runtime = Runtime(replace(load_config({}), secret_key="k", data_key_file=key_file), engine,
                      session_factory, MAP, Hl7Profile())
    calls = []

    def slow(services, job, now):
        calls.append(job.id)
        time.sleep(2.0)  # more than three leases
        with services.session_factory.begin() as session:
            finish(session, job, services.clock.now())

    kinds = {"slow": OutboxKind(slow, link="his")}
    with session_factory.begin() as session:
        enqueue(session, "slow", ("probe", "1"), runtime.clock.now())
    first = threading.Thread(target=runner.deliver_outbox, args=(runtime, kinds))
    first.start()
    time.sleep(0.1)
    others = 0
    while first.is_alive():
        others += runner.deliver_outbox(runtime, kinds)  # another worker, every 0.1 s
        time.sleep(0.1)
    first.join()
    assert len(calls) == 1 and others == 0
