"""Daily reconciliation end to end: the wallet sandbox (a real HTTP server, bills in Alipay's
format), the HIS simulator (real MLLP, its settlement list), the web role receiving the
sandbox's notifications, and ``hospital-adapter reconcile`` on SQLite and PostgreSQL.

A clean day comes out clean; with faults injected on both sides the command finds each,
heals the lost payment (posted through the outbox) and lists the rest; a re-run heals nothing
twice.
"""

from __future__ import annotations

import csv
import datetime as dt
import threading
import time
from dataclasses import replace

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import func, select
from werkzeug.serving import make_server

from adapter import create_app
from adapter.cli import main
from adapter.config import Address, load_config
from adapter.db import write_transaction
from adapter.his.mllp import MllpServer
from adapter.his.profile import Hl7Profile
from adapter.his.simulator import HisSimulator
from adapter.identity.patients import sign_in_with_wallet
from adapter.mappings import load_mappings
from adapter.models import Booking, ReconciliationDiscrepancy, ReconciliationRun, Slot, Trade
from adapter.ports import HisSettlement, SettlementChannel, SettlementKind
from adapter.protection import generate_key_file
from adapter.registration.booking import hold_slot
from adapter.registration.jobs import sync_slots
from adapter.registration.payment import pay_booking
from adapter.registration.policy import RegistrationPolicy
from adapter.registration.rules import BookingRules
from adapter.runtime import Runtime
from adapter.wallet.alipay.signing import generate_key_pair
from adapter.wallet.sandbox import SandboxState, serve_sandbox
from adapter.wallet.sandbox.keys import generate_private_key, public_pem
from adapter.worker.outbox import deliver_outbox
from tests.conftest import MAPPINGS

MAP = load_mappings(MAPPINGS)
TZ = load_config({}).tz


