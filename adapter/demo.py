"""`hospital-adapter demo`: a scripted registration through the real network paths.

It starts the whole system (`hospital-adapter run`: web, listener, worker, HIS simulator, wallet
sandbox) in a temporary folder on free ports, then, as a parent in the wallet would: signs in on
the sandbox's login page, adds a child, books a paediatrics slot, pays on the sandbox cashier
(the sandbox notifies /notify/alipay), waits for the HIS to confirm over MLLP, cancels, and
waits for the refund; then the simulator's laboratory sends the day's results (a blood count
and its correction, biochemistry with a critical value, a CT report as PDF), which reach the
parent's wallet inbox and read on the report page. Every step is printed; any broken
invariant makes it exit non-zero.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse
import uuid
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import requests

from adapter.demo_kit import DEMO_CENTRE, TIMEOUT, DemoFailed
from adapter.demo_kit import free_port as _free_port
from adapter.demo_kit import wait as _wait
from adapter.demo_visit import VisitSteps


class Demo(VisitSteps):
    """The scripted patient, talking HTTP to the adapter and the wallet sandbox (Alipay's)."""

    platform = "alipay"

    def __init__(self, web: str, sandbox: str, echo: Callable[[str], None]) -> None:
        self.web, self.sandbox, self.echo = web, sandbox, echo
        self.http = requests.Session()
        self.step_no = 0

    def step(self, text: str) -> None:
        self.step_no += 1
        self.echo(f"{self.step_no:2d}. {text}")

    def check(self, condition: bool, text: str) -> None:
        if not condition:
            raise DemoFailed(text)
        self.echo(f"    ok: {text}")

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:  # noqa: ANN401
        return self.http.request(method, f"{self.web}/api/v1{path}", timeout=TIMEOUT, **kwargs)

    def run(self) -> None:
        tz = zoneinfo.ZoneInfo("Asia/Shanghai")
        self.step("wait for the adapter, the HIS link and the synced slot pool")
        _wait("/readyz", lambda: requests.get(f"{self.web}/readyz", timeout=TIMEOUT).ok)
        visit = dt.datetime.now(tz).date() + dt.timedelta(days=2)
        slots = _wait("slots", lambda: [
            s for s in self.api("GET", f"/slots?department=PED&date={visit}").json()["slots"]
            if s["status"] == "open"])
        self.check(len(slots) > 0, f"{len(slots)} open paediatrics slots on {visit}")

        self.step("a parent signs in on the wallet's login page")
        users = requests.get(f"{self.sandbox}/_sandbox/users", timeout=TIMEOUT).json()
        parent = next(u for u in users if u["children"] and u["cert_type"] == "0")
        login = self.api("GET", "/session/login-url",
                         params={"redirect_uri": f"{self.web}/h5/"}).json()["url"]
        form = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(login).query))
        form["user_id"] = parent["user_id"]
        # The login page's form posts back to the page itself, as the wallet's does.
        answer = requests.post(login.partition("?")[0], data=form,
                               allow_redirects=False, timeout=TIMEOUT)
        location = answer.headers.get("Location", "")
        back = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
        session = self.api("POST", "/session",
                           json={"auth_code": back["auth_code"], "state": back["state"]})
        self.check(session.status_code == 201 and session.json()["certified"],
                   "signed in as a certified user; the wallet identity is patient 'self'")
        self_id = next(p["id"] for p in session.json()["patients"] if p["relation"] == "self")

        self.step("the parent adds their child (under 14, with the guardian's consent)")
        child = parent["children"][0]
        added = self.api("POST", "/patients", json={
            "name": child["name"], "document_type": "RESIDENT_ID",
            "document_number": child["cert_no"], "relation": "child",
            "guardian_consent": True})
        self.check(added.status_code == 201, "child added")
        self.check(child["cert_no"] not in added.text, "the ID number comes back masked")
        child_id = added.json()["id"]

        self.step("book a paediatrics slot for the child (Idempotency-Key, double tap)")
        slot = slots[0]
        before = slot["remaining"]
        key = str(uuid.uuid4())
        body = {"slot_id": slot["id"], "patient_id": child_id}
        first = self.api("POST", "/bookings", json=body, headers={"Idempotency-Key": key})
        again = self.api("POST", "/bookings", json=body, headers={"Idempotency-Key": key})
        self.check(first.status_code == 201, f"held: {first.json().get('status')}")
        self.check(again.json() == first.json(), "the double tap got the same booking")
        booking_id = first.json()["id"]
        remaining = self._remaining(visit, slot["id"])
        self.check(remaining == before - 1, f"the pool has {remaining} left on that slot")

        payment = self.pay_and_confirm(booking_id)

        self.step("cancel before the deadline")
        cancelled = self.api("POST", f"/bookings/{booking_id}/cancel", json={})
        self.check(cancelled.status_code == 200 and cancelled.json()["status"] == "cancelling",
                   "cancelling: SRM^S04 goes to the HIS")
        _wait("cancelled", lambda: self._status(booking_id) == "cancelled")
        self.check(True, "the HIS agreed (SRR^S04): cancelled")
        refund = _wait("refund", lambda: (self.api("GET", f"/bookings/{booking_id}").json()
                                          .get("refund") or {}).get("status") == "done")
        self.check(bool(refund), "refunded through the wallet")
        trade = requests.get(f"{self.sandbox}/_sandbox/trades/{payment.json()['out_trade_no']}",
                             timeout=TIMEOUT).json()
        self.check(trade.get("trade_status") == "TRADE_CLOSED",
                   "the wallet shows the trade fully refunded")
        back = _wait("the place back in the pool",
                     lambda: self._remaining(visit, slot["id"]) == before)
        self.check(bool(back), "the place went back to the pool")
        inbox = requests.get(f"{self.sandbox}/inbox/{parent['user_id']}", timeout=TIMEOUT).json()
        self.check(len(inbox) >= 2, f"{len(inbox)} wallet messages told the parent each step")
        # The parent's own visit today (a verified identity: bills and results are shown to
        # verified patients only, and the child was added by the parent, not verified).
        self.visit_today(parent["user_id"], self_id)
        self.pay_bill()
        self.results(parent["user_id"])

    def pay_and_confirm(self, booking_id: str) -> requests.Response:
        """Pay a held booking on the sandbox's cashier and wait for the HIS to confirm it."""
        self.step("pay on the wallet's cashier")
        payment = self.api("POST", "/payments", json={
            "booking_id": booking_id, "return_url": f"{self.web}/h5/bookings/{booking_id}"})
        self.check(payment.status_code == 201, f"trade {payment.json()['out_trade_no']} "
                                                f"for ¥{payment.json()['amount']}")
        self.check(self.pay_on_cashier(payment.json()),
                   f"paid in the sandbox; it notifies /notify/{self.platform}")

        self.step("the notification confirms the payment; the outbox books it in the HIS")
        status = _wait("confirmed", lambda: self._status(booking_id) == "confirmed" and
                       "confirmed")
        self.check(status == "confirmed", "SRM^S01 answered SRR^S01 AA: booking confirmed")
        return payment

    def pay_on_cashier(self, payment: dict[str, Any]) -> bool:
        """The buyer pays on the Alipay sandbox's cashier page (/cashier/<trade_no>)."""
        return requests.post(payment["cashier_url"].split("?")[0], data={"return_url": ""},
                             timeout=TIMEOUT).ok

    def get_json(self, url: str) -> Any:  # noqa: ANN401
        """A sandbox's helper or inbox, as JSON."""
        return requests.get(url, timeout=TIMEOUT).json()


