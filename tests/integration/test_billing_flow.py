"""Fee payment end to end on SQLite and PostgreSQL over the real wires: the HIS simulator's
charges (DFT^P03) through the real listener and inbound runner, the pre-settlement and commit
over MLLP to the simulator's cash desk, the trade at the wallet sandbox, whose signed
notification reaches the adapter's /notify/alipay over HTTP, a lost commit answer settled by
the status query, a cancelled test refunded once though the HIS sends it twice, and the HIS's
settlement list of the day."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import replace

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from adapter import create_app
from adapter.billing.paying import pay_bill
from adapter.config import Address, load_config
from adapter.his.header import parse_ack
from adapter.his.listener import make_listener
from adapter.his.mllp import MllpServer
from adapter.his.mllp_client import MllpClient
from adapter.his.profile import Hl7Profile
from adapter.his.simulator import HisSimulator
from adapter.his.simulator.cashier_wire import build_dft_refunds
from adapter.models import (
    OutboxMessage,
    Patient,
    Refund,
    Trade,
    TradeStatus,
    Verification,
    WalletAccount,
)
from adapter.models_billing import Charge, Settlement, SettlementStatus
from adapter.ports_billing import SettlementKind
from adapter.protection import KEY_BYTES, DataProtector, Keyring
from adapter.runtime import Runtime
from adapter.wallet.alipay.client import AlipayClient
from adapter.wallet.alipay.gateway import AlipayWalletGateway
from adapter.worker.inbound import process_inbound
from adapter.worker.outbox import deliver_outbox
from tests.integration.test_crash_recovery import MAP
from tests.integration.test_wallet_sandbox import (  # noqa: F401 - the sandbox's fixtures
    ADULT,
    APP_ID,
    SELLER_ID,
    app_keys,
    sandbox,
)

TZ = load_config({}).tz
HIS_PATIENT = "P000123"  # the simulator's first demo patient


@pytest.fixture
def wires(engine, session_factory, sandbox, app_keys):
    his = HisSimulator(MAP, tz=TZ, seed=3, today=dt.datetime.now(TZ).date())
    his_server = MllpServer("127.0.0.1", 0, his.handle, on_connect=his.on_connect)
    his_server.start()
    config = replace(load_config({}), secret_key="k", mllp_listen=Address("127.0.0.1", 0),
                     his_mllp=Address(*his_server.server_address[:2]),
                     alipay_app_id=APP_ID, alipay_seller_id=SELLER_ID,
                     public_url="https://hospital.example")
    runtime = Runtime(config, engine, session_factory, MAP, Hl7Profile())
    runtime.protector = DataProtector(Keyring(active="k1", keys={"k1": b"\x01" * KEY_BYTES},
                                              index_key=b"\x02" * KEY_BYTES))
    web = make_server("127.0.0.1", 0, create_app(runtime=runtime), threaded=True)
    threading.Thread(target=web.serve_forever, args=(0.05,), daemon=True).start()
    runtime.wallet = AlipayWalletGateway(AlipayClient(
        sandbox.gateway, APP_ID, app_keys[0], sandbox.state.platform_public_pem,
        seller_id=SELLER_ID, notify_url=f"http://127.0.0.1:{web.server_port}/notify/alipay",
        timeout=(2.0, 3.0)))
    listener = make_listener(runtime.config, session_factory, runtime.profile)
    listener.start()
    to_listener = MllpClient(*listener.server_address[:2], connect_timeout=2, ack_timeout=10)
    with session_factory.begin() as session:
        account = WalletAccount(platform="alipay", user_id=ADULT, is_certified=True)
        session.add(account)
        session.flush()
        session.add(Patient(
            wallet_account_id=account.id, relation="self", name="张伟",
            document_type="RESIDENT_ID", document_number_enc=b"-", document_index="idx",
            document_masked="1*****************0", birth_date=dt.date(1985, 6, 12), sex="M",
            his_patient_id=HIS_PATIENT, verification=Verification.SELF))
        account_id = account.id
    yield runtime, his, sandbox, to_listener, account_id
    to_listener.close()
    listener.shutdown()
    web.shutdown()
    runtime.his.close()
    his_server.shutdown()


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def _trade_status(runtime, out_trade_no: str) -> str:
    with runtime.session_factory() as session:
        return session.get(Trade, out_trade_no).status


def test_charges_paid_in_the_sandbox_are_posted_once_and_a_cancelled_test_refunded_once(wires):
    runtime, his, sandbox, to_listener, account_id = wires
    now = dt.datetime.now(TZ)
    dft = his.consultation_finished(HIS_PATIENT, "V20300307001", "PED")  # the doctor's orders
    lines = list(his.cashier.charges.values())
    assert parse_ack(to_listener.send(dft)).code == "AA"
    assert process_inbound(runtime) == 1
    with runtime.session_factory() as session:
        ids = list(session.scalars(select(Charge.id).order_by(Charge.id)))
        assert [c.amount_fen for c in session.scalars(select(Charge).order_by(Charge.id))] \
            == [c.amount_fen for c in lines]

    started = pay_bill(runtime, account_id, ids, runtime.clock.now())  # pre-settled over MLLP
    assert started.total_fen == sum(c.amount_fen for c in lines)
    requests.post(f"{sandbox.url}/_sandbox/pay/{started.out_trade_no}",
                  timeout=5).raise_for_status()  # the patient pays on the cashier page
    _wait(lambda: _trade_status(runtime, started.out_trade_no) == TradeStatus.PAID)

    his.cashier.lose_commit_answers = 1  # the commit's answer is lost on the wire
    for _ in range(10):
        deliver_outbox(runtime)
        with runtime.session_factory() as session:
            settlement = session.scalar(select(Settlement))
        if settlement.status == SettlementStatus.COMMITTED:
            break
        runtime.links.succeeded("his")
        time.sleep(0.05)
        with runtime.session_factory.begin() as session:  # the retry is due now
            for message in session.scalars(select(OutboxMessage)):
                message.next_attempt_at = runtime.clock.now()
    assert settlement.status == SettlementStatus.COMMITTED and settlement.commit_sent == 1
    assert settlement.invoice_no.startswith("EI") and settlement.invoice_url
    payments = [r for r in runtime.his.bill_settlement_list(now.date())
                if r.kind is SettlementKind.PAYMENT]
    assert [(r.receipt_no, r.out_trade_no, r.amount_fen) for r in payments] == [
        (settlement.receipt_no, started.out_trade_no, started.total_fen)]  # posted once

    refund = his.cashier.cancel_test(settlement.receipt_no, lines[1].his_charge_id)
    for n in (1, 2):  # the HIS sends it twice (a new control id, the same refund id)
        message = build_dft_refunds(his.profile, f"HIS-RF-{n}", now, HIS_PATIENT, [refund])
        assert parse_ack(to_listener.send(message.encode())).code == "AA"
    assert process_inbound(runtime) == 2
    deliver_outbox(runtime)
    with runtime.session_factory() as session:
        [row] = session.scalars(select(Refund))
        assert (row.refund_fen, row.status) == (lines[1].amount_fen, "done")
    trade = requests.get(f"{sandbox.url}/_sandbox/trades/{started.out_trade_no}",
                         timeout=5).json()
    assert len(trade["refunds"]) == 1
    listed = runtime.his.bill_settlement_list(now.date())  # over the wire (QBP^ZB6)
    assert sorted(r.kind for r in listed) == [SettlementKind.PAYMENT, SettlementKind.REFUND]
    own = his.bill_settlement_list(now.date())  # the simulator's own list: the same lines
    assert [(r.receipt_no, r.amount_fen, r.kind) for r in listed] == [
        (r.receipt_no, r.amount_fen, r.kind) for r in own]