class System:
    """Sandbox, simulator and web role on real sockets, and the adapter's runtime over them."""

    def __init__(self, engine, session_factory, tmp_path, keys) -> None:
        app_private, app_public, platform_key = keys
        self.state = SandboxState(app_public_key=app_public, platform_private_key=platform_key,
                                  notify_time_scale=0.001, seed=3)
        self.sandbox = serve_sandbox(self.state, "127.0.0.1", 0)
        sandbox_url = f"http://127.0.0.1:{self.sandbox.server_port}"
        self.state.public_url = sandbox_url
        self.simulator = HisSimulator(MAP, tz=TZ, seed=5)
        self.his_server = MllpServer("127.0.0.1", 0, self.simulator.handle)
        self.his_server.start()
        files = {"app.pem": app_private, "platform.pem": public_pem(platform_key)}
        for name, text in files.items():
            (tmp_path / name).write_text(text)
        generate_key_file(tmp_path / "data.key")
        self.web = make_server("127.0.0.1", 0, lambda env, start: self.app(env, start),
                               threaded=True)
        web_url = f"http://127.0.0.1:{self.web.server_port}"
        self.env = {
            "ADAPTER_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "ADAPTER_DATA_DIR": str(tmp_path / "var"),
            "ADAPTER_MAPPINGS_DIR": str(MAPPINGS),
            "ADAPTER_HIS_MLLP": "{}:{}".format(*self.his_server.server_address),
            "ADAPTER_ALIPAY_GATEWAY": f"{sandbox_url}/gateway.do",
            "ADAPTER_ALIPAY_APP_ID": self.state.app_id,
            "ADAPTER_ALIPAY_SELLER_ID": self.state.seller_id,
            "ADAPTER_ALIPAY_APP_PRIVATE_KEY_FILE": str(tmp_path / "app.pem"),
            "ADAPTER_ALIPAY_PUBLIC_KEY_FILE": str(tmp_path / "platform.pem"),
            "ADAPTER_DATA_KEY_FILE": str(tmp_path / "data.key"),
            "ADAPTER_PUBLIC_URL": web_url,
            "ADAPTER_SECRET_KEY": "k",
        }
        config = replace(load_config(self.env), his_mllp=Address(*self.his_server.server_address))
        self.runtime = Runtime(config, engine, session_factory, MAP, Hl7Profile(),
                               booking_rules=BookingRules(), policy=RegistrationPolicy())
        self.app = create_app(runtime=self.runtime)
        self.threads = [threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
                        for server in (self.sandbox, self.web)]
        for thread in self.threads:
            thread.start()
        sync_slots(self.runtime)

    def stop(self) -> None:
        for server in (self.sandbox, self.web):
            server.shutdown()
        self.his_server.shutdown()
        self.state.close()
        self.runtime.his.close()

    def paid_booking(self, *, notified: bool = True) -> tuple[str, str]:
        """A new certified user books tomorrow's slot and pays it in the sandbox; (placer id,
        out_trade_no). With ``notified`` the notification is waited for."""
        runtime, now = self.runtime, self.runtime.clock.now()
        [user_id] = self.state.add_test_users(1)
        code = self.state.issue_auth_code(user_id)
        with runtime.session_factory.begin() as session:
            signed_in = sign_in_with_wallet(session, runtime.wallet, runtime.protector, code,
                                            now.astimezone(TZ).date(), now=now)
        deliver_outbox(runtime)  # the patient is found in or added to the HIS
        tomorrow = now.astimezone(TZ).date() + dt.timedelta(days=1)
        with runtime.session_factory.begin() as session:
            write_transaction(session)
            slot_id = session.scalar(select(Slot.id).where(
                Slot.status == "open", Slot.booked < Slot.capacity,
                Slot.start_at >= dt.datetime.combine(tomorrow, dt.time(0), TZ))
                .order_by(Slot.start_at, Slot.id))
            booking = hold_slot(session, account_id=signed_in.account_id,
                                patient_id=signed_in.self_patient_id, slot_id=slot_id,
                                mappings=runtime.mappings, rules=runtime.booking_rules,
                                policy=runtime.policy, tz=TZ, now=now)
            public_id = booking.public_id
        out_trade_no = pay_booking(runtime, signed_in.account_id, public_id, now).out_trade_no
        self.state.pay(out_trade_no=out_trade_no)
        if notified:
            self.wait(lambda: self.trade(out_trade_no).status == "paid")
            deliver_outbox(runtime)
            assert self.booking(public_id).status == "confirmed"
        return public_id, out_trade_no

    def wait(self, check, seconds: float = 10.0) -> None:
        deadline = time.monotonic() + seconds
        while not check():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)

    def trade(self, out_trade_no: str) -> Trade:
        with self.runtime.session_factory() as session:
            return session.get(Trade, out_trade_no)

    def booking(self, public_id: str) -> Booking:
        with self.runtime.session_factory() as session:
            return session.scalar(select(Booking).where(Booking.public_id == public_id))

    def reconcile(self, *args: str):
        day = self.runtime.clock.now().astimezone(TZ).date()
        result = CliRunner().invoke(main, ["reconcile", "--date", day.isoformat(), *args],
                                    env=self.env)
        assert result.exit_code == 0, result.output
        return result.output

    def last_run(self) -> list[tuple[str, str, bool, str]]:
        with self.runtime.session_factory() as session:
            run_id = session.scalar(select(func.max(ReconciliationRun.id)))
            rows = session.execute(select(
                ReconciliationDiscrepancy.kind, ReconciliationDiscrepancy.action,
                ReconciliationDiscrepancy.healed, ReconciliationDiscrepancy.heal)
                .where(ReconciliationDiscrepancy.run_id == run_id))
            return sorted(tuple(row) for row in rows)


@pytest.fixture(scope="module")
def keys():
    """The app's key pair and the sandbox's platform key (slow to make: once per module)."""
    return (*generate_key_pair(), generate_private_key())


@pytest.fixture
def system(engine, session_factory, tmp_path, keys):
    system = System(engine, session_factory, tmp_path, keys)
    yield system
    system.stop()


