"""Money properties of fee payment over generated interleavings (hypothesis), at the use-case
level with fakes: notifications (late, duplicated, lost, a crash while applying one), lost HIS
answers, refusals, the HIS down past the give-up time, window payments racing the wallet,
lock expiry, refunds the HIS asks for, the wallet down. After the dust settles:

- money in (paid at the wallet) = money posted in the HIS (net of its refunds) + money refunded;
- no charge is paid twice (through us twice, or through us and at the window);
- no refund exceeds its payment.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from adapter.billing.his_refunds import refund_for_his
from adapter.billing.jobs import release_expired_locks
from adapter.db import Base
from adapter.models import OutboxMessage, OutboxStatus, Refund, Trade
from adapter.models_billing import Settlement, SettlementStatus
from adapter.payments.notices import apply_payment_notification
from adapter.ports import (
    HisUnavailable,
    InboundRefused,
    PaymentNotice,
    TradeState,
    WalletUnavailable,
)
from adapter.ports_billing import HisRefundLine
from adapter.refusals import Refusal
from adapter.worker.outbox import deliver_outbox
from tests.fakes import FakeBillingHis, FakeClock, FakeWallet
from tests.unit.billing_kit import charge_ids, his_patient, line, pay, reported
from tests.unit.conftest import START, Hospital

BILLS = 2
# Each step: (action, bill, a number). Listed twice: the steps that move money along.
ACTIONS = ["pay", "pay", "wallet_pays", "notify", "notify", "notify_twice", "crash_notify",
           "window_pays", "his_refund", "his_refund", "deliver", "deliver", "deliver",
           "lose_commit", "his_down", "his_up", "refuse_commit", "accept_commit", "wallet_down",
           "wallet_up", "later"]
STEP = st.tuples(st.sampled_from(ACTIONS), st.integers(0, BILLS - 1), st.integers(1, 100))


class Crash(Exception):
    """The process died inside the transaction (it rolls back)."""


def _reset(runtime) -> Hospital:
    with runtime.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    runtime.wallet, runtime.his = FakeWallet(), FakeBillingHis()
    runtime.clock = FakeClock(START)
    runtime.links = type(runtime.links)()
    return Hospital(runtime)


def _notify(hospital: Hospital, out_trade_no: str, crash: bool = False) -> None:
    factory = hospital.runtime.session_factory
    try:
        with factory.begin() as session:
            trade = session.get(Trade, out_trade_no)
            notice = PaymentNotice(hospital.wallet.platform, "n", hospital.wallet.app_id,
                                   hospital.wallet.merchant_id, out_trade_no, trade.trade_no,
                                   TradeState.PAID, trade.total_fen)
            apply_payment_notification(session, notice, app_id=hospital.wallet.app_id,
                                       merchant_id=hospital.wallet.merchant_id,
                                       on_paid=hospital.runtime.paid_handlers,
                                       now=hospital.clock.now())
            if crash:
                raise Crash
    except Crash:
        pass


def _step(hospital: Hospital, bills: list[list[int]], started: dict[int, str],
          step: tuple[str, int, int]) -> None:
    action, n, amount = step
    his, wallet = hospital.his, hospital.wallet
    out_trade_no = started.get(n)
    if action == "pay":
        try:
            started[n] = pay(hospital, hospital.account_id, bills[n]).out_trade_no
        except (Refusal, HisUnavailable, WalletUnavailable):
            return
        if amount % 3:  # the patient pays at once (two times in three)
            _step(hospital, bills, started, ("wallet_pays", n, amount))
    elif action == "wallet_pays" and out_trade_no and \
            wallet.trades.get(out_trade_no, {}).get("state") is TradeState.CREATED:
        wallet.pay(out_trade_no)  # its notification may never come: queries find it
    elif action in ("notify", "notify_twice", "crash_notify") and out_trade_no and \
            wallet.trades.get(out_trade_no, {}).get("state") is TradeState.PAID:
        for _ in range(2 if action == "notify_twice" else 1):
            _notify(hospital, out_trade_no, crash=action == "crash_notify")
    elif action == "window_pays":
        committed = {c for c, holder in his.locks.items() if holder in his.committed_fen}
        his.paid_at_window |= {f"C{hospital.his_id}-{i}" for i in _lines_of(n)} - committed
    elif action == "his_refund":
        with hospital.runtime.session_factory() as session:
            receipt = session.scalar(select(Settlement.receipt_no).where(
                Settlement.out_trade_no == out_trade_no)) if out_trade_no else None
        if receipt:
            try:
                with hospital.runtime.session_factory.begin() as session:
                    if refund_for_his(session, HisRefundLine(f"HR{n}-{amount}", receipt, "",
                                                             amount * 10),
                                      hospital.clock.now()):
                        hospital.his_refunded += amount * 10
            except InboundRefused:
                pass
    elif action == "deliver":
        deliver_outbox(hospital.runtime)
    elif action == "lose_commit":
        his.lose_commit_answers += 1
    elif action in ("his_down", "his_up"):
        his.down = action == "his_down"
    elif action == "refuse_commit":
        his.refuse_commit_with = "CASH_DESK_CLOSED"
    elif action == "accept_commit":
        his.refuse_commit_with = ""
    elif action in ("wallet_down", "wallet_up"):
        wallet.down = action == "wallet_down"
    elif action == "later":
        hospital.clock.advance(minutes=amount % 40)
        release_expired_locks(hospital.runtime)


def _lines_of(n: int) -> list[int]:
    return [2 * n + 1, 2 * n + 2]


def _settle(hospital: Hospital) -> None:
    """Everything back up; time passes until no work is left."""
    hospital.his.down = hospital.wallet.down = False
    for _ in range(40):
        hospital.clock.advance(minutes=11)
        hospital.runtime.links.succeeded("his")
        hospital.runtime.links.succeeded("wallet")
        release_expired_locks(hospital.runtime)
        deliver_outbox(hospital.runtime)
        with hospital.runtime.session_factory() as session:
            pending = session.scalar(select(OutboxMessage.id).where(
                OutboxMessage.status == OutboxStatus.PENDING).limit(1))
            open_ = session.scalar(select(Settlement.id).where(
                Settlement.status.in_(SettlementStatus.OPEN)).limit(1))
        if pending is None and open_ is None:
            return
    raise AssertionError("work left after the systems came back")


@pytest.mark.slow
@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(first=st.lists(st.tuples(st.just("pay"), st.integers(0, BILLS - 1), st.integers(1, 100)),
                     min_size=1, max_size=2),
       steps=st.lists(STEP, min_size=1, max_size=40),
       cancelled=st.lists(st.integers(1, 800), max_size=3))
def test_every_fen_is_posted_or_refunded_and_nothing_is_paid_twice(runtime, first, steps,
                                                                    cancelled):
    runtime.config = replace(runtime.config, bill_commit_give_up_minutes=30)
    hospital = _reset(runtime)
    hospital.account_id, hospital.his_id = his_patient(hospital)
    hospital.his_refunded = 0
    lines = [line(hospital.his_id, i, amount=1000 * i, group=f"RX{(i + 1) // 2}")
             for i in range(1, 2 * BILLS + 1)]
    reported(hospital, hospital.his_id, *lines)
    bills = [charge_ids(hospital, *(f"C{hospital.his_id}-{i}" for i in _lines_of(n)))
             for n in range(BILLS)]
    started: dict[int, str] = {}
    for step in first + steps:  # a bill is opened first, then anything may happen
        _step(hospital, bills, started, step)
    _settle(hospital)
    # Tests cancelled afterwards: the HIS asks for refunds (some more than is left), resent.
    for k, tenths in enumerate(cancelled):
        for _resend in range(2):
            _step(hospital, bills, started, ("his_refund", k % BILLS, tenths))
    _settle(hospital)

    his, wallet = hospital.his, hospital.wallet
    money_in = sum(t["total_fen"] for t in wallet.trades.values()
                   if t["state"] is TradeState.PAID)
    refunded = sum(sum(t["refunds"].values()) for t in wallet.trades.values())
    posted = sum(his.committed_fen.values()) - hospital.his_refunded
    assert money_in == posted + refunded, (money_in, posted, refunded)

    paid_through_us: list[str] = []
    for settlement_no in his.receipts:
        paid_through_us += [c for c, s in his.locks.items() if s == settlement_no]
    assert len(paid_through_us) == len(set(paid_through_us))
    assert not set(paid_through_us) & his.paid_at_window

    with runtime.session_factory() as session:
        for trade in session.scalars(select(Trade)):
            asked = sum(r.refund_fen for r in session.scalars(
                select(Refund).where(Refund.out_trade_no == trade.out_trade_no)))
            assert asked <= trade.total_fen and trade.refunded_fen <= trade.total_fen
        for settlement in session.scalars(select(Settlement)):
            assert settlement.status not in SettlementStatus.OPEN
            assert settlement.self_pay_fen + settlement.insurance_fund_fen + \
                settlement.personal_account_fen == settlement.total_fen
            assert (settlement.insurance_fund_fen, settlement.personal_account_fen) == (0, 0)
    for out_trade_no, trade in wallet.trades.items():
        assert sum(trade["refunds"].values()) <= trade["total_fen"], out_trade_no