class WechatDemo(Demo):
    """The same adapter through WeChat Pay: an account WeChat does not certify signs in with
    the official account's OAuth, binds 陈静's identity (HIS match, the SMS code read from the
    sandbox's SMS inbox), books, pays on the WeChat Pay sandbox's cashier, hears through
    template messages, cancels and is refunded."""

    platform = "wechatpay"
    # The patient the HIS simulator knows and no wallet certified (docs/identity.md).
    PERSON = {"name": "陈静", "document_type": "RESIDENT_ID",
              "document_number": "110105199003081226", "phone": "13800138005"}

    def __init__(self, web: str, sandbox: str, sms: str, echo: Callable[[str], None]) -> None:
        super().__init__(web, sandbox, echo)
        self.sms = sms  # the SMS inbox (the development SMS gateway, in the Alipay sandbox)

    def pay_on_cashier(self, payment: dict[str, Any]) -> bool:
        """The buyer pays on the WeChat Pay sandbox's cashier (/sandbox/cashier?prepay_id=)."""
        page, _, query = payment["cashier_url"].partition("?")
        asked = dict(urllib.parse.parse_qsl(query))
        shown = requests.get(payment["cashier_url"], timeout=TIMEOUT)  # checks paySign
        return shown.ok and requests.post(page, data={"prepay_id": asked["prepay_id"]},
                                          timeout=TIMEOUT).ok

    def run(self) -> None:
        tz = zoneinfo.ZoneInfo("Asia/Shanghai")
        self.step("WeChat Pay: a patient opens /h5/?platform=wechatpay in WeChat and signs in")
        user = next(u for u in self.get_json(f"{self.sandbox}/_sandbox/users")
                    if u["subscribed"])
        home = f"{self.web}/h5/?platform=wechatpay"
        page = self.http.get(home, timeout=TIMEOUT)
        self.check(page.ok and '"platform": "wechatpay"' in page.text,
                   "the page knows it was opened from WeChat")
        login = self.api("GET", "/session/login-url",
                         params={"redirect_uri": home, "platform": "wechatpay"}).json()["url"]
        # snsapi_base is silent in WeChat; the sandbox takes the user it is told of.
        answer = requests.get(login.split("#")[0] + "&sandbox_openid=" + user["openid"],
                              allow_redirects=False, timeout=TIMEOUT)
        back = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(
            answer.headers.get("Location", "")).query))
        session = self.api("POST", "/session", json={
            "auth_code": back["code"], "state": back["state"], "platform": "wechatpay"})
        self.check(session.status_code == 201 and not session.json()["certified"],
                   "signed in with the openid: uncertified, WeChat shares no real name")
        refused = self.api("GET", "/results")
        self.check(refused.json().get("error") == "account.not_certified",
                   "results are refused until the account is bound")

        self.step("bind a verified identity: the HIS's patient index and an SMS code")
        started = self.api("POST", "/account/binding", json={"method": "his_match",
                                                             **self.PERSON})
        self.check(started.status_code in (200, 201)
                   and started.json().get("confirmation") == "sms_code",
                   "the HIS knows her: a code went to the phone on file")
        texts = _wait("the SMS code", lambda: self.get_json(
            f"{self.sms}/sms/inbox/{self.PERSON['phone']}")["messages"])
        code = re.search(r"\d{6}", texts[-1]["text"]).group(0)
        bound = self.api("POST", "/account/binding/confirm", json={"sms_code": code})
        self.check(bound.ok and bound.json()["certified"], "bound: the account is certified")
        me = next(p for p in self.api("GET", "/patients").json()["patients"]
                  if p["relation"] == "self")

        self.step("book a general medicine slot for herself")
        visit = dt.datetime.now(tz).date() + dt.timedelta(days=2)
        slots = _wait("slots", lambda: [
            s for s in self.api("GET", f"/slots?department=GIM&date={visit}").json()["slots"]
            if s["status"] == "open" and s["remaining"]])
        held = self.api("POST", "/bookings", json={"slot_id": slots[-1]["id"],
                                                   "patient_id": me["id"]},
                        headers={"Idempotency-Key": str(uuid.uuid4())})
        self.check(held.status_code == 201, f"held: {held.json().get('status')}")
        booking_id = held.json()["id"]
        payment = self.pay_and_confirm(booking_id)
        self.check(payment.json()["platform"] == "wechatpay" and "package" in
                   payment.json()["pay"], "paid through WeChat Pay (the prepay_id's package)")
        inbox = _wait("the confirmation message", lambda: self.get_json(
            f"{self.sandbox}/inbox/{user['openid']}"))
        self.check(bool(inbox), f"{len(inbox)} template message(s) in her WeChat")

        self.step("cancel before the deadline: refunded through WeChat Pay")
        cancelled = self.api("POST", f"/bookings/{booking_id}/cancel", json={})
        self.check(cancelled.status_code == 200, "cancelling: SRM^S04 goes to the HIS")
        _wait("cancelled", lambda: self._status(booking_id) == "cancelled")
        refund = _wait("refund", lambda: (self.api("GET", f"/bookings/{booking_id}").json()
                                          .get("refund") or {}).get("status") == "done")
        self.check(bool(refund), "refunded")
        order = self.get_json(f"{self.sandbox}/_sandbox/orders/"
                              f"{payment.json()['out_trade_no']}")
        self.check(order.get("trade_state") == "REFUND" and bool(order.get("refunds")),
                   "the WeChat Pay sandbox shows the order refunded")


