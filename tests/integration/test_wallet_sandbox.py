"""The wallet sandbox on real sockets, driven by the adapter's own Alipay client and signing.

The sandbox and a tiny notify receiver each run in a werkzeug server thread on 127.0.0.1:0;
the sandbox's time scale turns Alipay's retry schedule (4m, 10m, ...) into milliseconds.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import stat
import threading
import time
import zipfile
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from click.testing import CliRunner
from stdnum.cn import ric
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from adapter.ports import TradeState, WalletRefused, WalletUnavailable
from adapter.wallet.alipay import notify, signing
from adapter.wallet.alipay.client import AlipayClient
from adapter.wallet.sandbox import SandboxState, serve_sandbox, wallet_sandbox_command
from adapter.wallet.sandbox.keys import load_or_create_platform_key

APP_ID = "2021000000000001"
SELLER_ID = "2088000000000001"
PARENT = "2088000000000102"  # a certified mother of two children under 14
ADULT = "2088000000000101"
SCALE = 0.001  # 4 minutes -> 0.24 s; an auth code lives 0.3 s
BEIJING = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(scope="module")
def app_keys() -> tuple[str, str]:
    return signing.generate_key_pair()


class Receiver:
    """The merchant's notify_url: answers ``fail`` ``failures`` times, then ``success``."""

    def __init__(self) -> None:
        self.failures = 0
        self.received: list[dict[str, str]] = []
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/notify/alipay"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    @Request.application
    def wsgi(self, request: Request) -> Response:
        body = request.get_data()
        form = {k: v for k, v in request.form.items()}
        with self._lock:
            self.bodies.append(body)
            self.received.append(form)
            answer = "fail" if len(self.received) <= self.failures else "success"
        return Response(answer, content_type="text/plain")

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} notifications, got {len(self.received)}")

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


class Sandbox:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.server = serve_sandbox(state, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        state.public_url = self.url
        self.gateway = f"{self.url}/gateway.do"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)
        self.state.close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def sandbox(app_keys):
    state = SandboxState(app_public_key=app_keys[1], app_id=APP_ID, seller_id=SELLER_ID,
                         notify_time_scale=SCALE, seed=7)
    sandbox = Sandbox(state)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def client(sandbox, app_keys, receiver) -> AlipayClient:
    return AlipayClient(
        sandbox.gateway, APP_ID, app_keys[0], sandbox.state.platform_public_pem,
        seller_id=SELLER_ID, notify_url=receiver.url, timeout=(2.0, 3.0),
        message_template_id="TPL-QUEUE",
    )


