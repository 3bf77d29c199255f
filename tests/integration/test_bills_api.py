"""Bills through the API on SQLite and PostgreSQL, with fake HIS and wallet ports: the list,
paying a chosen set (the HIS's total), the receipt with next stops, refusals in one shape."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from sqlalchemy import select

from adapter import create_app
from adapter.billing.charges import charges_reported
from adapter.billing.paying import pay_bill
from adapter.config import load_config
from adapter.his.profile import Hl7Profile
from adapter.mappings import load_mappings
from adapter.models import Patient, Trade
from adapter.models_billing import Settlement, SettlementLine, SettlementStatus
from adapter.payments.notices import apply_payment_notification
from adapter.ports import PaymentNotice, TradeState
from adapter.ports_billing import ChargeLine, ChargesReported
from adapter.protection import DataProtector, generate_key_file, load_keyring
from adapter.refusals import Refusal
from adapter.runtime import Runtime
from adapter.worker.outbox import deliver_outbox
from tests.conftest import MAPPINGS
from tests.fakes import FakeBillingHis, FakeWallet, sign_in
from tests.integration.test_registration import resident_id

MAP = load_mappings(MAPPINGS)


@pytest.fixture
def system(engine, session_factory, tmp_path):
    key_file = tmp_path / "data.key"
    generate_key_file(key_file)
    config = replace(load_config({}), secret_key="k", data_key_file=key_file,
                     alipay_app_id="APP", alipay_seller_id="SELLER")
    runtime = Runtime(config, engine, session_factory, MAP, Hl7Profile())
    runtime.wallet, runtime.his = FakeWallet(), FakeBillingHis()
    runtime.protector = DataProtector(load_keyring(key_file))
    return create_app(runtime=runtime), runtime


def _signed_in(app, runtime, n: int = 1):
    client = app.test_client()
    runtime.wallet.add_user(f"code{n}", user_id=f"2088{n:012d}", is_certified=True,
                            name=f"测试{n}", document_type="RESIDENT_ID",
                            document_number=resident_id("19800101", f"{2 * n + 1:03d}"),
                            sex="M")
    signed_in = sign_in(client, f"code{n}")
    assert signed_in.status_code == 201
    deliver_outbox(runtime)  # the HIS finds or adds the person: their HIS id is kept
    with runtime.session_factory() as session:
        his_id = session.get(Patient, signed_in.json["patients"][0]["id"]).his_patient_id
    return client, his_id


def _charges(runtime, his_id: str) -> None:
    lines = (ChargeLine(f"{his_id}-1", his_id, "V1", "LAB_CBC", "血常规", "1", 2500, 2500,
                        "PED", "RX1"),
             ChargeLine(f"{his_id}-2", his_id, "V1", "EXAM_CXR", "胸片", "1", 7000, 7000,
                        "PED", "RX1"))
    runtime.his.charges.update({c.his_charge_id: c for c in lines})
    with runtime.session_factory.begin() as session:
        charges_reported(runtime, session, ChargesReported("M1", his_id, lines),
                         runtime.clock.now())


def _notify(runtime, out_trade_no: str) -> None:
    with runtime.session_factory.begin() as session:
        trade = session.get(Trade, out_trade_no)
        apply_payment_notification(
            session, PaymentNotice("fake", "n", "APP", "SELLER", out_trade_no, trade.trade_no,
                                   TradeState.PAID, trade.total_fen),
            app_id="APP", merchant_id="SELLER", on_paid=runtime.paid_handlers,
            now=runtime.clock.now())


def test_list_pay_and_read_the_receipt_with_next_stops(system):
    app, runtime = system
    client, his_id = _signed_in(app, runtime)
    _charges(runtime, his_id)
    bills = client.get("/api/v1/bills").json
    charges = bills["patients"][0]["charges"]
    assert [c["amount"] for c in charges] == ["25.00", "70.00"] and bills["current"] is True
    runtime.his.amount_changes[f"{his_id}-2"] = 6800  # the HIS knows better: refused first
    ids = [c["id"] for c in charges]
    changed = client.post("/api/v1/payments", json={"charge_ids": ids})
    assert changed.status_code == 409 and changed.json["error"] == "bill.changed"
    runtime.his.charges[f"{his_id}-2"] = replace(runtime.his.charges[f"{his_id}-2"],
                                                 amount_fen=6800)
    assert client.get("/api/v1/bills").json["patients"][0]["charges"][1]["amount"] == "68.00"
    payment = client.post("/api/v1/payments", json={"charge_ids": ids})
    assert payment.status_code == 201, payment.json
    assert payment.json["amount"] == "93.00" and payment.json["bill_id"]
    runtime.wallet.pay(payment.json["out_trade_no"])
    _notify(runtime, payment.json["out_trade_no"])
    deliver_outbox(runtime)
    bill = client.get(f"/api/v1/bills/{payment.json['bill_id']}?lang=en").json
    assert bill["status"] == "committed" and bill["receipt"]["receipt_no"] == "RC000001"
    assert bill["split"] == {"self_pay": "93.00", "insurance_fund": "0.00",
                             "personal_account": "0.00"}
    assert [s["place"] for s in bill["next_stops"]] == ["Laboratory blood draw",
                                                        "Paediatric ultrasound room"]
    assert client.get("/api/v1/bills").json["patients"][0]["charges"] == []


def test_bad_and_foreign_bill_requests_are_refused_in_the_error_shape(system):
    app, runtime = system
    client, his_id = _signed_in(app, runtime)
    other, _ = _signed_in(app, runtime, 2)
    _charges(runtime, his_id)
    ids = [c["id"] for c in client.get("/api/v1/bills").json["patients"][0]["charges"]]
    for bad in ({"charge_ids": []}, {"charge_ids": ["1"]}, {"charge_ids": [0]},
                {"charge_ids": ids, "booking_id": "B1"}, {"charge_ids": list(range(1, 60))}):
        answer = client.post("/api/v1/payments", json=bad)
        assert answer.status_code == 400 and answer.json["error"] == "payment.fields", bad
    foreign = other.post("/api/v1/payments", json={"charge_ids": ids})
    assert foreign.status_code == 404 and foreign.json["error"] == "bill.unknown"
    assert client.get("/api/v1/bills/S..bad").status_code == 404
    assert client.get("/api/v1/bills/S000000000000000000").status_code == 404
    runtime.his.paid_at_window.add(f"{his_id}-1")
    window = client.post("/api/v1/payments", json={"charge_ids": ids[:1]})
    assert window.status_code == 409 and window.json["error"] == "bill.paid_elsewhere"
    assert "血常规" in window.json["message"]
    runtime.his.down = True
    down = client.post("/api/v1/payments", json={"charge_ids": ids[1:]})
    assert down.status_code == 503 and down.json["error"] == "his.unavailable"


def test_the_bills_pages_come_in_chinese_and_english(system):
    app, runtime = system
    client, his_id = _signed_in(app, runtime)
    assert client.get("/h5/bills").status_code == 200
    chinese = client.get("/h5/bills").get_data(as_text=True)
    assert "门诊缴费" in chinese and "/static/h5/bills.js" in chinese
    english = client.get("/h5/bills?lang=en").get_data(as_text=True)
    assert "Pay bills" in english and '"bill_pay": "Pay"' in english
    receipt = client.get("/h5/bills/S1?lang=en").get_data(as_text=True)
    assert "Electronic receipt" in receipt and "Next, go to" in receipt
    assert '"bill_id": "S1"' in receipt
    assert app.test_client().get("/h5/bills").status_code == 302  # sign in first


def test_where_the_profile_queries_the_his_the_list_is_asked_for_and_kept(system):
    app, runtime = system
    runtime.profile = replace(runtime.profile, charge_source="query")
    client, his_id = _signed_in(app, runtime)
    line = ChargeLine(f"{his_id}-9", his_id, "V2", "DRUG_AMOX", "阿莫西林", "2", 1800, 3600,
                      "PED", "RX9")
    runtime.his.charges[line.his_charge_id] = line
    bills = client.get("/api/v1/bills").json
    assert bills["current"] is True
    assert [(c["item_name"], c["quantity"], c["unit_price"], c["amount"])
            for c in bills["patients"][0]["charges"]] == [("阿莫西林", "2", "18.00", "36.00")]
    assert client.get("/api/v1/bills").json["patients"][0]["charges"][0]["id"] == \
        bills["patients"][0]["charges"][0]["id"]  # kept once by the HIS's id
    runtime.his.down = True  # the HIS cannot answer: the list kept is shown, marked stale
    stale = client.get("/api/v1/bills").json
    assert stale["current"] is False and len(stale["patients"][0]["charges"]) == 1


def test_many_requests_racing_for_one_charge_lock_it_once(system):
    app, runtime = system
    client, his_id = _signed_in(app, runtime)
    _charges(runtime, his_id)
    ids = [c["id"] for c in client.get("/api/v1/bills").json["patients"][0]["charges"]]
    with runtime.session_factory() as session:
        account_id = session.scalar(select(Patient.wallet_account_id)
                                    .where(Patient.his_patient_id == his_id))
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def race(chosen: list[int]) -> None:
        start.wait()
        try:
            outcomes.append(pay_bill(runtime, account_id, chosen, runtime.clock.now()).public_id)
        except Refusal as refusal:
            outcomes.append(refusal.code)

    threads = [threading.Thread(target=race, args=([ids[0]] if n % 2 else ids,))
               for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with runtime.session_factory() as session:
        locked = session.scalars(select(SettlementLine.charge_id).join(
            Settlement, Settlement.id == SettlementLine.settlement_id).where(
            Settlement.status == SettlementStatus.PENDING_PAYMENT))
        locked = list(locked)
    assert sorted(locked) == sorted(set(locked)) and ids[0] in locked  # each charge once
    assert len({o for o in outcomes if o.startswith("S")}) == 1, outcomes
    assert len(runtime.wallet.trades) == 1
