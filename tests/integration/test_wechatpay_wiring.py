"""The real WeChat Pay client against the real WeChat Pay sandbox program (a subprocess, as `run`
starts it, with development's keys): order, pay on the cashier, the callback to the adapter's
/notify/wechatpay, query, close, refund and its query, the day's bill, OAuth, template messages."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import threading
import time
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from werkzeug.serving import make_server

from adapter import create_app, migrate
from adapter.cli import wechatpay_sandbox_args
from adapter.config import load_config
from adapter.devkeys import ensure_development_keys
from adapter.models import Trade, TradeStatus
from adapter.payments.trades import create_at_wallet, to_create
from adapter.ports import BillEntryKind, TradeState
from adapter.runtime import Runtime
from tests.conftest import MAPPINGS

BEIJING = dt.timezone(dt.timedelta(hours=8))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, "the sandbox exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the sandbox did not listen")


@pytest.fixture(scope="module")
def wired(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wx")
    web, api = _port(), _port()
    config = ensure_development_keys(load_config({
        "ADAPTER_DATA_DIR": str(folder), "ADAPTER_WEB_LISTEN": f"127.0.0.1:{web}",
        "ADAPTER_WECHATPAY_API_URL": f"http://127.0.0.1:{api}",
        # a WeChat-only adapter: no Alipay sandbox here (`run` starts both: test_run.py)
        "ADAPTER_WALLETS": "wechatpay", "ADAPTER_MAPPINGS_DIR": str(MAPPINGS)}))
    sandbox = subprocess.Popen(wechatpay_sandbox_args(config),  # as `run` starts it
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(api, sandbox)
        runtime = Runtime.from_config(config)
        migrate.upgrade(runtime.engine)
        runtime.check_files()
        server = make_server("127.0.0.1", web, create_app(runtime=runtime), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield runtime, f"http://127.0.0.1:{api}"
        server.shutdown()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


def _trade(runtime: Runtime, out_trade_no: str, openid: str) -> None:
    with runtime.session_factory.begin() as session:
        session.add(Trade(out_trade_no=out_trade_no, platform="wechatpay", purpose="test",
                          reference=out_trade_no, subject="挂号费 全科", total_fen=2500,
                          buyer_id=openid,
                          expire_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15)))


def _wait(check, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_a_hospital_may_offer_wechat_pay_alone(wired):
    runtime, _ = wired
    assert list(runtime.wallets) == ["wechatpay"] and runtime.wallet.platform == "wechatpay"


def test_oauth_on_the_api_host_gives_an_uncertified_openid(wired):
    runtime, api = wired
    wallet = runtime.wallet_for("wechatpay")
    user = requests.get(f"{api}/_sandbox/users", timeout=5).json()[0]
    url = wallet.sign_in_url("http://127.0.0.1/h5/?platform=wechatpay", "st1")
    assert url.startswith(f"{api}/connect/oauth2/authorize?") and url.endswith("#wechat_redirect")
    back = requests.get(url.split("#")[0] + "&sandbox_openid=" + user["openid"],
                        allow_redirects=False, timeout=5).headers["Location"]
    query = dict(parse_qsl(urlsplit(back).query))
    assert query["state"] == "st1"
    signed = wallet.exchange_auth_code(query["code"])
    assert (signed.user_id, signed.is_certified) == (user["openid"], False)


def test_order_pay_callback_query_refund_bill_and_message(wired):
    runtime, api = wired
    wallet = runtime.wallet_for("wechatpay")
    openid = requests.get(f"{api}/_sandbox/users", timeout=5).json()[0]["openid"]
    out_trade_no = f"RW{time.time_ns()}"
    _trade(runtime, out_trade_no, openid)
    with runtime.session_factory() as session:
        asked = to_create(session.get(Trade, out_trade_no))
    created = create_at_wallet(runtime, asked)  # the use case, through the trade's platform
    assert created.pay_reference.startswith("wx") and created.trade_no == ""
    pay = wallet.pay_parameters(out_trade_no, created.pay_reference, "http://127.0.0.1/h5/")
    cashier = requests.get(pay["cashier_url"], timeout=5)  # the sandbox checks paySign
    assert cashier.status_code == 200 and "2500" not in pay["cashier_url"]
    paid = requests.post(pay["cashier_url"].split("?")[0],
                         data={"prepay_id": created.pay_reference}, timeout=5)
    assert paid.status_code == 200

    def applied():
        with runtime.session_factory() as session:
            trade = session.get(Trade, out_trade_no)
            return trade if trade.status == TradeStatus.PAID else None

    trade = _wait(applied)  # the encrypted callback reached /notify/wechatpay and applied
    queried = wallet.query_trade(out_trade_no)
    assert queried.state is TradeState.PAID and queried.total_fen == 2500
    assert trade.trade_no == queried.trade_no and trade.pay_reference == created.pay_reference

    done = wallet.refund(out_trade_no, 1000, f"{out_trade_no}-R1", "取消预约")
    assert (done.refund_fen, done.done) == (1000, True)
    again = wallet.refund(out_trade_no, 1000, f"{out_trade_no}-R1", "取消预约")
    assert again.refund_fen == 1000  # the same out_refund_no refunds once
    assert wallet.query_refund(out_trade_no, f"{out_trade_no}-R1").refund_fen == 1000
    assert wallet.query_refund(out_trade_no, f"{out_trade_no}-R9").refund_fen == 0

    requests.post(f"{api}/_sandbox/faults", json={"bills_today": True}, timeout=5)
    bill = wallet.download_trade_bill(dt.datetime.now(BEIJING).date())
    ours = [e for e in bill.entries() if e.out_trade_no == out_trade_no]
    assert sorted((e.kind, e.amount_fen) for e in ours) == [
        (BillEntryKind.PAYMENT, 2500), (BillEntryKind.REFUND, 1000)]
    assert not bill.problems

    wallet.push_message(openid, "预约成功：全科 明天 09:00", "http://127.0.0.1/h5/bookings")
    inbox = requests.get(f"{api}/inbox/{openid}", timeout=5).json()
    assert any("预约成功" in str(message) for message in inbox)


def test_an_unpaid_order_closes_and_says_so(wired):
    runtime, api = wired
    wallet = runtime.wallet_for("wechatpay")
    openid = requests.get(f"{api}/_sandbox/users", timeout=5).json()[0]["openid"]
    out_trade_no = f"RC{time.time_ns()}"
    wallet.create_trade(out_trade_no, 2500, "挂号费", openid,
                        dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15))
    assert wallet.close_trade(out_trade_no).state is TradeState.CLOSED
    assert wallet.query_trade(out_trade_no).state is TradeState.CLOSED
    assert wallet.query_trade("R-NEVER").state is TradeState.NOT_FOUND