def raw_call(sandbox: Sandbox, key: str, method: str, biz: dict | None = None,
             extra: dict | None = None) -> tuple[dict, str]:
    """A signed gateway call outside the client: (parsed response object, raw body)."""
    params = {"app_id": APP_ID, "method": method, "format": "JSON", "charset": "utf-8",
              "sign_type": "RSA2", "version": "1.0",
              "timestamp": dt.datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")}
    if biz is not None:
        params["biz_content"] = json.dumps(biz, ensure_ascii=False)
    params.update(extra or {})
    params["sign"] = signing.sign_params(params, key)
    response = requests.post(sandbox.gateway, data=params, timeout=5)
    assert response.status_code == 200
    raw = response.content.decode("utf-8")
    return signing.verify_response(raw, method, sandbox.state.platform_public_pem), raw


def expire_at(minutes: int = 15) -> dt.datetime:
    return dt.datetime.now(BEIJING) + dt.timedelta(minutes=minutes)


def wait_delivered(sandbox: Sandbox, count: int, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = sandbox.state.notifier.log()
        if len(log) >= count and all(d["state"] != "pending" for d in log):
            return log
        time.sleep(0.01)
    raise AssertionError(f"deliveries still pending: {sandbox.state.notifier.log()}")


# -- identity ----------------------------------------------------------------------------------


def test_oauth_flow_from_login_page_to_certified_user(sandbox, client, app_keys):
    redirect_uri = "https://hospital.example/h5/login?lang=zh"
    page = requests.get(f"{sandbox.url}/oauth2/publicAppAuthorize.htm", params={
        "app_id": APP_ID, "scope": "auth_user", "redirect_uri": redirect_uri, "state": "s-42",
    }, timeout=5)
    assert page.status_code == 200
    assert PARENT in page.text and "授权" in page.text

    chosen = requests.post(f"{sandbox.url}/oauth2/publicAppAuthorize.htm", data={
        "app_id": APP_ID, "scope": "auth_user", "redirect_uri": redirect_uri, "state": "s-42",
        "user_id": PARENT,
    }, allow_redirects=False, timeout=5)
    assert chosen.status_code == 302
    target = urlsplit(chosen.headers["Location"])
    assert (target.scheme, target.netloc, target.path) == ("https", "hospital.example",
                                                           "/h5/login")
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert query["state"] == "s-42" and query["lang"] == "zh" and query["app_id"] == APP_ID

    # Alipay's oauth.token success carries no code/msg (only its errors do): read it raw.
    token, raw = raw_call(sandbox, app_keys[0], "alipay.system.oauth.token",
                          extra={"grant_type": "authorization_code",
                                 "code": query["auth_code"]})
    assert raw.startswith('{"alipay_system_oauth_token_response":')
    assert token["user_id"] == PARENT and token["access_token"]

    user = client.user_info(token["access_token"])
    assert user.user_id == PARENT and user.is_certified
    # The adapter's client takes the same code-less success.
    code = requests.post(f"{sandbox.url}/_sandbox/auth_code", json={"user_id": PARENT},
                         timeout=5).json()["auth_code"]
    assert client.oauth_token(code).user_id == PARENT
    assert user.cert_type == "0" and ric.is_valid(user.cert_no)
    assert user.gender == "F" and user.user_name == "李秀英"


def test_auth_code_is_single_use_and_expires(sandbox, app_keys):
    def exchange(code: str) -> dict:
        return raw_call(sandbox, app_keys[0], "alipay.system.oauth.token",
                        extra={"grant_type": "authorization_code", "code": code})[0]

    code = requests.post(f"{sandbox.url}/_sandbox/auth_code", json={"user_id": ADULT},
                         timeout=5).json()["auth_code"]
    assert exchange(code)["user_id"] == ADULT
    again, raw = raw_call(sandbox, app_keys[0], "alipay.system.oauth.token",
                          extra={"grant_type": "authorization_code", "code": code})
    assert raw.startswith('{"error_response":') and '"sign":"' in raw
    assert (again["code"], again["sub_code"]) == ("40002", "isv.code-invalid")

    late = requests.post(f"{sandbox.url}/_sandbox/auth_code", json={"user_id": ADULT},
                         timeout=5).json()["auth_code"]
    time.sleep(300 * SCALE + 0.05)
    assert exchange(late)["sub_code"] == "isv.code-invalid"


def test_the_old_login_path_is_an_alias_of_alipays(sandbox):
    form = {"app_id": APP_ID, "scope": "auth_user", "redirect_uri": "https://h.example/h5/",
            "state": "s-1"}
    page = requests.get(f"{sandbox.url}/oauth/authorize", params=form, timeout=5)
    assert page.status_code == 200 and PARENT in page.text
    chosen = requests.post(f"{sandbox.url}/oauth/authorize", data={**form, "user_id": PARENT},
                           allow_redirects=False, timeout=5)
    assert chosen.status_code == 302 and "auth_code=" in chosen.headers["Location"]


def test_authorize_refuses_non_http_redirect(sandbox):
    page = requests.get(f"{sandbox.url}/oauth/authorize", params={
        "app_id": APP_ID, "scope": "auth_user", "redirect_uri": "javascript:alert(1)",
    }, timeout=5)
    assert page.status_code == 400


def test_seeded_users_cover_the_identity_cases(sandbox, client):
    users = requests.get(f"{sandbox.url}/_sandbox/users", timeout=5).json()
    today = dt.date.today()
    residents = [u for u in users if u["cert_type"] == "0"]
    assert len(residents) >= 3 and all(ric.is_valid(u["cert_no"]) for u in residents)
    children = [c for u in users for c in u["children"]]
    assert len(children) >= 2
    for child in children:
        birth = dt.date.fromisoformat(child["birth_date"])
        assert ric.is_valid(child["cert_no"]) and ric.get_birth_date(child["cert_no"]) == birth
        assert (today - birth).days < 14 * 365
    assert any(u["cert_type"] == "1" for u in users)  # a foreigner with a passport
    uncertified = [u for u in users if not u["is_certified"]]
    assert uncertified

    code = requests.post(f"{sandbox.url}/_sandbox/auth_code",
                         json={"user_id": uncertified[0]["user_id"]}, timeout=5).json()
    token = sandbox.state.exchange_auth_code(code["auth_code"])["access_token"]
    info = client.user_info(token)
    assert not info.is_certified and info.cert_no == "" and info.user_name == ""


# -- trades ----------------------------------------------------------------------------------


def test_trade_create_query_close(sandbox, client, app_keys):
    trade_no = client.trade_create("BK0001", 2500, "挂号费 内科", ADULT, expire_at())
    assert client.trade_create("BK0001", 2500, "挂号费 内科", ADULT, expire_at()) == trade_no
    with pytest.raises(WalletRefused) as refused:
        client.trade_create("BK0001", 2600, "挂号费 内科", ADULT, expire_at())
    assert refused.value.sub_code == "ACQ.CONTEXT_INCONSISTENT"

    bad, _ = raw_call(sandbox, app_keys[0], "alipay.trade.create", {
        "out_trade_no": "BK0002", "total_amount": "25.001", "subject": "x",
        "buyer_id": ADULT, "product_code": "JSAPI_PAY"})
    assert (bad["code"], bad["sub_code"]) == ("40004", "ACQ.INVALID_PARAMETER")

    status = client.trade_query("BK0001")
    assert (status.trade_status, status.trade_no, status.total_fen) == ("WAIT_BUYER_PAY",
                                                                        trade_no, 2500)
    with pytest.raises(WalletRefused) as refused:
        client.trade_query("NOPE")
    assert refused.value.sub_code == "ACQ.TRADE_NOT_EXIST"

    assert client.trade_close("BK0001").trade_status == "TRADE_CLOSED"
    assert client.trade_query("BK0001").trade_status == "TRADE_CLOSED"
    paid_closed = requests.post(f"{sandbox.url}/_sandbox/pay/BK0001", timeout=5)
    assert paid_closed.status_code == 409

    client.trade_create("BK0003", 100, "诊疗费", ADULT, expire_at())
    assert requests.post(f"{sandbox.url}/_sandbox/pay/BK0003", timeout=5).ok
    with pytest.raises(WalletRefused) as refused:
        client.trade_close("BK0003")
    assert refused.value.sub_code == "ACQ.TRADE_STATUS_ERROR"


def test_unpaid_trade_closes_at_time_expire(sandbox, client):
    client.trade_create("BK0050", 2500, "挂号费", ADULT, expire_at())
    # Move the deadline into the past rather than wait: time_expire has whole seconds.
    with sandbox.state.lock:
        trade = sandbox.state.trades["BK0050"]
        trade.expire_at = sandbox.state.now() - dt.timedelta(seconds=1)
    assert client.trade_query("BK0050").trade_status == "TRADE_CLOSED"
    assert requests.post(f"{sandbox.url}/_sandbox/pay/BK0050", timeout=5).status_code == 409
    with pytest.raises(WalletRefused) as refused:
        client.trade_create("BK0050", 2500, "挂号费", ADULT, expire_at())
    assert refused.value.sub_code == "ACQ.TRADE_HAS_CLOSE"


def test_cashier_payment_sends_a_signed_notification(sandbox, client, receiver):
    trade_no = client.trade_create("BK0100", 2500, "挂号费 儿科", PARENT, expire_at())
    page = requests.get(f"{sandbox.url}/cashier/{trade_no}",
                        params={"return_url": "https://hospital.example/h5/bookings/1"},
                        timeout=5)
    assert page.status_code == 200 and "25.00" in page.text and "挂号费 儿科" in page.text

    paid = requests.post(f"{sandbox.url}/cashier/{trade_no}",
                         data={"return_url": "https://hospital.example/h5/bookings/1"},
                         timeout=5)
    assert paid.status_code == 200 and "https://hospital.example/h5/bookings/1" in paid.text

    (notice,) = receiver.wait_for(1)
    platform_key = sandbox.state.platform_public_pem
    assert signing.verify_notification(notice, platform_key)
    assert notice["trade_status"] == "TRADE_SUCCESS" and notice["total_amount"] == "25.00"
    assert notice["out_trade_no"] == "BK0100" and notice["trade_no"] == trade_no
    assert (notice["app_id"], notice["seller_id"], notice["buyer_id"]) == (APP_ID, SELLER_ID,
                                                                          PARENT)
    assert notice["notify_type"] == "trade_status_sync" and notice["sign_type"] == "RSA2"
    assert notice["gmt_payment"] and notice["notify_id"]
    # The adapter's own reader takes the raw body as the notify view does.
    read = notify.read_notice(notify.decode_form(receiver.bodies[0]),
                              signing.load_public_key(platform_key))
    assert (read.out_trade_no, read.total_fen, read.state) == ("BK0100", 2500, TradeState.PAID)
    tampered = dict(notice, total_amount="2500.00")
    assert not signing.verify_notification(tampered, platform_key)
    assert client.trade_query("BK0100").trade_status == "TRADE_SUCCESS"


def test_notification_is_retried_until_success(sandbox, client, receiver):
    receiver.failures = 2
    client.trade_create("BK0200", 1800, "诊疗费", ADULT, expire_at())
    requests.post(f"{sandbox.url}/_sandbox/pay/BK0200", timeout=5).raise_for_status()
    received = receiver.wait_for(3)
    (delivery,) = wait_delivered(sandbox, 1)
    assert delivery["state"] == "delivered" and len(delivery["attempts"]) == 3
    assert [a["answer"] for a in delivery["attempts"]] == ["fail", "fail", "success"]
    assert len({n["notify_id"] for n in received}) == 1
    assert all(signing.verify_notification(n, sandbox.state.platform_public_pem)
               for n in received)
    log = requests.get(f"{sandbox.url}/_sandbox/notifications", timeout=5).json()
    assert log[0]["out_trade_no"] == "BK0200"


def test_notification_gives_up_after_alipays_eight_attempts(sandbox, client, receiver):
    receiver.failures = 100
    sandbox.state.set_knobs({"notify_time_scale": 0.00001})  # the 25 h schedule in ~0.9 s
    client.trade_create("BK0250", 1800, "诊疗费", ADULT, expire_at())
    requests.post(f"{sandbox.url}/_sandbox/pay/BK0250", timeout=5).raise_for_status()
    (delivery,) = wait_delivered(sandbox, 1)
    assert delivery["state"] == "failed" and len(delivery["attempts"]) == 8


def test_duplicate_notifications_knob(sandbox, client, receiver):
    requests.post(f"{sandbox.url}/_sandbox/faults", json={"duplicate_notifications": True},
                  timeout=5).raise_for_status()
    client.trade_create("BK0300", 900, "检查费", ADULT, expire_at())
    requests.post(f"{sandbox.url}/_sandbox/pay/BK0300", timeout=5).raise_for_status()
    first, second = receiver.wait_for(2)
    assert first["notify_id"] == second["notify_id"]
    assert first["out_trade_no"] == second["out_trade_no"] == "BK0300"
    assert [d["copy"] for d in wait_delivered(sandbox, 2)] == [1, 2]


def test_refunds_are_idempotent_and_never_exceed_the_payment(sandbox, client, receiver):
    sandbox.state.refund_notifications = True
    client.trade_create("BK0400", 2500, "挂号费", ADULT, expire_at())
    requests.post(f"{sandbox.url}/_sandbox/pay/BK0400", timeout=5).raise_for_status()

    first = client.trade_refund("BK0400", 1000, "RF1", "退号")
    assert first.done and first.refund_fen == 1000
    repeat = client.trade_refund("BK0400", 1000, "RF1", "退号")
    assert not repeat.done  # fund_change N: nothing moved this time
    trade = requests.get(f"{sandbox.url}/_sandbox/trades/BK0400", timeout=5).json()
    assert trade["refunded_amount"] == "10.00" and len(trade["refunds"]) == 1
    assert client.refund_query("BK0400", "RF1").refund_fen == 1000

    with pytest.raises(WalletRefused) as refused:
        client.trade_refund("BK0400", 1600, "RF2", "")
    assert refused.value.sub_code == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    assert client.refund_query("BK0400", "RF2").refund_fen == 0  # empty 10000 answer

    assert client.trade_refund("BK0400", 1500, "RF3", "").done
    assert client.trade_query("BK0400").trade_status == "TRADE_CLOSED"

    notices = receiver.wait_for(3)
    refunds = [n for n in notices if "out_biz_no" in n]
    assert [(n["out_biz_no"], n["refund_fee"], n["trade_status"]) for n in refunds] == [
        ("RF1", "10.00", "TRADE_SUCCESS"), ("RF3", "25.00", "TRADE_CLOSED")]
    assert all(n["gmt_refund"] for n in refunds)


def test_system_error_after_applying_forces_a_query(sandbox, client):
    sandbox.state.set_knobs({"system_error_rate": 1.0, "system_error_applies": True})
    with pytest.raises(WalletUnavailable):
        client.trade_create("BK0500", 2500, "挂号费", ADULT, expire_at())
    sandbox.state.set_knobs({"system_error_applies": False})
    with pytest.raises(WalletUnavailable):
        client.trade_create("BK0501", 2500, "挂号费", ADULT, expire_at())
    sandbox.state.set_knobs({"system_error_rate": 0.0})
    assert client.trade_query("BK0500").trade_status == "WAIT_BUYER_PAY"  # applied
    with pytest.raises(WalletRefused) as refused:  # not applied
        client.trade_query("BK0501")
    assert refused.value.sub_code == "ACQ.TRADE_NOT_EXIST"


def test_timeout_knob_applies_then_answers_too_late(sandbox, app_keys):
    slow_client = AlipayClient(sandbox.gateway, APP_ID, app_keys[0],
                               sandbox.state.platform_public_pem, timeout=(1.0, 0.2))
    sandbox.state.set_knobs({"timeout_rate": 1.0, "timeout_seconds": 0.5})
    with pytest.raises(WalletUnavailable):
        slow_client.trade_create("BK0600", 2500, "挂号费", ADULT, expire_at())
    sandbox.state.set_knobs({"timeout_rate": 0.0})
    assert slow_client.trade_query("BK0600").trade_status == "WAIT_BUYER_PAY"


def test_requests_with_a_bad_signature_or_app_id_are_refused(sandbox, client):
    other_private, _ = signing.generate_key_pair()
    forger = AlipayClient(sandbox.gateway, APP_ID, other_private,
                          sandbox.state.platform_public_pem)
    with pytest.raises(WalletRefused) as refused:
        forger.trade_query("BK0001")
    assert (refused.value.code, refused.value.sub_code) == ("40002", "isv.invalid-signature")

    params = {"app_id": APP_ID, "method": "alipay.trade.query", "charset": "utf-8",
              "sign_type": "RSA2", "version": "1.0", "timestamp": "2026-01-01 00:00:00",
              "biz_content": '{"out_trade_no":"BK0001"}'}
    params["sign"] = signing.sign_params(params, other_private)
    body = requests.post(sandbox.gateway, data=params, timeout=5).json()
    assert body["alipay_trade_query_response"]["sub_code"] == "isv.invalid-signature"
    assert "sign" not in body  # gateway-level refusals are unsigned

    wrong_app = AlipayClient(sandbox.gateway, "2021999999999999", other_private,
                             sandbox.state.platform_public_pem)
    with pytest.raises(WalletRefused) as refused:
        wrong_app.trade_query("BK0001")
    assert refused.value.sub_code == "isv.invalid-app-id"


def test_query_string_parameters_are_accepted(sandbox, app_keys):
    params = {"app_id": APP_ID, "method": "alipay.trade.query", "charset": "utf-8",
              "sign_type": "RSA2", "version": "1.0", "timestamp": "2026-01-01 00:00:00",
              "biz_content": '{"out_trade_no":"NOPE"}'}
    params["sign"] = signing.sign_params(params, app_keys[0])
    common = {k: params.pop(k) for k in ("app_id", "method", "charset", "sign_type", "version",
                                         "timestamp", "sign")}
    response = requests.post(f"{sandbox.gateway}?{urlencode(common)}", data=params, timeout=5)
    answer = signing.verify_response(response.text, "alipay.trade.query",
                                     sandbox.state.platform_public_pem)
    assert answer["sub_code"] == "ACQ.TRADE_NOT_EXIST"


# -- bills, messages, knobs ------------------------------------------------------------------


def test_bill_zip_has_alipays_layout(sandbox, client):
    client.trade_create("BK0700", 2500, "挂号费 内科", ADULT, expire_at())
    client.trade_create("BK0701", 3000, "未支付", ADULT, expire_at())
    requests.post(f"{sandbox.url}/_sandbox/pay/BK0700", timeout=5).raise_for_status()
    client.trade_refund("BK0700", 500, "RF0700", "部分退款")

    today = sandbox.state.now().date()
    data = client.download(client.bill_download_url(today))
    archive = zipfile.ZipFile(io.BytesIO(data), metadata_encoding="gbk")
    names = archive.namelist()
    detail_name = f"{SELLER_ID}0156_{today:%Y%m%d}_业务明细.csv"
    assert detail_name in names and any("汇总" in n for n in names)
    text = archive.read(detail_name).decode("gbk")
    lines = text.splitlines()
    assert lines[0] == "#支付宝业务明细查询"
    assert lines[1] == f"#账号：[{SELLER_ID}0156]" and lines[2].startswith("#起始日期：[")
    rows = list(csv.reader(line for line in lines if not line.startswith("#")))
    header, records = rows[0], rows[1:]
    assert header[:3] == ["支付宝交易号", "商户订单号", "业务类型"] and len(header) == 25
    assert header[11] == "订单金额（元）" and header[21] == "退款批次号/请求号"
    by_kind = {r[2].strip(): r for r in records}
    assert len(records) == 2 and set(by_kind) == {"交易", "退款"}
    payment, refund = by_kind["交易"], by_kind["退款"]
    assert payment[1] == "BK0700\t" and payment[11] == payment[12] == "25.00"
    assert refund[1].strip() == "BK0700" and refund[11] == refund[12] == "-5.00"
    assert refund[21] == "RF0700\t" and payment[0] == refund[0]
    assert "#交易合计：1笔，商家实收共25.00元，商家优惠共0.00元" in lines
    assert "#退款合计：1笔，商家实收退款共-5.00元，商家优惠退款共0.00元" in lines
    assert any(line.startswith("#导出时间：[") for line in lines)

    assert requests.get(f"{sandbox.url}/bill/unknown.csv.zip", timeout=5).status_code == 404
    with pytest.raises(WalletRefused):
        client.bill_download_url(today + dt.timedelta(days=1))


def test_message_send_lands_in_the_inbox(sandbox, client):
    client.message_send(PARENT, "候诊提醒：前面还有 3 人", "https://hospital.example/h5/q/1")
    inbox = requests.get(f"{sandbox.url}/inbox/{PARENT}", timeout=5).json()
    assert len(inbox) == 1 and inbox[0]["template_id"] == "TPL-QUEUE"
    assert inbox[0]["context"]["keyword1"]["value"] == "候诊提醒：前面还有 3 人"
    assert requests.get(f"{sandbox.url}/inbox/{ADULT}", timeout=5).json() == []


def test_fault_knobs_endpoint_validates(sandbox):
    answer = requests.post(f"{sandbox.url}/_sandbox/faults",
                           json={"latency_ms": 5, "out_of_order_notifications": True}, timeout=5)
    assert answer.ok and answer.json()["latency_ms"] == 5
    assert sandbox.state.out_of_order_notifications is True
    assert requests.post(f"{sandbox.url}/_sandbox/faults", json={"nope": 1},
                         timeout=5).status_code == 400
    assert requests.post(f"{sandbox.url}/_sandbox/faults", json={"timeout_rate": 2},
                         timeout=5).status_code == 400


def test_out_of_order_knob_still_delivers_everything(sandbox, client, receiver):
    sandbox.state.set_knobs({"out_of_order_notifications": True})
    for n in range(3):
        client.trade_create(f"BK08{n}", 100 + n, "检查费", ADULT, expire_at())
        requests.post(f"{sandbox.url}/_sandbox/pay/BK08{n}", timeout=5).raise_for_status()
    received = receiver.wait_for(3)
    assert {n["out_trade_no"] for n in received} == {"BK080", "BK081", "BK082"}


# -- the program -----------------------------------------------------------------------------


def test_platform_key_is_generated_private(tmp_path):
    path = tmp_path / "keys" / "platform.pem"
    key = load_or_create_platform_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_platform_key(path).private_numbers() == key.private_numbers()


def test_command_help_names_its_options():
    result = CliRunner().invoke(wallet_sandbox_command, ["--help"])
    assert result.exit_code == 0
    for option in ("--listen", "--app-id", "--app-public-key-file",
                   "--platform-private-key-file", "--platform-public-key-out", "--seller-id",
                   "--notify-time-scale", "--public-url"):
        assert option in result.output


# -- many test users (POST /_sandbox/users) -----------------------------------------------------


def test_helper_creates_certified_adults_with_valid_resident_ids(sandbox, client):
    from adapter.identity.documents import check_document

    answer = requests.post(f"{sandbox.url}/_sandbox/users", json={"count": 30}, timeout=5)
    assert answer.status_code == 201, answer.text
    user_ids = answer.json()["user_ids"]
    again = requests.post(f"{sandbox.url}/_sandbox/users",
                          json={"count": 2, "prefix": "2088777"}, timeout=5).json()["user_ids"]
    assert len(set(user_ids + again)) == 32
    assert all(len(u) == 16 and u.startswith("2088777") for u in again)
    users = {u["user_id"]: u for u in requests.get(f"{sandbox.url}/_sandbox/users",
                                                   timeout=5).json()}
    cert_nos = [users[u]["cert_no"] for u in user_ids + again]
    assert len(set(cert_nos)) == 32
    today = dt.date.today()
    for user_id in user_ids + again:
        user = users[user_id]
        assert user["is_certified"] and user["cert_type"] == "0" and user["name"]
        assert ric.is_valid(user["cert_no"])
        assert check_document("RESIDENT_ID", user["cert_no"], today).sex == user["gender"]
        birth = ric.get_birth_date(user["cert_no"])
        assert (today.year - birth.year) > 18
        assert int(user["cert_no"][16]) % 2 == (1 if user["gender"] == "M" else 0)
    # They sign in like anyone else.
    code = requests.post(f"{sandbox.url}/_sandbox/auth_code", json={"user_id": user_ids[0]},
                         timeout=5).json()["auth_code"]
    info = client.user_info(client.oauth_token(code).access_token)
    assert info.is_certified and info.cert_no == users[user_ids[0]]["cert_no"]
    for bad in ({"count": 0}, {"count": "3"}, {"count": 1, "prefix": "20x8"}, [1]):
        assert requests.post(f"{sandbox.url}/_sandbox/users", json=bad,
                             timeout=5).status_code == 400
