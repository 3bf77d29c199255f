"""AlipayClient and AlipayWalletGateway against a stub gateway.do on 127.0.0.1.

The stub plays the platform: it checks each request's RSA2 signature with the app's public key,
records the request, and answers from a script with bodies signed by a platform key pair.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest

from adapter.ports import (
    TradeState,
    WalletGateway,
    WalletRefused,
    WalletUnavailable,
    WalletUnreachable,
)
from adapter.wallet.alipay import consts
from adapter.wallet.alipay.client import AlipayClient
from adapter.wallet.alipay.gateway import AlipayWalletGateway
from adapter.wallet.alipay.signing import (
    SignatureError,
    generate_key_pair,
    load_private_key,
    sign,
    signing_content,
    verify,
)

APP_ID = "2021000000000001"
SELLER_ID = "2088000000000001"
BUYER_ID = "2088102177846880"
BEIJING = dt.timezone(dt.timedelta(hours=8))


@dataclass
class Answer:
    """One scripted gateway answer."""

    obj: dict[str, Any] | None = None
    signed: bool = True
    error_response: bool = False
    status: int = 200
    delay: float = 0.0
    raw: bytes | None = None
    signing_key: Any = None  # another key than the platform's: a forged answer


def ok(**fields: Any) -> Answer:
    return Answer({"code": "10000", "msg": "Success", **fields})


def refused(sub_code: str, code: str = "40004", sub_msg: str = "业务处理失败") -> Answer:
    return Answer({"code": code, "msg": "Business Failed", "sub_code": sub_code,
                   "sub_msg": sub_msg})


class StubGateway:
    def __init__(self, platform_private: Any, app_public: str) -> None:
        self.platform_private = platform_private
        self.app_public = app_public
        self.script: dict[str, deque[Answer]] = defaultdict(deque)
        self.requests: list[dict[str, str]] = []
        self.bad_signatures = 0
        self.files: dict[str, bytes] = {}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = self.rfile.read(length).decode("ascii")
                params = dict(parse_qsl(body, keep_blank_values=True, encoding="utf-8",
                                        strict_parsing=True))
                if not verify(signing_content(params), params.get("sign", ""), stub.app_public):
                    stub.bad_signatures += 1
                stub.requests.append(params)
                queue = stub.script[params["method"]]
                answer = queue.popleft() if queue else Answer(status=500, raw=b"unscripted")
                stub._reply(self, params["method"], answer)

            def do_GET(self) -> None:
                data = stub.files.get(self.path)
                self.send_response(200 if data is not None else 404)
                self.end_headers()
                self.wfile.write(data or b"")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/gateway.do"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def _reply(self, handler: BaseHTTPRequestHandler, method: str, answer: Answer) -> None:
        if answer.delay:
            time.sleep(answer.delay)
        if answer.raw is not None:
            payload = answer.raw
        else:
            # Alipay's own spacing, Chinese unescaped: verification must use the raw text.
            inner = json.dumps(answer.obj, ensure_ascii=False)
            key = "error_response" if answer.error_response else (
                method.replace(".", "_") + "_response")
            sig = sign(inner, answer.signing_key or self.platform_private) if answer.signed else ""
            payload = ('{"' + key + '":' + inner + ',"sign":"' + sig + '"}').encode("utf-8")
        handler.send_response(answer.status)
        handler.send_header("Content-Type", "text/html")  # no charset: requests would guess
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def on(self, method: str, *answers: Answer) -> None:
        self.script[method].extend(answers)

    def methods(self) -> list[str]:
        return [r["method"] for r in self.requests]

    def biz(self, index: int = -1) -> dict[str, Any]:
        return json.loads(self.requests[index]["biz_content"])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[str, str]]:
    return {"app": generate_key_pair(), "platform": generate_key_pair(),
            "forger": generate_key_pair()}


@pytest.fixture(scope="module")
def app_private_key(keys):
    return load_private_key(keys["app"][0])  # loading checks the key: ~50 ms, so only once


@pytest.fixture(scope="module")
def platform_private_key(keys):
    return load_private_key(keys["platform"][0])


@pytest.fixture
def stub(keys, platform_private_key):
    gateway = StubGateway(platform_private_key, keys["app"][1])
    yield gateway
    gateway.close()
    assert gateway.bad_signatures == 0, "a request did not verify with the app public key"


@pytest.fixture
def client(stub, keys, app_private_key) -> AlipayClient:
    return AlipayClient(stub.url, APP_ID, app_private_key, keys["platform"][1],
                        seller_id=SELLER_ID, notify_url="https://hospital.example/notify/alipay",
                        timeout=(1.0, 0.5), message_template_id="TPL1")


@pytest.fixture
def gateway(client) -> AlipayWalletGateway:
    return AlipayWalletGateway(client)


EXPIRE = dt.datetime(2024, 5, 1, 2, 15, tzinfo=dt.UTC)  # 10:15 in Beijing


def _create(gateway: AlipayWalletGateway) -> str:
    created = gateway.create_trade("BK1", 2500, "挂号费-内科", BUYER_ID, EXPIRE)
    # Alipay names its trade at creation, and tradePay takes that number
    assert created.pay_reference == created.trade_no
    return created.trade_no


def test_gateway_implements_the_port(gateway):
    port: WalletGateway = gateway
    assert port is gateway


# --------------------------------------------------------------------------------------------
# Requests: method, common parameters, biz_content, signature


def test_trade_create_request(stub, client):
    stub.on(consts.TRADE_CREATE, ok(out_trade_no="BK1", trade_no="2024050122001"))
    before = dt.datetime.now(BEIJING).replace(tzinfo=None, microsecond=0)
    assert client.trade_create("BK1", 2500, "挂号费-内科", BUYER_ID, EXPIRE) == "2024050122001"
    request = stub.requests[0]
    assert request["method"] == "alipay.trade.create"
    assert {k: request[k] for k in ("app_id", "format", "charset", "sign_type", "version")} == {
        "app_id": APP_ID, "format": "JSON", "charset": "utf-8", "sign_type": "RSA2",
        "version": "1.0"}
    assert request["notify_url"] == "https://hospital.example/notify/alipay"
    assert "app_auth_token" not in request
    sent_at = dt.datetime.strptime(request["timestamp"], "%Y-%m-%d %H:%M:%S")
    assert abs((sent_at - before).total_seconds()) < 5  # Beijing wall time
    # Compact JSON with the Chinese as is.
    assert '"subject":"挂号费-内科"' in request["biz_content"]
    assert stub.biz() == {
        "out_trade_no": "BK1", "total_amount": "25.00", "subject": "挂号费-内科",
        "product_code": "JSAPI_PAY", "buyer_id": BUYER_ID, "time_expire": "2024-05-01 10:15:00",
        "seller_id": SELLER_ID}


def test_trade_create_with_open_id_and_own_notify_url(stub, client):
    stub.on(consts.TRADE_CREATE, ok(out_trade_no="BK1", trade_no="T"))
    client.trade_create("BK1", 1, "s", "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5",
                        EXPIRE, notify_url="https://h.example/n")
    assert stub.biz()["buyer_open_id"].startswith("074a") and "buyer_id" not in stub.biz()
    assert stub.biz()["total_amount"] == "0.01"
    assert stub.requests[0]["notify_url"] == "https://h.example/n"


def test_trade_create_refuses_naive_expiry_and_bad_amounts(client):
    with pytest.raises(ValueError):
        client.trade_create("BK1", 2500, "s", BUYER_ID, dt.datetime(2024, 5, 1, 10, 15))
    for amount in (0, -1):
        with pytest.raises(ValueError):
            client.trade_create("BK1", amount, "s", BUYER_ID, EXPIRE)


def test_oauth_token_params_are_outside_biz_content(stub, client):
    stub.on(consts.OAUTH_TOKEN, ok(user_id=BUYER_ID, access_token="authusrB1", expires_in=1296000,
                                  refresh_token="r"))
    token = client.oauth_token("4b203fe6c11548bcabd8da5bb087a83b")
    request = stub.requests[0]
    assert request["grant_type"] == "authorization_code"
    assert request["code"] == "4b203fe6c11548bcabd8da5bb087a83b"
    assert "biz_content" not in request
    assert (token.user_id, token.access_token, token.expires_in) == (BUYER_ID, "authusrB1",
                                                                      1296000)
    assert "authusrB1" not in repr(token)


def test_oauth_token_success_without_a_code_field(stub, client):
    # Alipay's documented success sample for alipay.system.oauth.token has no "code" field.
    stub.on(consts.OAUTH_TOKEN, Answer({"user_id": BUYER_ID, "access_token": "authusrB2",
                                        "expires_in": 1296000, "refresh_token": "r"}))
    assert client.oauth_token("4b203fe6c11548bcabd8da5bb087a83c").access_token == "authusrB2"


def test_codeless_answer_of_other_methods_is_not_success(stub, client):
    stub.on(consts.TRADE_QUERY, Answer({"out_trade_no": "R1", "trade_status": "TRADE_SUCCESS"}))
    with pytest.raises(WalletRefused):
        client.trade_query("R1")


@pytest.mark.parametrize(
    ("cert_type", "document_type"),
    [("0", "RESIDENT_ID"), ("1", "PASSPORT"), ("11", "HK_MACAO_TRAVEL_PERMIT"),
     ("12", "TAIWAN_TRAVEL_PERMIT"), ("16", "FOREIGN_PERMANENT_RESIDENT"), ("2", "")],
)
def test_exchange_auth_code_maps_the_certified_user(stub, gateway, cert_type, document_type):
    stub.on(consts.OAUTH_TOKEN, ok(user_id=BUYER_ID, access_token="authusrB1", expires_in=300))
    stub.on(consts.USER_INFO_SHARE, ok(user_id=BUYER_ID, is_certified="T", user_name="张三",
                                       cert_type=cert_type, cert_no="11010519491231002X",
                                       gender="m", mobile="13800000000"))
    user = gateway.exchange_auth_code("code1")
    assert stub.methods() == ["alipay.system.oauth.token", "alipay.user.info.share"]
    assert stub.requests[1]["auth_token"] == "authusrB1" and "biz_content" not in stub.requests[1]
    assert (user.user_id, user.is_certified, user.name, user.sex, user.mobile) == (
        BUYER_ID, True, "张三", "M", "13800000000")
    assert user.document_type == document_type
    assert user.document_number == ("11010519491231002X" if document_type else "")


def test_uncertified_user(stub, gateway):
    stub.on(consts.OAUTH_TOKEN, ok(user_id=BUYER_ID, access_token="a", expires_in=300))
    stub.on(consts.USER_INFO_SHARE, ok(user_id=BUYER_ID, is_certified="F", gender="f"))
    user = gateway.exchange_auth_code("code1")
    assert (user.is_certified, user.sex, user.document_type) == (False, "F", "")


def test_expired_auth_code_is_refused(stub, gateway):
    # Alipay answers a used or expired code with an unsigned error_response.
    stub.on(consts.OAUTH_TOKEN, Answer(
        {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.code-invalid",
         "sub_msg": "授权码code无效"}, signed=False, error_response=True))
    with pytest.raises(WalletRefused) as info:
        gateway.exchange_auth_code("used-code")
    assert (info.value.code, info.value.sub_code) == ("40002", "isv.code-invalid")
    assert stub.methods() == ["alipay.system.oauth.token"]


def test_trade_query_reads_the_trade(stub, gateway):
    stub.on(consts.TRADE_QUERY, ok(out_trade_no="BK1", trade_no="T1", trade_status="TRADE_SUCCESS",
                                  total_amount="25.00", buyer_user_id=BUYER_ID,
                                  subject="挂号费 {内科} \"复诊\""))
    status = gateway.query_trade("BK1")
    assert stub.biz() == {"out_trade_no": "BK1"}
    assert (status.state, status.trade_no, status.total_fen, status.buyer_id, status.paid) == (
        TradeState.PAID, "T1", 2500, BUYER_ID, True)


@pytest.mark.parametrize(
    ("trade_status", "state"),
    [("WAIT_BUYER_PAY", TradeState.CREATED), ("TRADE_SUCCESS", TradeState.PAID),
     ("TRADE_FINISHED", TradeState.PAID), ("TRADE_CLOSED", TradeState.CLOSED)],
)
def test_every_alipay_trade_status_has_its_neutral_state(stub, gateway, trade_status, state):
    stub.on(consts.TRADE_QUERY, ok(out_trade_no="BK1", trade_no="T1", trade_status=trade_status,
                                  total_amount="25.00"))
    status = gateway.query_trade("BK1")
    assert status.state is state and status.paid == (state is TradeState.PAID)


def test_an_undocumented_trade_status_is_an_unknown_outcome(stub, gateway):
    # Nobody can say whether the money was taken: never read it as closed (it would be freed).
    stub.on(consts.TRADE_QUERY, ok(out_trade_no="BK1", trade_no="T1", trade_status="ODD"))
    with pytest.raises(WalletUnavailable):
        gateway.query_trade("BK1")


def test_trade_not_exist_is_not_found(stub, gateway):
    stub.on(consts.TRADE_QUERY, refused("ACQ.TRADE_NOT_EXIST", sub_msg="交易不存在"))
    status = gateway.query_trade("BK404")
    assert (status.out_trade_no, status.state, status.paid) == ("BK404", TradeState.NOT_FOUND,
                                                               False)


def test_refund_and_refund_query_requests(stub, client):
    stub.on(consts.TRADE_REFUND, ok(out_trade_no="BK1", fund_change="Y", refund_fee="25.00"))
    stub.on(consts.REFUND_QUERY, ok(out_trade_no="BK1", out_request_no="RF1",
                                   refund_amount="10.00", refund_status="REFUND_SUCCESS"))
    result = client.trade_refund("BK1", 1000, "RF1", "医生停诊")
    assert stub.biz() == {"out_trade_no": "BK1", "refund_amount": "10.00",
                          "out_request_no": "RF1", "refund_reason": "医生停诊"}
    assert (result.refund_fen, result.done) == (1000, True)  # not refund_fee, the trade's total
    queried = client.refund_query("BK1", "RF1")
    assert stub.biz() == {"out_trade_no": "BK1", "out_request_no": "RF1",
                          "query_options": ["gmt_refund_pay"]}
    assert stub.methods()[-1] == "alipay.trade.fastpay.refund.query"
    assert (queried.refund_fen, queried.done) == (1000, True)


def test_message_send_request(stub, gateway):
    stub.on(consts.MESSAGE_SINGLE_SEND, ok(msg_id="m1"))
    gateway.push_message(BUYER_ID, "前面还有3位,请到2诊室门口候诊", "https://h.example/h5/q/1")
    assert stub.methods() == ["alipay.open.public.message.single.send"]
    biz = stub.biz()
    assert biz["to_user_id"] == BUYER_ID
    assert biz["template"]["template_id"] == "TPL1"
    context = biz["template"]["context"]
    assert context["keyword1"]["value"] == "前面还有3位,请到2诊室门口候诊"
    assert context["url"] == "https://h.example/h5/q/1"


def test_bill_download(stub, gateway):
    stub.files["/bill/20240501.csv.zip"] = b"PK\x03\x04zipbytes"
    url = stub.url.replace("/gateway.do", "/bill/20240501.csv.zip")
    stub.on(consts.BILL_DOWNLOAD_URL, ok(bill_download_url=url))
    assert gateway.download_bill(dt.date(2024, 5, 1)) == b"PK\x03\x04zipbytes"
    assert stub.biz() == {"bill_type": "trade", "bill_date": "2024-05-01"}


# --------------------------------------------------------------------------------------------
# Answers that cannot be believed, and codes


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param("forged", id="signed-by-another-key"),
        pytest.param(Answer({"code": "10000", "msg": "Success", "trade_no": "T"}, signed=False),
                     id="unsigned-success"),
        pytest.param(Answer(status=502, raw=b"<html>502 Bad Gateway</html>"), id="http-502"),
        pytest.param(Answer(raw=b"<html>maintenance</html>"), id="html-200"),
        pytest.param(Answer(raw='{"alipay_trade_query_response":{"x":"支'.encode("gbk")),
                     id="not-utf8"),
    ],
)
def test_unbelievable_answers_are_unavailable(stub, client, keys, answer):
    if answer == "forged":
        answer = ok(out_trade_no="BK1", trade_status="TRADE_SUCCESS")
        answer.signing_key = keys["forger"][0]
    stub.on(consts.TRADE_QUERY, answer)
    with pytest.raises(WalletUnavailable):
        client.trade_query("BK1")


def test_forged_answer_is_a_signature_error(stub, client, keys):
    answer = ok(out_trade_no="BK1", trade_status="TRADE_SUCCESS")
    answer.signing_key = keys["forger"][0]
    stub.on(consts.TRADE_QUERY, answer)
    with pytest.raises(SignatureError):
        client.trade_query("BK1")


def test_connection_refused_is_unavailable(keys):
    dead = AlipayClient("http://127.0.0.1:9/gateway.do", APP_ID, keys["app"][0],
                        keys["platform"][1], timeout=(0.5, 0.5))
    with pytest.raises(WalletUnreachable):  # the request never left: nothing happened there
        dead.trade_query("BK1")


def test_a_timeout_after_sending_is_unknown_not_unreachable(stub, client):
    stub.on(consts.TRADE_QUERY, Answer({"code": "10000"}, delay=0.8))
    with pytest.raises(WalletUnavailable) as info:
        client.trade_query("BK1")
    assert not isinstance(info.value, WalletUnreachable)


def test_a_create_refused_outright_created_nothing_unless_it_says_a_trade_exists(stub, gateway):
    stub.on(consts.TRADE_CREATE, refused("ACQ.BUYER_NOT_EXIST"), refused("ACQ.TRADE_HAS_EXIST"))
    with pytest.raises(WalletRefused) as info:
        _create(gateway)
    assert info.value.nothing_created
    with pytest.raises(WalletRefused) as info:
        _create(gateway)
    assert not info.value.nothing_created


def test_a_create_refused_after_an_unknown_outcome_may_still_have_created(stub, gateway):
    stub.on(consts.TRADE_CREATE, refused("ACQ.SYSTEM_ERROR"), refused("ACQ.BUYER_NOT_EXIST"))
    stub.on(consts.TRADE_QUERY, refused("ACQ.TRADE_NOT_EXIST"))
    with pytest.raises(WalletRefused) as info:
        _create(gateway)
    assert not info.value.nothing_created  # the first attempt may have landed after all


@pytest.mark.parametrize(
    ("code", "sub_code", "unknown"),
    [("40004", "ACQ.SYSTEM_ERROR", True), ("20000", "isp.unknow-error", True),
     ("20000", "aop.ACQ.SYSTEM_ERROR", True), ("20000", "", True),
     ("40004", "ACQ.TRADE_HAS_SUCCESS", False), ("40004", "ACQ.TRADE_HAS_CLOSE", False),
     ("40004", "ACQ.SELLER_BALANCE_NOT_ENOUGH", False),
     ("40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", False),
     ("40002", "isv.invalid-signature", False)],
)
def test_codes_split_into_unknown_outcomes_and_refusals(stub, client, code, sub_code, unknown):
    stub.on(consts.TRADE_REFUND, refused(sub_code, code=code))
    expected = WalletUnavailable if unknown else WalletRefused
    with pytest.raises(expected) as info:
        client.trade_refund("BK1", 100, "RF1", "")
    if not unknown:
        assert (info.value.code, info.value.sub_code) == (code, sub_code)


# --------------------------------------------------------------------------------------------
# Settling unknown outcomes: never charge or refund twice


def test_create_system_error_settled_by_query_without_second_create(stub, gateway):
    stub.on(consts.TRADE_CREATE, refused("ACQ.SYSTEM_ERROR"))
    stub.on(consts.TRADE_QUERY, ok(out_trade_no="BK1", trade_no="T1", trade_status="WAIT_BUYER_PAY",
                                  total_amount="25.00"))
    assert _create(gateway) == "T1"
    assert stub.methods() == ["alipay.trade.create", "alipay.trade.query"]


def test_create_timeout_settled_by_query(stub, gateway):
    stub.on(consts.TRADE_CREATE, Answer({"code": "10000", "msg": "Success", "trade_no": "T1",
                                         "out_trade_no": "BK1"}, delay=0.8))
    stub.on(consts.TRADE_QUERY, ok(out_trade_no="BK1", trade_no="T1", trade_status="WAIT_BUYER_PAY",
                                  total_amount="25.00"))
    assert _create(gateway) == "T1"
    assert stub.methods() == ["alipay.trade.create", "alipay.trade.query"]


def test_create_not_found_after_unknown_retries_once_with_same_out_trade_no(stub, gateway):
    stub.on(consts.TRADE_CREATE, Answer(status=503, raw=b"busy"),
            ok(out_trade_no="BK1", trade_no="T2"))
    stub.on(consts.TRADE_QUERY, refused("ACQ.TRADE_NOT_EXIST"))
    assert _create(gateway) == "T2"
    assert stub.methods() == ["alipay.trade.create", "alipay.trade.query", "alipay.trade.create"]
    assert stub.biz(0) == stub.biz(2)


def test_create_still_unknown_after_retry_raises_unavailable(stub, gateway):
    stub.on(consts.TRADE_CREATE, refused("ACQ.SYSTEM_ERROR"), refused("ACQ.SYSTEM_ERROR"))
    stub.on(consts.TRADE_QUERY, refused("ACQ.TRADE_NOT_EXIST"))
    with pytest.raises(WalletUnavailable):
        _create(gateway)
    assert stub.methods().count("alipay.trade.create") == 2


def test_create_unknown_and_query_unknown_raises_unavailable(stub, gateway):
    stub.on(consts.TRADE_CREATE, refused("ACQ.SYSTEM_ERROR"))
    stub.on(consts.TRADE_QUERY, refused("ACQ.SYSTEM_ERROR"))
    with pytest.raises(WalletUnavailable):
        _create(gateway)
    assert stub.methods() == ["alipay.trade.create", "alipay.trade.query"]


def test_create_settled_on_a_trade_of_another_amount_is_refused(stub, gateway):
    stub.on(consts.TRADE_CREATE, refused("ACQ.SYSTEM_ERROR"))
    stub.on(consts.TRADE_QUERY, ok(out_trade_no="BK1", trade_no="T1",
                                  trade_status="WAIT_BUYER_PAY", total_amount="0.01"))
    with pytest.raises(WalletRefused):
        _create(gateway)


def test_refund_system_error_settled_by_refund_query(stub, gateway):
    stub.on(consts.TRADE_REFUND, refused("ACQ.SYSTEM_ERROR"))
    stub.on(consts.REFUND_QUERY, ok(out_trade_no="BK1", out_request_no="RF1",
                                   refund_amount="25.00", refund_status="REFUND_SUCCESS"))
    result = gateway.refund("BK1", 2500, "RF1", "停诊退款")
    assert (result.done, result.refund_fen, result.out_request_no) == (True, 2500, "RF1")
    assert stub.methods() == ["alipay.trade.refund", "alipay.trade.fastpay.refund.query"]
    assert stub.biz(1)["out_request_no"] == "RF1"


def test_refund_timeout_not_found_retries_once_with_same_out_request_no(stub, gateway):
    stub.on(consts.TRADE_REFUND, Answer({"code": "10000", "msg": "Success", "fund_change": "Y"},
                                        delay=0.8),
            ok(out_trade_no="BK1", fund_change="Y", refund_fee="25.00"))
    stub.on(consts.REFUND_QUERY, ok(out_trade_no="BK1"))  # no refund data: not made
    result = gateway.refund("BK1", 2500, "RF1", "")
    assert result.done
    assert stub.methods() == ["alipay.trade.refund", "alipay.trade.fastpay.refund.query",
                              "alipay.trade.refund"]
    assert [stub.biz(i)["out_request_no"] for i in range(3)] == ["RF1", "RF1", "RF1"]
    assert stub.biz(0) == stub.biz(2)


def test_refund_fund_change_n_is_confirmed_by_query(stub, gateway):
    # fund_change=N on a repeated out_request_no: the money moved the first time.
    stub.on(consts.TRADE_REFUND, ok(out_trade_no="BK1", fund_change="N", refund_fee="25.00"))
    stub.on(consts.REFUND_QUERY, ok(out_trade_no="BK1", out_request_no="RF1",
                                   refund_amount="25.00"))  # no refund_status: success (older)
    result = gateway.refund("BK1", 2500, "RF1", "")
    assert (result.done, result.refund_fen) == (True, 2500)
    assert stub.methods().count("alipay.trade.refund") == 1


def test_refund_refusal_is_not_retried(stub, gateway):
    stub.on(consts.TRADE_REFUND, refused("ACQ.SELLER_BALANCE_NOT_ENOUGH"))
    with pytest.raises(WalletRefused) as info:
        gateway.refund("BK1", 2500, "RF1", "")
    assert info.value.sub_code == "ACQ.SELLER_BALANCE_NOT_ENOUGH"
    assert stub.methods() == ["alipay.trade.refund"]


def test_close_unpaid_trade(stub, gateway):
    stub.on(consts.TRADE_CLOSE, ok(out_trade_no="BK1", trade_no="T1"))
    status = gateway.close_trade("BK1")
    assert (status.state, status.trade_no) == (TradeState.CLOSED, "T1")
    assert stub.biz() == {"out_trade_no": "BK1"}


@pytest.mark.parametrize("sub_code", ["ACQ.TRADE_STATUS_ERROR", "ACQ.TRADE_HAS_SUCCESS"])
def test_close_of_a_paid_trade_answers_trade_success(stub, gateway, sub_code):
    stub.on(consts.TRADE_CLOSE, refused(sub_code, sub_msg="交易状态不合法"))
    stub.on(consts.TRADE_QUERY, ok(out_trade_no="BK1", trade_no="T1", trade_status="TRADE_SUCCESS",
                                  total_amount="25.00"))
    status = gateway.close_trade("BK1")
    assert (status.state, status.paid, status.total_fen) == (TradeState.PAID, True, 2500)
    assert stub.methods() == ["alipay.trade.close", "alipay.trade.query"]


def test_close_of_a_trade_never_created_is_not_found(stub, gateway):
    stub.on(consts.TRADE_CLOSE, refused("ACQ.TRADE_NOT_EXIST"))
    assert gateway.close_trade("BK1").state is TradeState.NOT_FOUND


def test_close_unknown_outcome_settled_by_query_then_one_more_close(stub, gateway):
    stub.on(consts.TRADE_CLOSE, refused("ACQ.SYSTEM_ERROR"), ok(out_trade_no="BK1", trade_no="T1"))
    stub.on(consts.TRADE_QUERY, ok(out_trade_no="BK1", trade_no="T1",
                                  trade_status="WAIT_BUYER_PAY", total_amount="25.00"))
    assert gateway.close_trade("BK1").state is TradeState.CLOSED
    assert stub.methods() == ["alipay.trade.close", "alipay.trade.query", "alipay.trade.close"]


def test_close_unknown_outcome_on_a_paid_trade_answers_paid(stub, gateway):
    stub.on(consts.TRADE_CLOSE, Answer(status=504, raw=b""))
    stub.on(consts.TRADE_QUERY, ok(out_trade_no="BK1", trade_no="T1", trade_status="TRADE_SUCCESS",
                                  total_amount="25.00"))
    assert gateway.close_trade("BK1").paid
    assert stub.methods() == ["alipay.trade.close", "alipay.trade.query"]
