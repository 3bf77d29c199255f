"""The simulator's laboratory (LIS, PACS) sends the day's results to the adapter's real
listener over MLLP; the inbound runner applies them, the outbox tells the wallet, and the
patient reads them through the API: a blood count, a biochemistry panel with a critical value,
a CT report as PDF, and the blood count's correction on the next round."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from adapter import create_app
from adapter.config import Address, load_config
from adapter.his import patients
from adapter.his.header import parse_ack
from adapter.his.listener import make_listener
from adapter.his.mllp_client import MllpClient
from adapter.his.profile import Hl7Profile
from adapter.his.simulator import HisSimulator
from adapter.his.simulator.lab import Laboratory
from adapter.mappings import load_mappings
from adapter.models import CriticalAlert, Patient
from adapter.ports import PatientIdentity
from adapter.protection import KEY_BYTES, DataProtector, Keyring
from adapter.runtime import Runtime
from adapter.worker.inbound import process_inbound
from adapter.worker.outbox import deliver_outbox
from tests.conftest import MAPPINGS
from tests.fakes import FakeWallet, sign_in
from tests.unit.conftest import resident_id

TZ = ZoneInfo("Asia/Shanghai")
TODAY = dt.datetime.now(TZ).date()


@pytest.fixture
def runtime(engine, session_factory):
    config = replace(load_config({}), mllp_listen=Address("127.0.0.1", 0), secret_key="s",
                     public_url="https://hospital.example")
    runtime = Runtime(config, engine, session_factory, load_mappings(MAPPINGS), Hl7Profile())
    runtime.protector = DataProtector(Keyring(active="k1", keys={"k1": b"\x01" * KEY_BYTES},
                                              index_key=b"\x02" * KEY_BYTES))
    runtime.wallet = FakeWallet()
    return runtime


def test_the_days_results_reach_the_wallet_and_read_on_the_report(runtime):
    mappings = runtime.mappings
    simulator = HisSimulator(mappings, tz=TZ, seed=1, today=TODAY)
    person = PatientIdentity("欧阳明", "M", dt.date(1980, 1, 1), "RESIDENT_ID", resident_id(5),
                             "13300133000")
    # The adapter added the patient to the HIS today (ADT^A28): a visit of the day.
    added = simulator.handle(patients.build_adt_a28(
        runtime.profile, "A1", dt.datetime.now(TZ), patient=person,
        hl7_id_type=mappings.document_types["RESIDENT_ID"].hl7_type).encode())
    assert parse_ack(added).code == "AA"
    [his_id] = [i for i, p in simulator.patients.items() if p.name == person.name]

    runtime.wallet.add_user("c1", user_id="2088000000000005", is_certified=True,
                            name=person.name, document_type="RESIDENT_ID",
                            document_number=person.document_number, sex="M")
    app = create_app(runtime=runtime)
    browser = app.test_client()
    assert sign_in(browser, "c1").status_code == 201
    with runtime.session_factory.begin() as db:
        db.scalar(select(Patient)).his_patient_id = his_id
        db.scalar(select(Patient)).birth_date = person.birth_date

    listener = make_listener(runtime.config, runtime.session_factory, runtime.profile)
    listener.start()
    lab = Laboratory(simulator.day_visitors, simulator.profile, TZ,
                     {code: d.hl7_type for code, d in mappings.document_types.items()})
    try:
        with MllpClient(*listener.server_address[:2], connect_timeout=2, ack_timeout=10) as lis:
            def round_() -> int:
                due = lab.due(dt.datetime.now(TZ))
                for what, text in due:
                    assert parse_ack(lis.send(text.encode())).code == "AA"
                    lab.sent(what)
                while process_inbound(runtime):
                    pass
                deliver_outbox(runtime)
                return len(due)

            assert round_() == 2  # three months' history, then the day's results
            texts = [text for _, text in runtime.wallet.messages]
            assert len(texts) == 4 and sum("联系医院" in t for t in texts) == 1
            assert not any(v in "".join(texts) for v in ("6.9", "128", "412"))
            with runtime.session_factory() as db:
                assert len(list(db.scalars(select(CriticalAlert)))) == 1

            assert round_() == 1  # the blood count corrected
            assert "更正" in runtime.wallet.messages[-1][1]
            assert round_() == 0  # nothing more today
    finally:
        listener.shutdown()

    listed = browser.get("/api/v1/results").json["results"]
    assert [r["kind"] for r in listed].count("CBC") == 2
    by_kind = {r["kind"]: r for r in reversed(listed)}  # the newest of each kind
    assert set(by_kind) == {"CBC", "BMP", "CT"}
    assert by_kind["BMP"]["critical"] and by_kind["CBC"]["corrected"]
    cbc = browser.get(f"/api/v1/results/{by_kind['CBC']['id']}").json
    hgb = next(o for o in cbc["observations"] if o["code"] == "HGB")
    assert (hgb["number"], hgb["abnormal"]) == ("131", False)
    assert [p["value"] for p in hgb["trend"]] == ["134", "131"]  # three months ago, today
    platelets = next(o for o in cbc["observations"] if o["code"] == "PLT")
    assert platelets["flags"] == ["H"] and platelets["reference_range"] == "125-350"
    ct = browser.get(f"/api/v1/results/{by_kind['CT']['id']}").json
    file = next(o["file"] for o in ct["observations"] if o["file"])
    pdf = browser.get(file["url"])
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF-1.4")
    assert pdf.data.rstrip().endswith(b"%%EOF")
    assert browser.get(f"/h5/results/{by_kind['CT']['id']}").status_code == 200
