"""WechatPayClient, OfficialAccount and WechatPayWalletGateway against a stub of the v3 API and
the official-account API on 127.0.0.1.

The stub plays WeChat (tests/wechatpay_kit.py, `cryptography` directly): it checks each v3
request's Authorization with the merchant's public key, records the request, and answers from
a script, signed as the platform (public key or certificate).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

from adapter.ports import (
    CreatedTrade,
    TradeState,
    WalletRefused,
    WalletUnavailable,
    WalletUnreachable,
)
from adapter.wallet.wechatpay.client import WechatPayClient
from adapter.wallet.wechatpay.gateway import WechatPayWalletGateway
from adapter.wallet.wechatpay.official import OfficialAccount
from tests import wechatpay_kit as kit

BEIJING = dt.timezone(dt.timedelta(hours=8))
EXPIRE = dt.datetime(2026, 11, 26, 10, 15, tzinfo=BEIJING)


@dataclass
class Answer:
    body: Any = None  # a dict (JSON), bytes, or None (no body)
    status: int = 200
    signed: bool = True
    delay: float = 0.0
    key: Any = None  # another signing key: a forged answer
    serial: str = ""  # another Wechatpay-Serial


@dataclass
class Stub:
    script: dict[str, deque[Answer]] = field(default_factory=lambda: defaultdict(deque))
    requests: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    serial: str = kit.PUBLIC_KEY_ID
    url: str = ""

    def on(self, route: str, *answers: Answer) -> None:
        self.script[route].extend(answers)

    def route_of(self, method: str, path: str) -> str:
        return f"{method} {path.split('?')[0]}"


def ok(**fields: Any) -> Answer:
    return Answer(fields)


def refused(code: str, status: int = 400, message: str = "refused") -> Answer:
    return Answer({"code": code, "message": message}, status=status, signed=False)


@pytest.fixture
def stub():
    state = Stub()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            official = self.path.startswith(("/cgi-bin/", "/sns/"))
            if not official and not kit.request_verifies(
                    method, self.path, body, self.headers.get("Authorization", "")):
                state.bad_signatures += 1
            state.requests.append({"method": method, "path": self.path,
                                   "body": json.loads(body) if body else None,
                                   "serial": self.headers.get("Wechatpay-Serial", "")})
            queue = state.script[state.route_of(method, self.path)]
            answer = queue.popleft() if queue else Answer(
                {"code": "NOT_SCRIPTED", "message": self.path}, 404, signed=False)
            time.sleep(answer.delay)
            payload = (answer.body if isinstance(answer.body, bytes) else
                       b"" if answer.body is None else
                       json.dumps(answer.body, ensure_ascii=False).encode())
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            if answer.signed:
                headers = kit.signed_headers(payload.decode(), key=answer.key or kit.PLATFORM_KEY,
                                             serial=answer.serial or state.serial)
                for name, value in headers.items():
                    self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802
            self._handle("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._handle("POST")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    yield state
    server.shutdown()
    server.server_close()
    assert state.bad_signatures == 0, "a request's signature did not verify"


def client_for(stub: Stub, **options: Any) -> WechatPayClient:
    keys = ({} if options.pop("certificates", False) is False else {"certificates": True})
    if not keys:
        keys = {"public_key": kit.PLATFORM_KEY.public_key(), "public_key_id": kit.PUBLIC_KEY_ID}
    return WechatPayClient(stub.url, kit.MCHID, kit.APPID, kit.MERCHANT_KEY, kit.CERT_SERIAL,
                           kit.APIV3_KEY, notify_url="https://h.example.cn/notify/wechatpay",
                           timeout=options.pop("timeout", (2.0, 1.0)), **keys, **options)


def gateway_for(stub: Stub, client: WechatPayClient | None = None,
                **options: Any) -> WechatPayWalletGateway:
    official = OfficialAccount(stub.url, kit.APPID, "app-secret", template_id="TPL-1",
                               timeout=(2.0, 2.0))
    return WechatPayWalletGateway(client or client_for(stub), official, **options)


def paid(**fields: Any) -> Answer:
    return ok(**{"appid": kit.APPID, "mchid": kit.MCHID, "out_trade_no": "R1",
                 "transaction_id": "4200000001", "trade_state": "SUCCESS",
                 "success_time": "2026-11-26T10:00:04+08:00", "payer": {"openid": kit.OPENID},
                 "amount": {"total": 2500, "payer_total": 2500, "currency": "CNY"}, **fields})


# --- trades ----------------------------------------------------------------------------------

def test_create_trade_orders_jsapi_in_fen_and_pays_with_a_signed_package(stub):
    stub.on("POST /v3/pay/transactions/jsapi", ok(prepay_id="wx26100000000000000000000001"))
    gateway = gateway_for(stub)
    created = gateway.create_trade("R1", 2500, "挂号费 儿科", kit.OPENID, EXPIRE)
    # WeChat pays with the prepay_id and names its trade (transaction_id) only once paid
    assert created == CreatedTrade("wx26100000000000000000000001", "")
    prepay_id = created.pay_reference
    (request,) = stub.requests
    assert request["body"] == {
        "appid": kit.APPID, "mchid": kit.MCHID, "description": "挂号费 儿科",
        "out_trade_no": "R1", "time_expire": "2026-11-26T10:15:00+08:00",
        "notify_url": "https://h.example.cn/notify/wechatpay",
        "amount": {"total": 2500, "currency": "CNY"}, "payer": {"openid": kit.OPENID}}
    assert request["serial"] == kit.PUBLIC_KEY_ID  # public-key mode names the key
    pay = gateway.pay_parameters("R1", prepay_id, "https://h.example.cn/h5/bookings/1")
    assert set(pay) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert pay["package"] == "prepay_id=wx26100000000000000000000001"
    assert pay["signType"] == "RSA"
    message = f"{pay['appId']}\n{pay['timeStamp']}\n{pay['nonceStr']}\n{pay['package']}\n"
    assert kit.verify(message, pay["paySign"], kit.MERCHANT_KEY.public_key())


def test_an_imitation_of_the_platform_adds_its_cashier_page(stub):
    gateway = gateway_for(stub, cashier_page=stub.url + "/sandbox/cashier")
    pay = gateway.pay_parameters("R1", "wx261", "https://h.example.cn/h5/bookings/1")
    page, _, query = pay["cashier_url"].partition("?")
    asked = dict(parse_qsl(query))
    assert page == stub.url + "/sandbox/cashier"
    assert (asked["prepay_id"], asked["return_url"]) == ("wx261",
                                                         "https://h.example.cn/h5/bookings/1")
    # the bridge's own parameters go along, so the cashier checks paySign as WeChat does
    assert {k: asked[k] for k in ("appId", "package", "paySign")} == {
        k: pay[k] for k in ("appId", "package", "paySign")}


def test_an_unknown_order_outcome_is_settled_by_ordering_again(stub):
    stub.on("POST /v3/pay/transactions/jsapi", refused("SYSTEM_ERROR", 500), ok(prepay_id="wx2"))
    assert gateway_for(stub).create_trade("R1", 2500, "挂号费", kit.OPENID,
                                          EXPIRE).pay_reference == "wx2"
    assert [r["body"]["out_trade_no"] for r in stub.requests] == ["R1", "R1"]


def test_an_order_refused_says_whether_a_trade_exists(stub):
    stub.on("POST /v3/pay/transactions/jsapi", refused("PARAM_ERROR"), refused("ORDERPAID"))
    gateway = gateway_for(stub)
    with pytest.raises(WalletRefused) as first:
        gateway.create_trade("R1", 2500, "挂号费", kit.OPENID, EXPIRE)
    with pytest.raises(WalletRefused) as second:
        gateway.create_trade("R1", 2500, "挂号费", kit.OPENID, EXPIRE)
    assert (first.value.code, first.value.nothing_created) == ("PARAM_ERROR", True)
    assert (second.value.code, second.value.nothing_created) == ("ORDERPAID", False)


@pytest.mark.parametrize(("answer", "state"), [
    (paid(), TradeState.PAID),
    (paid(trade_state="REFUND"), TradeState.PAID),
    (paid(trade_state="NOTPAY", transaction_id=""), TradeState.CREATED),
    (paid(trade_state="USERPAYING"), TradeState.CREATED),
    (paid(trade_state="PAYERROR"), TradeState.CREATED),
    (paid(trade_state="CLOSED"), TradeState.CLOSED),
    (paid(trade_state="REVOKED"), TradeState.CLOSED),
    (refused("ORDER_NOT_EXIST", 404), TradeState.NOT_FOUND),
])
def test_query_maps_trade_states(stub, answer, state):
    stub.on("GET /v3/pay/transactions/out-trade-no/R1", answer)
    trade = gateway_for(stub).query_trade("R1")
    assert trade.state is state
    assert stub.requests[0]["path"] == f"/v3/pay/transactions/out-trade-no/R1?mchid={kit.MCHID}"
    if state is TradeState.PAID:
        assert (trade.trade_no, trade.total_fen, trade.buyer_id) == ("4200000001", 2500,
                                                                     kit.OPENID)


def test_a_trade_state_wechat_does_not_document_is_an_unknown_outcome(stub):
    stub.on("GET /v3/pay/transactions/out-trade-no/R1", paid(trade_state="MAYBE"))
    with pytest.raises(WalletUnavailable):
        gateway_for(stub).query_trade("R1")


def test_close_answers_closed_or_what_the_trade_became(stub):
    stub.on("POST /v3/pay/transactions/out-trade-no/R1/close", Answer(None, 204),
            refused("ORDERPAID"))
    stub.on("GET /v3/pay/transactions/out-trade-no/R1", paid())
    gateway = gateway_for(stub)
    assert gateway.close_trade("R1").state is TradeState.CLOSED
    assert stub.requests[0]["body"] == {"mchid": kit.MCHID}
    became = gateway.close_trade("R1")
    assert (became.state, became.trade_no) == (TradeState.PAID, "4200000001")


def test_a_lost_close_answer_is_settled_by_query_then_closing_again(stub):
    stub.on("POST /v3/pay/transactions/out-trade-no/R1/close", Answer(None, 204, delay=1.5),
            Answer(None, 204))
    stub.on("GET /v3/pay/transactions/out-trade-no/R1", paid(trade_state="NOTPAY"))
    assert gateway_for(stub).close_trade("R1").state is TradeState.CLOSED
    assert [r["method"] for r in stub.requests] == ["POST", "GET", "POST"]


# --- refunds ---------------------------------------------------------------------------------

def refund_answer(status: str = "SUCCESS", **fields: Any) -> Answer:
    return ok(**{"refund_id": "50300001", "out_refund_no": "R1-1", "transaction_id": "4200000001",
                 "out_trade_no": "R1", "status": status,
                 "amount": {"total": 2500, "refund": 1000, "currency": "CNY"}, **fields})


def test_refund_sends_the_orders_total_and_one_out_refund_no(stub):
    stub.on("GET /v3/pay/transactions/out-trade-no/R1", paid())
    stub.on("POST /v3/refund/domestic/refunds", refund_answer("PROCESSING"))
    result = gateway_for(stub).refund("R1", 1000, "R1-1", "挂号取消")
    assert (result.refund_fen, result.done, result.out_request_no) == (1000, True, "R1-1")
    assert stub.requests[1]["body"] == {
        "out_trade_no": "R1", "out_refund_no": "R1-1", "reason": "挂号取消",
        "amount": {"refund": 1000, "total": 2500, "currency": "CNY"}}


def test_an_unknown_refund_outcome_is_queried_then_retried_with_the_same_number(stub):
    stub.on("GET /v3/pay/transactions/out-trade-no/R1", paid(), paid())
    stub.on("POST /v3/refund/domestic/refunds", Answer(refund_answer().body, delay=1.5),
            refund_answer(), refused("SYSTEM_ERROR", 500))
    stub.on("GET /v3/refund/domestic/refunds/R1-1", refused("RESOURCE_NOT_EXISTS", 404),
            refund_answer())
    gateway = gateway_for(stub)
    assert gateway.refund("R1", 1000, "R1-1", "").done  # timeout, none yet, retried
    assert gateway.refund("R1", 1000, "R1-1", "").done  # 500, the query finds it made
    numbers = [r["body"]["out_refund_no"] for r in stub.requests if r["path"].endswith("refunds")]
    assert numbers == ["R1-1", "R1-1", "R1-1"]


def test_an_abnormal_refund_is_refused_for_staff(stub):
    stub.on("GET /v3/pay/transactions/out-trade-no/R1", paid())
    stub.on("POST /v3/refund/domestic/refunds", refund_answer("ABNORMAL"))
    with pytest.raises(WalletRefused) as refused_refund:
        gateway_for(stub).refund("R1", 1000, "R1-1", "")
    assert refused_refund.value.code == "ABNORMAL"


def test_query_refund(stub):
    stub.on("GET /v3/refund/domestic/refunds/R1-1", refund_answer(), refund_answer("CLOSED"),
            refused("RESOURCE_NOT_EXISTS", 404))
    gateway = gateway_for(stub)
    assert gateway.query_refund("R1", "R1-1").refund_fen == 1000
    assert gateway.query_refund("R1", "R1-1").refund_fen == 0  # closed: not made
    assert gateway.query_refund("R1", "R1-1").refund_fen == 0


# --- bills -----------------------------------------------------------------------------------

BILL = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
        "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
        "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
        "费率备注\r\n"
        "`2026-11-26 10:00:04,`wxd678efh567hg6787,`1900000109,`0,`,`4200000001,`R1,`oUpF8,`JSAPI,"
        "`SUCCESS,`OTHERS,`CNY,`25.00,`0.00,`0,`0,`0.00,`0.00,`,`,`挂号费,`,`0.15000,`0.60%,"
        "`25.00,`0.00,`\r\n"
        "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n"
        "`1,`25.00,`0.00,`0.00,`0.15000,`25.00,`0.00\r\n").encode()


def test_the_trade_bill_is_downloaded_its_hash_checked_and_read(stub):
    link = ok(hash_type="SHA1", hash_value=hashlib.sha1(BILL).hexdigest(),  # noqa: S324
              download_url=stub.url + "/v3/billdownload/file?token=T1")
    stub.on("GET /v3/bill/tradebill", link, link)
    stub.on("GET /v3/billdownload/file", Answer(BILL, signed=False),
            Answer(BILL + b"tampered", signed=False))
    gateway = gateway_for(stub)
    entries = list(gateway.download_trade_bill(dt.date(2026, 11, 26)).entries())
    assert [(e.out_trade_no, e.amount_fen) for e in entries] == [("R1", 2500)]
    assert stub.requests[0]["path"] == "/v3/bill/tradebill?bill_date=2026-11-26&bill_type=ALL"
    assert stub.requests[1]["path"] == "/v3/billdownload/file?token=T1"  # signed, verified
    with pytest.raises(WalletUnavailable, match="hash_value"):
        gateway.download_bill(dt.date(2026, 11, 26))


def test_no_bill_yet_is_refused_and_a_link_to_another_host_is_not_followed(stub):
    stub.on("GET /v3/bill/tradebill", refused("NO_STATEMENT_EXIST"),
            ok(download_url="https://elsewhere.example/v3/billdownload/file?token=T"))
    gateway = gateway_for(stub)
    with pytest.raises(WalletRefused) as none:
        gateway.download_bill(dt.date(2026, 11, 26))
    assert none.value.code == "NO_STATEMENT_EXIST"
    with pytest.raises(WalletUnavailable, match="not on the API host"):
        gateway.download_bill(dt.date(2026, 11, 26))


# --- failures --------------------------------------------------------------------------------

@pytest.mark.parametrize("answer", [
    Answer({"code": "SYSTEM_ERROR", "message": "系统错误"}, 500, signed=False),
    Answer(b"<html>bad gateway</html>", 502, signed=False),
    Answer({"code": "FREQUENCY_LIMITED", "message": "频率超限"}, 429, signed=False),
    Answer(b"<html>not found</html>", 404, signed=False),  # a 4xx without a code
    Answer(paid().body, signed=False),  # 200 without a signature
    Answer(paid().body, key=kit.OTHER_KEY),  # signed by someone else
    Answer(paid().body, serial="PUB_KEY_ID_0119000000002024000000000009"),
])
def test_answers_that_leave_the_outcome_unknown(stub, answer):
    stub.on("GET /v3/pay/transactions/out-trade-no/R1", answer)
    with pytest.raises(WalletUnavailable) as unknown:
        client_for(stub).query("R1")
    assert not isinstance(unknown.value, WalletUnreachable)


def test_a_stale_answer_is_not_believed(stub):
    stub.on("GET /v3/pay/transactions/out-trade-no/R1", paid())
    client = client_for(stub, clock=lambda: time.time() + 301)
    with pytest.raises(WalletUnavailable, match="timestamp"):
        client.query("R1")


def test_a_read_timeout_is_unknown_and_a_refused_connection_unreachable(stub):
    stub.on("GET /v3/pay/transactions/out-trade-no/R1", Answer(paid().body, delay=1.5))
    started = time.monotonic()
    with pytest.raises(WalletUnavailable) as late:
        client_for(stub, timeout=(1.0, 0.5)).query("R1")
    assert not isinstance(late.value, WalletUnreachable)
    assert time.monotonic() - started < 1.4  # the explicit timeout, not the stub's delay
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    nowhere = WechatPayClient(f"http://127.0.0.1:{port}", kit.MCHID, kit.APPID,
                              kit.MERCHANT_KEY, kit.CERT_SERIAL, kit.APIV3_KEY,
                              public_key=kit.PLATFORM_KEY.public_key(),
                              public_key_id=kit.PUBLIC_KEY_ID, timeout=(1.0, 1.0))
    with pytest.raises(WalletUnreachable):
        nowhere.jsapi_order("R1", 2500, "挂号费", kit.OPENID, EXPIRE)


# --- certificate mode ------------------------------------------------------------------------

def certificates_answer(cert) -> Answer:
    from cryptography.hazmat.primitives import serialization

    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return ok(data=[{"serial_no": kit.serial_hex(cert),
                     "effective_time": "2026-01-01T00:00:00+08:00",
                     "expire_time": "2031-01-01T00:00:00+08:00",
                     "encrypt_certificate": kit.encrypt(pem, "certificate")}])


def test_certificate_mode_downloads_decrypts_and_caches_the_platform_certificates(stub):
    cert = kit.certificate(kit.PLATFORM_KEY)
    stub.serial = kit.serial_hex(cert)
    stub.on("GET /v3/certificates", certificates_answer(cert))
    stub.on("GET /v3/pay/transactions/out-trade-no/R1", paid(), paid(),
            Answer(paid().body, serial="0ABCDEF0123456789"))
    client = client_for(stub, certificates=True)
    assert client.query("R1").trade_state == "SUCCESS"
    assert client.query("R1").trade_state == "SUCCESS"
    with pytest.raises(WalletUnavailable, match="unknown platform serial"):
        client.query("R1")  # unknown serial within the interval: no second download
    routes = [r["path"].split("?")[0] for r in stub.requests]
    assert routes.count("/v3/certificates") == 1
    assert stub.requests[0]["serial"] == ""  # certificate mode names no public key


def test_a_certificates_answer_that_does_not_decrypt_gives_no_certificate(stub):
    cert = kit.certificate(kit.PLATFORM_KEY)
    stub.serial = kit.serial_hex(cert)
    forged = certificates_answer(cert)
    forged.body["data"][0]["encrypt_certificate"] = kit.encrypt("x", "certificate", "c" * 32)
    stub.on("GET /v3/certificates", forged)
    stub.on("GET /v3/pay/transactions/out-trade-no/R1", paid())
    with pytest.raises(WalletUnavailable, match="unknown platform serial"):
        client_for(stub, certificates=True).query("R1")


# --- the official account: sign-in and template messages -------------------------------------

def test_sign_in_url_and_the_code_exchange_give_an_uncertified_openid(stub):
    stub.on("GET /sns/oauth2/access_token",
            Answer({"access_token": "AT", "expires_in": 7200, "openid": kit.OPENID,
                    "scope": "snsapi_base"}, signed=False),
            Answer({"errcode": 40163, "errmsg": "code been used"}, signed=False))
    gateway = gateway_for(stub, sign_in_page="https://open.weixin.qq.com/connect/oauth2/authorize")
    url = gateway.sign_in_url("https://h.example.cn/h5/", "S1")
    assert url == ("https://open.weixin.qq.com/connect/oauth2/authorize?appid=wxd678efh567hg6787"
                   "&redirect_uri=https%3A%2F%2Fh.example.cn%2Fh5%2F&response_type=code"
                   "&scope=snsapi_base&state=S1#wechat_redirect")
    user = gateway.exchange_auth_code("CODE1")
    assert (user.user_id, user.is_certified, user.name, user.document_number) == (
        kit.OPENID, False, "", "")
    query = parse_qs(urlsplit(stub.requests[0]["path"]).query)
    assert query == {"appid": [kit.APPID], "secret": ["app-secret"], "code": ["CODE1"],
                     "grant_type": ["authorization_code"]}
    with pytest.raises(WalletRefused) as used:
        gateway.exchange_auth_code("CODE1")
    assert used.value.code == "40163"


def test_template_messages_reuse_the_access_token_and_renew_it_once_when_refused(stub):
    token = lambda value: Answer({"access_token": value, "expires_in": 7200}, signed=False)  # noqa: E731
    sent = Answer({"errcode": 0, "errmsg": "ok", "msgid": 1}, signed=False)
    stub.on("GET /cgi-bin/token", token("T1"), token("T2"))
    stub.on("POST /cgi-bin/message/template/send", sent, sent,
            Answer({"errcode": 40001, "errmsg": "invalid credential"}, signed=False), sent,
            Answer({"errcode": 43004, "errmsg": "require subscribe"}, signed=False))
    gateway = gateway_for(stub)
    gateway.push_message(kit.OPENID, "还有 3 位就到您", "https://h.example.cn/h5/q")
    gateway.push_message(kit.OPENID, "请到 3 诊室就诊")
    gateway.push_message(kit.OPENID, "again")  # token refused: renewed, sent again
    with pytest.raises(WalletRefused):
        gateway.push_message(kit.OPENID, "not subscribed")
    paths = [r["path"].split("?")[0] for r in stub.requests]
    assert paths.count("/cgi-bin/token") == 2
    first = stub.requests[1]
    assert first["path"].endswith("access_token=T1")
    assert first["body"] == {"touser": kit.OPENID, "template_id": "TPL-1",
                             "url": "https://h.example.cn/h5/q",
                             "data": {"keyword1": {"value": "还有 3 位就到您"}}}
    assert stub.requests[5]["path"].endswith("access_token=T2")


def test_a_busy_official_account_is_an_unknown_outcome(stub):
    stub.on("GET /cgi-bin/token", Answer({"errcode": -1, "errmsg": "system busy"}, signed=False))
    with pytest.raises(WalletUnavailable):
        gateway_for(stub).push_message(kit.OPENID, "x")


def test_a_day_without_trades_reads_as_an_empty_bill_and_a_bill_in_the_making_is_refused(stub):
    stub.on("GET /v3/bill/tradebill", refused("NO_STATEMENT_EXIST"),
            refused("STATEMENT_CREATING"))
    gateway = gateway_for(stub)
    assert list(gateway.download_trade_bill(dt.date(2026, 11, 26)).entries()) == []
    with pytest.raises(WalletRefused, match="") as making:
        gateway.download_trade_bill(dt.date(2026, 11, 27))
    assert making.value.code == "STATEMENT_CREATING"