def test_a_clean_day_then_faults_found_healed_once_and_listed(system, tmp_path):
    first, first_trade = system.paid_booking()
    second, second_trade = system.paid_booking()
    output = system.reconcile()
    assert "discrepancies 0, healed 0" in output
    assert system.last_run() == []

    # Faults on both sides: a lost notification, money nobody here asked for, a refund in
    # the merchant console, a cash refund at the window, a posting with no money behind it.
    sandbox = system.state.public_url
    assert requests.post(f"{sandbox}/_sandbox/faults", json={"lost_notifications": True},
                         timeout=5).ok
    lost, lost_trade = system.paid_booking(notified=False)
    requests.post(f"{sandbox}/_sandbox/faults", json={"lost_notifications": False}, timeout=5)
    buyer = next(iter(system.state.users))
    foreign = requests.post(f"{sandbox}/_sandbox/foreign_payment", timeout=5, json={
        "out_trade_no": "OTHER-SYSTEM-1", "total_amount": "15.00", "buyer_id": buyer})
    assert foreign.status_code == 201, foreign.text
    console = requests.post(f"{sandbox}/_sandbox/console_refund/{second_trade}", timeout=5,
                            json={"refund_amount": "1.00", "out_request_no": "CONSOLE-1"})
    assert console.status_code == 201, console.text
    assert requests.post(f"{sandbox}/_sandbox/console_refund/{second_trade}", timeout=5,
                         json={"refund_amount": "1.0x"}).status_code == 400
    system.simulator.window_refund(first)
    system.simulator.add_settlement(HisSettlement(
        "S-GHOST", SettlementKind.PAYMENT, SettlementChannel.WALLET, 1500,
        dt.datetime.now(TZ), placer_id="GHOST"))
    export = tmp_path / "found.csv"
    output = system.reconcile("--csv", str(export), "--lang", "en")
    found = system.last_run()
    assert found == sorted([
        ("his_only", "check_his_posting", False, ""),
        ("paid_not_posted", "apply_payment", True, "posted"),
        ("refund_mismatch", "refund_outside", False, ""),
        ("refunded_at_window", "settle_window_refund", False, ""),
        ("wallet_only", "find_owner", False, ""),
    ])
    assert "discrepancies 5, healed 1" in output
    with export.open(encoding="utf-8-sig") as stream:
        rows = list(csv.DictReader(stream))
    assert {row["kind"] for row in rows} == {kind for kind, *_ in found}
    assert {row["out_trade_no"] for row in rows} >= {"OTHER-SYSTEM-1", lost_trade, second_trade}
    assert {row["wallet_yuan"] for row in rows if row["out_trade_no"] == "OTHER-SYSTEM-1"} == {
        "15.00"}
    # The lost payment was applied as its notification would have been: posted by the outbox.
    assert system.trade(lost_trade).status == "paid"
    deliver_outbox(system.runtime)
    assert system.booking(lost).status == "confirmed"

    system.reconcile()
    again = system.last_run()
    assert ("paid_not_posted", "apply_payment", True, "posted") not in again
    assert not any(healed for _kind, _action, healed, _how in again)
    assert len(again) == 4
    with system.runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Booking).where(
            Booking.public_id == lost, Booking.status == "confirmed")) == 1
    assert first_trade != lost_trade


def test_a_day_the_wallet_has_no_bill_for_fails_cleanly(system):
    future = (dt.datetime.now(TZ) + dt.timedelta(days=3)).date()
    result = CliRunner().invoke(main, ["reconcile", "--date", future.isoformat()],
                                env=system.env)
    assert result.exit_code == 1
    assert "failed" in result.output and "Traceback" not in result.output


def test_a_malformed_date_is_refused_with_a_message():
    result = CliRunner().invoke(main, ["reconcile", "--date", "2026-13-45"])
    assert result.exit_code == 2 and "--date" in result.output
