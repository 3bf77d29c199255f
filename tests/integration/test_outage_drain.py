"""A HIS outage with a backlog of paid bookings, over real MLLP to the HIS simulator: items
wait for the link without burning attempts, and the whole backlog drains within seconds of
the link's return (issue: "a 60 s outage with at least 100 paid bookings drains within 15 s").

The worker's runs are driven by hand on a FakeClock (one run per simulated second, as the
scheduler does); the exchanges are real, and the drain's wall time is printed (`pytest -s`).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import replace

import pytest
import requests
from sqlalchemy import func, select

from adapter.config import Address, load_config
from adapter.db import write_transaction
from adapter.his.mllp import MllpServer
from adapter.his.profile import Hl7Profile
from adapter.his.simulator import HisSimulator
from adapter.identity.patients import sign_in_with_wallet
from adapter.models import Booking, BookingStatus, OutboxMessage, Refund, Trade
from adapter.payments.notices import apply_payment_notification
from adapter.payments.refunds import refund_in_full
from adapter.ports import PaymentNotice, TradeState
from adapter.protection import KEY_BYTES, DataProtector, Keyring
from adapter.registration.booking import hold_slot
from adapter.registration.payment import pay_booking
from adapter.registration.policy import RegistrationPolicy
from adapter.registration.rules import BookingRules
from adapter.runtime import Runtime
from adapter.wallet.alipay.gateway import AlipayWalletGateway
from adapter.worker.outbox import deliver_outbox
from tests.fakes import FakeClock, FakeWallet
from tests.integration.test_crash_recovery import MAP, pool_simulator_slots
from tests.integration.test_registration import resident_id
from tests.integration.test_wallet_sandbox import (  # noqa: F401 - the sandbox's fixtures
    ADULT,
    app_keys,
    client,
    receiver,
    sandbox,
)

BOOKINGS = 100
OUTAGE_SECONDS = 60


@pytest.fixture
def his():
    simulator = HisSimulator(MAP, tz=load_config({}).tz, seed=3, slots_per_session=30)
    server = MllpServer("127.0.0.1", 0, simulator.handle, on_connect=simulator.on_connect)
    server.start()
    yield simulator, server.server_address
    server.shutdown()


def _count(session_factory, status: str) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(Booking)
                              .where(Booking.status == status))


@pytest.mark.slow
def test_a_backlog_of_paid_bookings_drains_within_seconds_of_the_his_return(
        engine, session_factory, his):
    simulator, address = his
    now = dt.datetime.now(dt.UTC)
    config = replace(load_config({}), secret_key="k", his_mllp=Address(*address[:2]))
    runtime = Runtime(config, engine, session_factory, MAP, Hl7Profile(),
                      booking_rules=BookingRules(per_id_per_day=5),
                      policy=RegistrationPolicy(release_delay_min_seconds=0,
                                                release_delay_max_seconds=0),
                      clock=FakeClock(now))
    runtime.wallet = FakeWallet()
    runtime.protector = DataProtector(Keyring(active="k1", keys={"k1": b"\x01" * KEY_BYTES},
                                              index_key=b"\x02" * KEY_BYTES))
    # The simulator's open slots, in our pool; one patient each.
    slot_ids = pool_simulator_slots(session_factory, simulator, BOOKINGS)
    patients = []
    for n, _slot in enumerate(slot_ids):
        runtime.wallet.add_user(f"c{n}", user_id=f"2088{n:012d}", is_certified=True,
                                name=f"测试{n}", document_type="RESIDENT_ID",
                                document_number=resident_id("19800101", f"{2 * n + 1:03d}"),
                                sex="M")
        with session_factory.begin() as session:
            signed = sign_in_with_wallet(session, runtime.wallet, runtime.protector, f"c{n}",
                                         now.astimezone(config.tz).date(), now=now)
        patients.append((signed.account_id, signed.self_patient_id))
    while deliver_outbox(runtime):  # every patient found in or added to the HIS
        pass

    simulator.refuse_connections, simulator.drop_rate = True, 1.0  # the HIS goes away
    for n, ((account_id, patient_id), slot_id) in enumerate(zip(patients, slot_ids,
                                                                strict=True)):
        with session_factory.begin() as session:
            write_transaction(session)
            public_id = hold_slot(session, account_id=account_id, patient_id=patient_id,
                                  slot_id=slot_id, mappings=MAP, rules=runtime.booking_rules,
                                  policy=runtime.policy, tz=config.tz,
                                  now=runtime.clock.now()).public_id
        started = pay_booking(runtime, account_id, public_id, runtime.clock.now())
        runtime.wallet.pay(started.out_trade_no)
        with session_factory.begin() as session:
            apply_payment_notification(
                session, PaymentNotice("fake", f"n{n}", "APP", "SELLER", started.out_trade_no,
                                       started.trade_no, TradeState.PAID, started.total_fen),
                app_id="APP", merchant_id="SELLER", on_paid=runtime.paid_handlers,
                now=runtime.clock.now())
    assert _count(session_factory, BookingStatus.CONFIRMING) == BOOKINGS
    for _ in range(OUTAGE_SECONDS):  # the worker runs every second through the outage
        deliver_outbox(runtime)
        runtime.clock.advance(seconds=1)
    with session_factory() as session:
        burnt = session.scalar(select(func.sum(OutboxMessage.attempts))
                               .where(OutboxMessage.kind == "his_book"))
    assert burnt <= 3, burnt  # only the attempts that opened the breaker
    assert _count(session_factory, BookingStatus.CONFIRMING) == BOOKINGS

    simulator.refuse_connections, simulator.drop_rate = False, 0.0  # the HIS is back
    back = time.monotonic()
    runs = 0
    while _count(session_factory, BookingStatus.CONFIRMED) < BOOKINGS and runs < 60:
        deliver_outbox(runtime)
        runtime.clock.advance(seconds=1)
        runs += 1
    drained = time.monotonic() - back
    assert _count(session_factory, BookingStatus.CONFIRMED) == BOOKINGS
    # Worker time (one run a second): the breaker's next probe, at most 5 s, then the drain.
    # The wall time of the exchanges is printed, not asserted (a figure, not a unit test's).
    assert runs <= 15, runs
    print(f"\noutage drain: {BOOKINGS} paid bookings after a {OUTAGE_SECONDS} s outage "
          f"confirmed {runs} worker run(s) after the HIS returned, {drained:.2f} s of exchanges")
    booked = [a for a in simulator.appointments.values() if a.status == "booked"]
    assert len(booked) == BOOKINGS  # each once


REFUNDS = 30


@pytest.mark.slow
def test_refunds_wait_through_a_wallet_outage_and_drain_when_it_returns(
        engine, session_factory, sandbox, client):
    now = dt.datetime.now(dt.UTC)
    runtime = Runtime(replace(load_config({}), secret_key="k"), engine, session_factory, MAP,
                      Hl7Profile(), clock=FakeClock(now))
    runtime.wallet = AlipayWalletGateway(client)
    with session_factory.begin() as session:
        for n in range(REFUNDS):
            out_trade_no = f"RB{n:04d}"
            trade_no = client.trade_create(out_trade_no, 2500, "挂号费", ADULT,
                                           now + dt.timedelta(minutes=15))
            requests.post(f"{sandbox.url}/_sandbox/pay/{out_trade_no}",
                          timeout=5).raise_for_status()
            session.add(Trade(out_trade_no=out_trade_no, platform="alipay",
                              purpose="registration", reference=str(n), subject="挂号费",
                              total_fen=2500, buyer_id=ADULT, status="paid", trade_no=trade_no,
                              paid_at=now, expire_at=now + dt.timedelta(minutes=15)))
            session.flush()
            refund_in_full(session, out_trade_no, "test", now)
    sandbox.state.set_knobs({"system_error_rate": 1.0})  # the wallet cannot say anything
    for _ in range(OUTAGE_SECONDS):
        deliver_outbox(runtime)
        runtime.clock.advance(seconds=1)
    with session_factory() as session:
        burnt = session.scalar(select(func.sum(OutboxMessage.attempts)))
        done = session.scalar(select(func.count()).select_from(Refund)
                              .where(Refund.status == "done"))
    assert burnt <= 3 and done == 0, (burnt, done)
    sandbox.state.set_knobs({"system_error_rate": 0.0})
    runs = 0
    while runs < 60:
        deliver_outbox(runtime)
        runtime.clock.advance(seconds=1)
        runs += 1
        with session_factory() as session:
            done = session.scalar(select(func.count()).select_from(Refund)
                                  .where(Refund.status == "done"))
        if done == REFUNDS:
            break
    assert done == REFUNDS and runs <= 15, (done, runs)
    for n in range(REFUNDS):  # each refunded once at the wallet
        trade = requests.get(f"{sandbox.url}/_sandbox/trades/RB{n:04d}", timeout=5).json()
        assert trade["refunded_amount"] == "25.00" and len(trade["refunds"]) == 1
