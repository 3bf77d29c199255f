"""A patient pays the bill of their consultation on a phone: the HIS simulator's charges arrive
on the real listener, the patient pays them on the wallet sandbox's cashier, the worker posts
them in the simulator's cash desk, and the bill page shows the receipt and where to go next,
in Chinese and in English. The adapter runs in this process (web, listener and a worker
thread) so the test can play the HIS's side of the consultation."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from adapter import create_app
from adapter.config import Address, load_config
from adapter.his.header import parse_ack
from adapter.his.listener import make_listener
from adapter.his.mllp import MllpServer
from adapter.his.mllp_client import MllpClient
from adapter.his.profile import Hl7Profile
from adapter.his.simulator import HisSimulator
from adapter.models import Patient
from adapter.models_billing import Charge
from adapter.protection import DataProtector, generate_key_file, load_keyring
from adapter.runtime import Runtime
from adapter.wallet.alipay.client import AlipayClient
from adapter.wallet.alipay.gateway import AlipayWalletGateway
from adapter.wallet.sandbox import SandboxState
from adapter.worker.inbound import process_inbound
from adapter.worker.outbox import deliver_outbox
from tests.e2e.conftest import Phone, require_browser
from tests.integration.test_crash_recovery import MAP
from tests.integration.test_wallet_sandbox import (  # noqa: F401 - the sandbox's key fixture
    ADULT,
    APP_ID,
    SELLER_ID,
    Sandbox,
    app_keys,
)

require_browser()

from playwright.sync_api import expect  # noqa: E402 - only once the browser is known to exist

from tests.e2e.test_h5_browser import _sign_in  # noqa: E402 - it needs the browser too

pytestmark = pytest.mark.slow
TZ = load_config({}).tz


@pytest.fixture
def sandbox(app_keys):
    # A browser is slower than a test client: the sandbox's clock runs at 1/20 of real time
    # (an auth code lives 15 s), not the 1/1000 of its own tests.
    state = SandboxState(app_public_key=app_keys[1], app_id=APP_ID, seller_id=SELLER_ID,
                         notify_time_scale=0.05, seed=7)
    sandbox = Sandbox(state)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def hospital(engine, session_factory, sandbox, app_keys, tmp_path):
    his = HisSimulator(MAP, tz=TZ, seed=3, today=dt.datetime.now(TZ).date())
    his_server = MllpServer("127.0.0.1", 0, his.handle, on_connect=his.on_connect)
    his_server.start()
    key_file = tmp_path / "data.key"
    generate_key_file(key_file)
    config = replace(load_config({}), secret_key="k", data_key_file=key_file,
                     mllp_listen=Address("127.0.0.1", 0),
                     his_mllp=Address(*his_server.server_address[:2]),
                     alipay_app_id=APP_ID, alipay_seller_id=SELLER_ID, throttle=False)
    runtime = Runtime(config, engine, session_factory, MAP, Hl7Profile())
    runtime.protector = DataProtector(load_keyring(key_file))
    web = make_server("127.0.0.1", 0, create_app(runtime=runtime), threaded=True)
    web_url = f"http://127.0.0.1:{web.server_port}"
    runtime.config = replace(runtime.config, public_url=web_url)
    runtime.wallet = AlipayWalletGateway(AlipayClient(
        sandbox.gateway, APP_ID, app_keys[0], sandbox.state.platform_public_pem,
        seller_id=SELLER_ID, notify_url=f"{web_url}/notify/alipay", timeout=(2.0, 3.0),
        message_template_id="TPL-BILL"))
    listener = make_listener(runtime.config, session_factory, runtime.profile)
    listener.start()
    stop = threading.Event()

    def worker() -> None:  # the worker role: inbound messages and the outbox, all the time
        while not stop.wait(0.2):
            process_inbound(runtime)
            deliver_outbox(runtime)

    threads = [threading.Thread(target=web.serve_forever, args=(0.05,), daemon=True),
               threading.Thread(target=worker, daemon=True)]
    for thread in threads:
        thread.start()
    yield runtime, his, web_url, listener.server_address[:2]
    stop.set()
    threads[1].join(timeout=10)
    listener.shutdown()
    web.shutdown()
    runtime.his.close()
    his_server.shutdown()


def _until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_patient_pays_the_consultations_bill_and_sees_the_receipt_and_next_stop(
        hospital, sandbox, phone: Phone):
    runtime, his, web, listener = hospital
    page = phone.page
    _sign_in(phone, SimpleNamespace(web=web, sandbox=sandbox.url), ADULT)

    def his_id() -> str | None:
        with runtime.session_factory() as session:
            return session.scalar(select(Patient.his_patient_id).where(
                Patient.his_patient_id.is_not(None)))

    _until(his_id)  # the worker found or added the person in the HIS
    # The consultation ends: the HIS sends the doctor's orders to the listener.
    with MllpClient(*listener, connect_timeout=2, ack_timeout=10) as client:
        ack = client.send(his.consultation_finished(his_id(), "V1", "PED"))
    assert parse_ack(ack).code == "AA"

    def charges() -> int:
        with runtime.session_factory() as session:
            return session.scalar(select(func.count()).select_from(Charge))

    _until(lambda: charges() == 2)
    page.get_by_role("link", name="门诊缴费").click()
    card = page.locator("#bills section.bill")
    expect(card).to_have_count(1)  # one prescription group: paid together
    expect(card).to_contain_text("血常规")
    expect(card).to_contain_text("¥55.00")
    card.get_by_role("button", name="去缴费").click()

    page.wait_for_url(f"{sandbox.url}/cashier/**")
    expect(page.locator("body")).to_contain_text("55.00")  # the HIS's total
    page.get_by_role("button", name="确认付款 / Pay").click()
    page.get_by_role("link", name="返回商户 / Back to the hospital").click()
    page.wait_for_url(re.compile(r".*/h5/bills/S\w+$"))
    status = page.locator("#status-card")
    expect(status).to_have_attribute("data-status", "committed", timeout=30_000)
    expect(page.locator("#status-text")).to_have_text("缴费成功")
    expect(page.locator("#r-receipt")).to_have_text(re.compile(r"^RC\d+$"))
    expect(page.locator("#r-invoice")).to_have_text(re.compile(r"^EI\d+$"))
    expect(page.locator("#next-stops")).to_contain_text("检验科采血处")
    expect(page.locator("#d-fund")).to_have_text("¥0.00")

    page.goto(page.url + "?lang=en")
    expect(page.locator("#next-stops")).to_contain_text("Laboratory blood draw")
    expect(page.locator("#status-text")).to_have_text("Paid")
    expect(page.get_by_role("heading", name="Electronic receipt")).to_be_visible()
    page.goto(f"{web}/h5/bills?lang=en")
    expect(page.locator("#bills")).to_contain_text("Nothing to pay")
    favicon = f"404 (NOT FOUND) at {sandbox.url}/favicon.ico"
    assert [e for e in phone.errors if favicon not in e] == []