WALLETS_IN_THE_DEMO = 2  # Alipay, WeChat Pay: each reconciled on its own


@dataclass
class LocalSystem:
    """`hospital-adapter run` in a subprocess on free ports: adapter, HIS simulator, sandbox."""

    folder: Path
    web: str  # http://127.0.0.1:port
    sandbox: str
    mllp_port: int
    his_port: int
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    env: dict[str, str] = field(default_factory=dict, repr=False)  # what `run` was given
    wechatpay: str = ""  # the WeChat Pay sandbox

    def output(self) -> str:
        """What the system logged so far."""
        return self.log.read_text(errors="replace")

    def stop(self) -> int | None:
        """SIGTERM, wait; the exit code (None if it had to be killed)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None


def start_local_system(folder: Path, mappings_dir: Path,
                       env: dict[str, str] | None = None) -> LocalSystem:
    """Start everything with the embedded defaults in ``folder`` (its data dir and cwd)."""
    web, mllp, his, wallet, wechatpay = (_free_port() for _ in range(5))
    environment = {
        **os.environ,
        "ADAPTER_DATA_DIR": str(folder),
        "ADAPTER_WEB_LISTEN": f"127.0.0.1:{web}",
        "ADAPTER_MLLP_LISTEN": f"127.0.0.1:{mllp}",
        "ADAPTER_HIS_MLLP": f"127.0.0.1:{his}",
        "ADAPTER_ALIPAY_GATEWAY": f"http://127.0.0.1:{wallet}/gateway.do",
        "ADAPTER_WECHATPAY_API_URL": f"http://127.0.0.1:{wechatpay}",
        "ADAPTER_MAPPINGS_DIR": str(mappings_dir),
        **(env or {}),
    }
    environment.pop("ADAPTER_DATABASE_URL", None)
    log = folder / "run.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "adapter.cli", "run"],
                                   env=environment, cwd=folder, stdout=out,
                                   stderr=subprocess.STDOUT)
    return LocalSystem(folder, f"http://127.0.0.1:{web}", f"http://127.0.0.1:{wallet}", mllp,
                       his, log, process, environment,
                       wechatpay=environment["ADAPTER_WECHATPAY_API_URL"])


def _mappings_for_demo(source: Path, target: Path) -> Path:
    """The hospital's mappings, with cancelled places returning to the pool at once."""
    shutil.copytree(source, target)
    policy = target / "registration.toml"
    text = policy.read_text(encoding="utf-8") if policy.exists() else ""
    lines = [ln for ln in text.splitlines() if not ln.startswith("release_delay_")]
    lines += ["release_delay_min_seconds = 0", "release_delay_max_seconds = 0"]
    policy.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def _reconcile_today(system: LocalSystem, demo: Demo) -> None:
    """`hospital-adapter reconcile` of today against the running sandbox and simulator: the
    day's payment and refund agree on all three sides."""
    demo.step("reconcile the day: each wallet's bill, our trades, the HIS's settlement list")
    zone = zoneinfo.ZoneInfo(system.env.get("ADAPTER_TIMEZONE") or "Asia/Shanghai")
    today = dt.datetime.now(zone).date()
    result = subprocess.run(
        [sys.executable, "-m", "adapter.cli", "reconcile", "--date", today.isoformat()],
        env=system.env, cwd=system.folder, capture_output=True, text=True, timeout=120)
    said = (result.stdout.strip().splitlines() or result.stderr.strip().splitlines() or [""])
    clean = result.stdout.count("discrepancies 0, healed 0") == WALLETS_IN_THE_DEMO
    demo.check(result.returncode == 0 and clean,
               "reconciliation: no discrepancy" + ("" if result.returncode == 0 and
                                                   "discrepancies 0" in result.stdout
                                                   else f" (it said: {said[-1][:200]})"))


