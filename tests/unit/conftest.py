"""Use-case fixtures: a Runtime on an in-memory SQLite schema (migrated once per session,
emptied after each test), with the fake HIS, the fake wallet and a FakeClock.

``hospital`` wraps them with the steps a patient and the worker take, each a direct call of
one use case: sign in, hold a slot, pay, a payment notice, one outbox round.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.pool import StaticPool
from stdnum.cn import ric

from adapter import migrate
from adapter.config import load_config
from adapter.db import Base, make_engine, make_session_factory, write_transaction
from adapter.his.profile import Hl7Profile
from adapter.identity.patients import sign_in_with_wallet
from adapter.mappings import load_mappings
from adapter.models import Booking, OutboxMessage, Refund, Slot, Trade
from adapter.payments.notices import apply_payment_notification
from adapter.ports import PaymentNotice, TradeState
from adapter.protection import KEY_BYTES, DataProtector, Keyring
from adapter.registration.booking import hold_slot
from adapter.registration.cancelling import cancel_booking
from adapter.registration.payment import PaymentStarted, pay_booking
from adapter.registration.policy import RegistrationPolicy
from adapter.registration.rules import BookingRules
from adapter.runtime import Runtime
from adapter.worker.outbox import deliver_outbox
from tests.conftest import MAPPINGS
from tests.fakes import FakeClock, FakeHis, FakeWallet

MAP = load_mappings(MAPPINGS)
TZ = load_config({}).tz
DOCTOR = MAP.doctors_of("PED")[0]
FEE = MAP.fee_fen(DOCTOR.service_code)
# A Monday morning in the hospital's zone; slots are three days ahead: released (PED opens
# seven days ahead) and cancellable (until 15:00 the day before).
START = dt.datetime(2030, 3, 4, 8, 0, tzinfo=TZ).astimezone(dt.UTC)
VISIT = dt.datetime(2030, 3, 7, 9, 0, tzinfo=TZ).astimezone(dt.UTC)
RELEASE_DELAY = 60  # seconds before a cancelled place returns to the pool


def resident_id(n: int) -> str:
    """A made-up resident ID number with a correct GB 11643 check digit."""
    body = f"11010119800101{2 * n + 1:03d}"
    return body + ric.calc_check_digit(body + "0")


@pytest.fixture(scope="session")
def memory_engine() -> Engine:
    # One connection for the whole session (StaticPool), so the in-memory schema outlives it.
    engine = make_engine("sqlite:///:memory:", poolclass=StaticPool)
    migrate.upgrade(engine)
    return engine


@pytest.fixture
def runtime(memory_engine: Engine) -> Runtime:
    """A Runtime with the fakes in place of the HIS and the wallet, and a FakeClock."""
    # One delivery thread: these tests are about each item's fate (and share one in-memory
    # connection); concurrency is tested on real databases (tests/integration).
    config = replace(load_config({}), secret_key="k", outbox_concurrency=1)
    policy = RegistrationPolicy(release_delay_min_seconds=RELEASE_DELAY,
                                release_delay_max_seconds=RELEASE_DELAY, outbox_max_attempts=3)
    runtime = Runtime(config, memory_engine, make_session_factory(memory_engine), MAP,
                      Hl7Profile(), booking_rules=BookingRules(), policy=policy,
                      clock=FakeClock(START))
    runtime.wallet, runtime.his = FakeWallet(), FakeHis()
    runtime.protector = DataProtector(Keyring(active="k1", keys={"k1": b"\x01" * KEY_BYTES},
                                              index_key=b"\x02" * KEY_BYTES))
    yield runtime
    with memory_engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


class Hospital:
    """The runtime, and the steps of registration as direct use-case calls."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.his: FakeHis = runtime.his
        self.wallet: FakeWallet = runtime.wallet
        self.clock: FakeClock = runtime.clock
        self.rng = random.Random(7)
        self._slots = 0

    # --- the pool and the patients ------------------------------------------------------------

    def slot(self, *, capacity: int = 1, doctor=DOCTOR, start: dt.datetime = VISIT) -> int:
        """A slot of the pool; each new one ten minutes after the last."""
        start = start + dt.timedelta(minutes=10 * self._slots)
        self._slots += 1
        with self.runtime.session_factory.begin() as session:
            slot = Slot(his_slot_id=f"S{self._slots}", department_code="PED",
                        doctor_code=doctor.code, service_code=doctor.service_code,
                        start_at=start, end_at=start + dt.timedelta(minutes=10),
                        capacity=capacity, booked=0, fee_fen=MAP.fee_fen(doctor.service_code),
                        synced_at=self.clock.now())
            session.add(slot)
            session.flush()
            return slot.id

    def patient(self, n: int = 1) -> tuple[int, int]:
        """A certified wallet user signed in; returns (account id, their own patient id)."""
        self.wallet.add_user(f"code{n}", user_id=f"2088{n:012d}", is_certified=True,
                             name=f"测试{n}", document_type="RESIDENT_ID",
                             document_number=resident_id(n), sex="M")
        now = self.clock.now()
        with self.runtime.session_factory.begin() as session:
            signed_in = sign_in_with_wallet(session, self.wallet, self.runtime.protector,
                                            f"code{n}", now.astimezone(TZ).date(), now=now)
        return signed_in.account_id, signed_in.self_patient_id

    # --- a patient's steps --------------------------------------------------------------------

    def hold(self, account_id: int, patient_id: int, slot_id: int) -> str:
        """Hold a slot (raises Refusal); returns the booking's public id."""
        runtime = self.runtime
        with runtime.session_factory.begin() as session:
            write_transaction(session)
            booking = hold_slot(session, account_id=account_id, patient_id=patient_id,
                                slot_id=slot_id, mappings=runtime.mappings,
                                rules=runtime.booking_rules, policy=runtime.policy,
                                tz=runtime.config.tz, now=self.clock.now())
            return booking.public_id

    def pay(self, account_id: int, public_id: str) -> PaymentStarted:
        """Open the booking's trade at the wallet (the buyer has not paid yet)."""
        return pay_booking(self.runtime, account_id, public_id, self.clock.now())

    def notify(self, out_trade_no: str, **changes) -> str:
        """A verified payment notice from the wallet, applied; returns the outcome.

        The notice matches the order and says paid unless ``changes`` (PaymentNotice fields)
        say otherwise."""
        with self.runtime.session_factory.begin() as session:
            trade = session.get(Trade, out_trade_no)
            notice = PaymentNotice(self.wallet.platform, f"n-{out_trade_no}", self.wallet.app_id,
                                   self.wallet.merchant_id, out_trade_no,
                                   trade.trade_no if trade else "", TradeState.PAID,
                                   trade.total_fen if trade else 1)
            return apply_payment_notification(
                session, replace(notice, **changes), app_id=self.wallet.app_id,
                merchant_id=self.wallet.merchant_id, on_paid=self.runtime.paid_handlers,
                now=self.clock.now())

    def paid(self, account_id: int, public_id: str) -> str:
        """Pay a held booking in the wallet and apply its notice; returns the out_trade_no."""
        out_trade_no = self.pay(account_id, public_id).out_trade_no
        self.wallet.pay(out_trade_no)
        assert self.notify(out_trade_no) == "applied"
        return out_trade_no

    def confirmed(self, n: int = 1, slot_id: int | None = None) -> tuple[int, str, str]:
        """A booking held, paid and confirmed by the HIS; (account id, public id, trade)."""
        account_id, patient_id = self.patient(n)
        public_id = self.hold(account_id, patient_id, slot_id or self.slot())
        out_trade_no = self.paid(account_id, public_id)
        self.deliver()
        assert self.booking(public_id).status == "confirmed"
        return account_id, public_id, out_trade_no

    def cancel(self, account_id: int, public_id: str) -> None:
        """The patient cancels (raises Refusal)."""
        cancel_booking(self.runtime, account_id, public_id, self.clock.now(), self.rng)

    # --- the HIS and the worker ---------------------------------------------------------------

    def hear(self, event: object) -> None:
        """A HIS event applied by the handlers the flows declare for it, in one transaction
        (as the inbound runner does once it has read the stored message)."""
        flows = self.runtime.flows
        with self.runtime.session_factory.begin() as session:
            if type(event) in flows.batches:
                flows.batches[type(event)](self.runtime, session, [event], self.clock.now())
            for handle in flows.events.get(type(event), ()):
                handle(self.runtime, session, event, self.clock.now())

    def deliver(self) -> int:
        """One outbox round at the clock's time."""
        return deliver_outbox(self.runtime)

    # --- what the database says ---------------------------------------------------------------

    def booking(self, public_id: str) -> Booking:
        with self.runtime.session_factory() as session:
            return session.scalar(select(Booking).where(Booking.public_id == public_id))

    def booked(self, slot_id: int) -> int:
        with self.runtime.session_factory() as session:
            return session.get(Slot, slot_id).booked

    def trade(self, out_trade_no: str) -> Trade:
        with self.runtime.session_factory() as session:
            return session.get(Trade, out_trade_no)

    def refunds(self) -> list[Refund]:
        with self.runtime.session_factory() as session:
            return list(session.scalars(select(Refund).order_by(Refund.out_request_no)))

    def outbox(self, kind: str | None = None, status: str | None = None) -> list[OutboxMessage]:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if kind is not None:
            query = query.where(OutboxMessage.kind == kind)
        if status is not None:
            query = query.where(OutboxMessage.status == status)
        with self.runtime.session_factory() as session:
            return list(session.scalars(query))

    def told(self, user_n: int = 1) -> list[str]:
        """The wallet messages the fake wallet delivered to user ``user_n``."""
        return [text for user_id, text in self.wallet.messages if user_id == f"2088{user_n:012d}"]


@pytest.fixture
def hospital(runtime: Runtime) -> Hospital:
    return Hospital(runtime)
