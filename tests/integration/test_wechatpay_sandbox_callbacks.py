"""The WeChat Pay sandbox's callbacks (encrypted, signed, retried on WeChat's schedule), its
trade bill in the real format, the official account's OAuth, tokens and template messages, and
the cashier, on real sockets."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from click.testing import CliRunner

from adapter.wallet.wechatpay_sandbox import wechatpay_sandbox_command
from adapter.wallet.wechatpay_sandbox.notifier import RETRY_SCHEDULE_SECONDS
from tests.integration.wechatpay_sandbox_kit import (  # noqa: F401 - the kit's fixtures
    APIV3_KEY,
    APP_SECRET,
    APPID,
    MCHID,
    Client,
    Receiver,
    Sandbox,
    client,
    decrypt,
    merchant,
    rsa_verify,
    sandbox,
)


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()


def _verified(sandbox: Sandbox, headers: dict, body: str) -> bool:
    message = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n{body}\n"
    return (headers["Wechatpay-Serial"] == sandbox.state.public_key_id
            and rsa_verify(sandbox.public_key, message, headers["Wechatpay-Signature"]))


def test_the_payment_callback_is_encrypted_signed_and_holds_the_transaction(client, receiver):
    client.jsapi("REG20250102001", total=2500, notify_url=receiver.url)
    client.pay("REG20250102001")
    headers, body, _ = receiver.wait_for(1)[0]
    assert _verified(client.sandbox, headers, body)
    notice = json.loads(body)
    assert notice["event_type"] == "TRANSACTION.SUCCESS"
    assert notice["resource_type"] == "encrypt-resource" and notice["summary"] == "支付成功"
    assert notice["create_time"].endswith("+08:00")
    resource = notice["resource"]
    assert resource["algorithm"] == "AEAD_AES_256_GCM"
    assert resource["original_type"] == resource["associated_data"] == "transaction"
    transaction = json.loads(decrypt(resource))
    assert transaction["out_trade_no"] == "REG20250102001"
    assert transaction["trade_state"] == "SUCCESS" and transaction["amount"]["total"] == 2500
    assert transaction["mchid"] == MCHID and transaction["appid"] == APPID


def test_a_failing_receiver_is_retried_on_the_published_schedule_with_one_id(client, receiver):
    receiver.failures = 5
    scale = 0.002  # 15 s -> 30 ms, 10 min -> 1.2 s
    client.sandbox.state.set_knobs({"notify_time_scale": scale})
    client.jsapi("REG20250102002", notify_url=receiver.url)
    client.pay("REG20250102002")
    got = receiver.wait_for(6)
    assert len({json.loads(body)["id"] for _, body, _ in got}) == 1
    assert len({body for _, body, _ in got}) == 1  # the same body; signatures are new
    assert len({h["Wechatpay-Nonce"] for h, _, _ in got}) == 6
    gaps = [b[2] - a[2] for a, b in zip(got, got[1:], strict=False)]
    expected = [s * scale for s in RETRY_SCHEDULE_SECONDS[:5]]  # 15s 15s 30s 3m 10m
    for gap, want in zip(gaps, expected, strict=True):
        assert want * 0.95 <= gap <= want + 0.2, (gaps, expected)
    assert gaps[4] > gaps[3] > gaps[2] > gaps[1] * 1.5
    log = requests.get(f"{client.sandbox.url}/_sandbox/notifications", timeout=5).json()
    assert log[0]["state"] == "delivered" and len(log[0]["attempts"]) == 6


def test_the_schedule_is_wechats_sixteen_attempts_in_24_hours_4_minutes():
    assert RETRY_SCHEDULE_SECONDS == (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600,
                                      10800, 10800, 10800, 21600, 21600)
    assert sum(RETRY_SCHEDULE_SECONDS) == 24 * 3600 + 4 * 60


def test_refund_callbacks_go_to_the_refunds_notify_url(client, receiver):
    client.jsapi("REG20250102003", total=3000)
    client.pay("REG20250102003")
    client.call("POST", "/v3/refund/domestic/refunds", {
        "out_trade_no": "REG20250102003", "out_refund_no": "RF20250102003",
        "notify_url": receiver.url, "amount": {"refund": 3000, "total": 3000,
                                               "currency": "CNY"}})
    headers, body, _ = receiver.wait_for(1)[0]
    assert _verified(client.sandbox, headers, body)
    notice = json.loads(body)
    assert notice["event_type"] == "REFUND.SUCCESS" and notice["resource"]["original_type"] == \
        "refund"
    refund = json.loads(decrypt(notice["resource"]))
    assert refund["refund_status"] == "SUCCESS" and refund["out_refund_no"] == "RF20250102003"
    assert refund["amount"] == {"total": 3000, "refund": 3000, "payer_total": 3000,
                                "payer_refund": 3000}


def test_duplicated_callbacks_share_their_id(client, receiver):
    client.sandbox.state.set_knobs({"duplicate_notifications": True})
    client.jsapi("REG20250102004", notify_url=receiver.url)
    client.pay("REG20250102004")
    got = receiver.wait_for(2)
    assert json.loads(got[0][1])["id"] == json.loads(got[1][1])["id"]


def test_wechatpayv3_verifies_and_decrypts_the_sandboxs_callback(client, merchant, receiver):
    wechatpayv3 = pytest.importorskip("wechatpayv3")
    from adapter.wallet.sandbox.keys import public_pem

    wxpay = wechatpayv3.WeChatPay(
        wechatpay_type=wechatpayv3.WeChatPayType.JSAPI, mchid=MCHID,
        private_key=merchant.private_pem, cert_serial_no=merchant.serial, appid=APPID,
        apiv3_key=APIV3_KEY, public_key=public_pem(client.sandbox.state.platform_private_key),
        public_key_id=client.sandbox.state.public_key_id)
    client.jsapi("REG20250102005", notify_url=receiver.url)
    client.pay("REG20250102005")
    headers, body, _ = receiver.wait_for(1)[0]
    result = wxpay.callback(headers, body)
    assert result["resource"]["out_trade_no"] == "REG20250102005"
    assert wxpay.callback(headers, body.replace("支付成功", "支付失败")) is None


# -- the trade bill ---------------------------------------------------------------------

def test_the_trade_bill_has_wechats_format_backticks_summary_and_hash(client):
    client.sandbox.state.set_knobs({"bills_today": True})
    client.jsapi("REG20250102006", total=2500, description="挂号费,内科")
    client.pay("REG20250102006")
    client.jsapi("REG20250102007", total=1001)
    client.pay("REG20250102007")
    client.call("POST", "/v3/refund/domestic/refunds", {
        "out_trade_no": "REG20250102006", "out_refund_no": "RF20250102006",
        "amount": {"refund": 500, "total": 2500, "currency": "CNY"}})
    today = client.sandbox.state.now().date().isoformat()
    answer = client.call("GET", f"/v3/bill/tradebill?bill_date={today}&bill_type=ALL")
    assert answer.status_code == 200 and client.verified(answer)
    url = answer.json()["download_url"]
    assert answer.json()["hash_type"] == "SHA1"
    path = url[len(client.sandbox.url):]
    file = client.call("GET", path)
    assert file.status_code == 200 and "Wechatpay-Signature" not in file.headers
    assert hashlib.sha1(file.content).hexdigest() == answer.json()["hash_value"]
    lines = file.content.decode("utf-8").split("\r\n")
    assert lines[0].split(",")[:7] == ["交易时间", "公众账号ID", "商户号", "特约商户号", "设备号",
                                       "微信订单号", "商户订单号"]
    assert len(lines[0].split(",")) == 27 and lines[-1] == ""
    rows = [line.split(",") for line in lines[1:4]]
    assert all(len(row) == 27 and all(v.startswith("`") for v in row) for row in rows)
    by_status = {row[9]: row for row in rows if row[6] == "`REG20250102006"}
    assert by_status["`SUCCESS"][12] == "`25.00" and by_status["`SUCCESS"][20] == "`挂号费，内科"
    assert by_status["`REFUND"][16] == "`5.00" and by_status["`REFUND"][12] == "`0.00"
    assert by_status["`REFUND"][15] == "`RF20250102006"
    assert lines[4] == ("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,"
                        "订单总金额,申请退款总金额")
    assert lines[5] == "`3,`35.01,`5.00,`0.00,`0.00000,`35.01,`5.00"
    gz = client.call("GET", f"/v3/bill/tradebill?bill_date={today}&bill_type=ALL&tar_type=GZIP")
    data = client.call("GET", gz.json()["download_url"][len(client.sandbox.url):]).content
    assert hashlib.sha1(gzip.decompress(data)).hexdigest() == gz.json()["hash_value"]


def test_no_bill_for_today_the_future_or_a_day_without_trades(client):
    now = client.sandbox.state.now().date()

    def ask(day: dt.date) -> tuple[int, str]:
        response = client.call("GET", f"/v3/bill/tradebill?bill_date={day}&bill_type=ALL")
        return response.status_code, response.json()["code"]

    client.jsapi("REG20250102008")
    client.pay("REG20250102008")
    assert ask(now) == (400, "STATEMENT_CREATING")
    assert ask(now + dt.timedelta(days=1)) == (400, "INVALID_REQUEST")
    assert ask(now - dt.timedelta(days=1)) == (400, "NO_STATEMENT_EXIST")
    assert ask(now - dt.timedelta(days=120)) == (400, "INVALID_REQUEST")
    stale = client.call("GET", "/v3/billdownload/file?token=nope")
    assert (stale.status_code, stale.json()["code"]) == (400, "INVALID_REQUEST")


# -- the official account, the cashier -----------------------------------------------------

def test_oauth_code_for_openid_once_within_five_minutes(sandbox):
    sandbox.state.set_knobs({"notify_time_scale": 1.0})  # a code lives its real 5 minutes
    base = sandbox.url
    openid = sandbox.openid(1)
    page = requests.get(f"{base}/connect/oauth2/authorize", params={
        "appid": APPID, "redirect_uri": "https://hospital.example/h5/", "response_type": "code",
        "scope": "snsapi_base", "state": "s-1"}, timeout=5)
    assert page.status_code == 200 and openid in page.text
    chosen = requests.post(f"{base}/connect/oauth2/authorize", data={
        "appid": APPID, "redirect_uri": "https://hospital.example/h5/", "scope": "snsapi_base",
        "state": "s-1", "openid": openid}, allow_redirects=False, timeout=5)
    assert chosen.status_code == 302
    query = parse_qs(urlsplit(chosen.headers["Location"]).query)
    assert query["state"] == ["s-1"]

    def exchange(code: str, secret: str = APP_SECRET) -> dict:
        return requests.get(f"{base}/sns/oauth2/access_token", params={
            "appid": APPID, "secret": secret, "code": code,
            "grant_type": "authorization_code"}, timeout=5).json()

    assert exchange(query["code"][0], "wrong")["errcode"] == 40125
    token = exchange(query["code"][0])
    assert token["openid"] == openid and token["expires_in"] == 7200
    assert token["scope"] == "snsapi_base"
    assert exchange(query["code"][0])["errcode"] == 40163  # used
    assert exchange("nonsense")["errcode"] == 40029
    sandbox.state.set_knobs({"notify_time_scale": 0.0001})  # 5 minutes -> 30 ms
    code = requests.post(f"{base}/_sandbox/oauth_code", json={"openid": openid},
                         timeout=5).json()["code"]
    time.sleep(0.05)
    assert exchange(code)["errcode"] == 40029
    # The user remembered on this browser is signed in silently next time (snsapi_base).
    silent = requests.get(f"{base}/connect/oauth2/authorize", params={
        "appid": APPID, "redirect_uri": "https://hospital.example/h5/", "state": "s-2",
        "response_type": "code", "scope": "snsapi_base"}, cookies=chosen.cookies,
        allow_redirects=False, timeout=5)
    assert silent.status_code == 302 and "code=" in silent.headers["Location"]


def test_template_messages_need_a_token_and_land_in_the_inbox(sandbox):
    base = sandbox.url
    token = requests.get(f"{base}/cgi-bin/token", params={
        "grant_type": "client_credential", "appid": APPID, "secret": APP_SECRET},
        timeout=5).json()
    assert token["expires_in"] == 7200
    openid = sandbox.openid(0)
    message = {"touser": openid, "template_id": "TPL-QUEUE", "url": "https://hospital.example/",
               "data": {"thing1": {"value": "内科"}, "number2": {"value": "3"}}}
    sent = requests.post(f"{base}/cgi-bin/message/template/send",
                         params={"access_token": token["access_token"]}, json=message,
                         timeout=5).json()
    assert sent["errcode"] == 0 and sent["errmsg"] == "ok" and isinstance(sent["msgid"], int)
    inbox = requests.get(f"{base}/inbox/{openid}", timeout=5).json()
    assert inbox[0]["template_id"] == "TPL-QUEUE" and inbox[0]["data"]["number2"]["value"] == "3"
    bad = requests.post(f"{base}/cgi-bin/message/template/send", params={"access_token": "x"},
                        json=message, timeout=5).json()
    assert bad["errcode"] == 40001
    unsubscribed = sandbox.openid(len(sandbox.state.users) - 1)
    refused = requests.post(f"{base}/cgi-bin/message/template/send",
                            params={"access_token": token["access_token"]},
                            json={**message, "touser": unsubscribed}, timeout=5).json()
    assert refused["errcode"] == 43004


def test_the_cashier_pays_and_checks_the_bridges_pay_sign(client, merchant, receiver):
    from tests.integration.wechatpay_sandbox_kit import rsa_sign

    prepay_id = client.jsapi("REG20250102009", notify_url=receiver.url).json()["prepay_id"]
    base = client.sandbox.url
    bridge = {"appId": APPID, "timeStamp": "1700000000", "nonceStr": "N0NCE",
              "package": f"prepay_id={prepay_id}", "signType": "RSA"}
    bridge["paySign"] = rsa_sign(merchant.key, f"{APPID}\n1700000000\nN0NCE\n"
                                 f"prepay_id={prepay_id}\n")
    page = requests.get(f"{base}/sandbox/cashier", params={"prepay_id": prepay_id, **bridge},
                        timeout=5)
    assert page.status_code == 200 and "25.00" in page.text
    forged = requests.get(f"{base}/sandbox/cashier", params={
        "prepay_id": prepay_id, **bridge, "paySign": bridge["paySign"][:-4] + "AAAA"}, timeout=5)
    assert forged.status_code == 400
    paid = requests.post(f"{base}/sandbox/cashier", data={
        "prepay_id": prepay_id, "return_url": "https://hospital.example/h5/paid"}, timeout=5)
    assert paid.status_code == 200 and "https://hospital.example/h5/paid" in paid.text
    assert json.loads(receiver.wait_for(1)[0][1])["event_type"] == "TRANSACTION.SUCCESS"


def test_the_command_documents_every_option():
    result = CliRunner().invoke(wechatpay_sandbox_command, ["--help"])
    assert result.exit_code == 0
    for option in ("--apiv3-key-file", "--merchant-public-key-file", "--platform-mode",
                   "--platform-private-key-file", "--notify-time-scale", "--timeout-rate",
                   "--system-error-rate", "--frequency-limit-rate", "--duplicate-notifications",
                   "--notify-delay-seconds", "--bills-today", "--refund-seconds"):
        assert option in result.output