@click.command("demo")
@click.option("--keep", is_flag=True, help="Keep the temporary folder (database, logs).")
def demo_command(keep: bool) -> None:
    """Book, pay, confirm, cancel and refund through the real network paths."""
    from adapter.mappings import default_mappings_dir

    folder = Path(tempfile.mkdtemp(prefix="hospital-adapter-demo-"))
    source = Path(os.environ["ADAPTER_MAPPINGS_DIR"]) if os.environ.get(
        "ADAPTER_MAPPINGS_DIR") else default_mappings_dir()
    click.echo(f"starting the adapter, the HIS simulator and the wallet sandbox in {folder}")
    system = start_local_system(folder, _mappings_for_demo(source, folder / "mappings"), env={
        "ADAPTER_HOSPITAL_LATITUDE": str(DEMO_CENTRE[0]),
        "ADAPTER_HOSPITAL_LONGITUDE": str(DEMO_CENTRE[1]),
        # the day's WeChat Pay bill so far, for reconciling today (WeChat makes it overnight)
        "ADAPTER_WECHATPAY_SANDBOX_BILLS_TODAY": "true"})
    demo = Demo(system.web, system.sandbox, click.echo)
    failed = ""
    try:
        demo.run()
        wechat = WechatDemo(system.web, system.wechatpay, system.sandbox, click.echo)
        wechat.step_no = demo.step_no
        wechat.run()
        demo.step_no = wechat.step_no
        _reconcile_today(system, demo)
    except (DemoFailed, requests.RequestException, KeyError, StopIteration, ValueError) as exc:
        failed = f"{type(exc).__name__}: {exc}"
    finally:
        system.stop()
    if failed:
        click.echo(f"DEMO FAILED at step {demo.step_no}: {failed}", err=True)
        click.echo(f"logs: {system.log}", err=True)
        sys.exit(1)
    click.echo("demo passed: booked, paid, confirmed by the HIS, cancelled and refunded; "
               "checked in today, followed the queue to the call, paid the consultation's bill "
               "(receipt, next stop); the day's results in the wallet and on the report page; "
               "through WeChat Pay: signed in, bound by HIS match and SMS code, booked, paid, "
               "told in WeChat, cancelled and refunded; the day reconciled clean in both wallets")
    if keep:
        click.echo(f"kept {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
