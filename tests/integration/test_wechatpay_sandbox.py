"""The WeChat Pay sandbox's APIv3 on a real socket, driven by a merchant written in the test from
the v3 documents (tests/integration/wechatpay_sandbox_kit.py) and, where installed, by
`wechatpayv3`, whose own verification must accept the sandbox's signatures."""

from __future__ import annotations

import json
import re
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration.wechatpay_sandbox_kit import (  # noqa: F401 - the kit's fixtures
    APIV3_KEY,
    APPID,
    MCHID,
    Client,
    Sandbox,
    client,
    decrypt,
    merchant,
    sandbox,
)


def test_a_jsapi_order_gets_a_prepay_id_in_a_signed_answer(client):
    response = client.jsapi("REG20250101001")
    assert response.status_code == 200
    assert re.fullmatch(r"wx\w{28,}", response.json()["prepay_id"])
    assert client.verified(response)
    assert response.headers["Wechatpay-Serial"] == client.sandbox.state.public_key_id
    assert response.headers["Wechatpay-Serial"].startswith("PUB_KEY_ID_")


def test_the_same_order_again_gets_the_same_prepay_id_and_a_changed_one_is_refused(client):
    first = client.jsapi("REG20250101002").json()["prepay_id"]
    assert client.jsapi("REG20250101002").json()["prepay_id"] == first
    changed = client.jsapi("REG20250101002", total=2600)
    assert changed.status_code == 403
    assert changed.json()["code"] == "OUT_TRADE_NO_USED" and client.verified(changed)


def test_an_order_is_queried_unpaid_then_paid_with_amount_payer_and_beijing_time(client):
    client.jsapi("REG20250101003", total=2500)
    path = f"/v3/pay/transactions/out-trade-no/REG20250101003?mchid={MCHID}"
    unpaid = client.call("GET", path)
    assert unpaid.status_code == 200 and client.verified(unpaid)
    assert unpaid.json()["trade_state"] == "NOTPAY" and "transaction_id" not in unpaid.json()
    client.pay("REG20250101003")
    paid = client.call("GET", path).json()
    assert paid["trade_state"] == "SUCCESS" and paid["trade_type"] == "JSAPI"
    assert paid["amount"] == {"total": 2500, "payer_total": 2500, "currency": "CNY",
                              "payer_currency": "CNY"}
    assert paid["payer"] == {"openid": client.sandbox.openid()}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", paid["success_time"])
    assert re.fullmatch(r"4200\d{24}", paid["transaction_id"])
    by_id = client.call("GET", f"/v3/pay/transactions/id/{paid['transaction_id']}?mchid={MCHID}")
    assert by_id.json()["out_trade_no"] == "REG20250101003"


def test_unknown_orders_and_missing_mchid_get_the_documented_errors(client):
    missing = client.call("GET", f"/v3/pay/transactions/out-trade-no/NOSUCH001?mchid={MCHID}")
    assert (missing.status_code, missing.json()["code"]) == (404, "ORDER_NOT_EXIST")
    assert client.verified(missing)
    no_mchid = client.call("GET", "/v3/pay/transactions/out-trade-no/NOSUCH001")
    assert (no_mchid.status_code, no_mchid.json()["code"]) == (400, "PARAM_ERROR")
    bad = client.call("POST", "/v3/pay/transactions/jsapi", {"appid": APPID, "mchid": MCHID})
    assert (bad.status_code, bad.json()["code"]) == (400, "PARAM_ERROR")
    assert set(bad.json()) == {"code", "message"}


def test_close_answers_204_signed_and_a_closed_order_cannot_be_paid(client):
    client.jsapi("REG20250101004")
    closed = client.call("POST", "/v3/pay/transactions/out-trade-no/REG20250101004/close",
                         {"mchid": MCHID})
    assert closed.status_code == 204 and closed.text == "" and client.verified(closed)
    again = client.call("POST", "/v3/pay/transactions/out-trade-no/REG20250101004/close",
                        {"mchid": MCHID})
    assert again.status_code == 204
    state = client.call("GET", f"/v3/pay/transactions/out-trade-no/REG20250101004?mchid={MCHID}")
    assert state.json()["trade_state"] == "CLOSED"
    paying = requests.post(f"{client.sandbox.url}/_sandbox/pay",
                           json={"out_trade_no": "REG20250101004"}, timeout=5)
    assert paying.status_code == 409 and paying.json()["code"] == "ORDER_CLOSED"
    reorder = client.jsapi("REG20250101004")
    assert (reorder.status_code, reorder.json()["code"]) == (400, "ORDER_CLOSED")


def test_refunds_are_idempotent_on_out_refund_no_and_bounded_by_the_payment(client):
    client.jsapi("REG20250101005", total=2500)
    client.pay("REG20250101005")
    body = {"out_trade_no": "REG20250101005", "out_refund_no": "RF20250101005",
            "reason": "退号", "amount": {"refund": 1000, "total": 2500, "currency": "CNY"}}
    first = client.call("POST", "/v3/refund/domestic/refunds", body)
    assert first.status_code == 200 and client.verified(first)
    refund = first.json()
    assert refund["status"] in ("SUCCESS", "PROCESSING") and refund["channel"] == "ORIGINAL"
    assert refund["amount"]["refund"] == 1000 and refund["amount"]["total"] == 2500
    again = client.call("POST", "/v3/refund/domestic/refunds", body).json()
    assert again["refund_id"] == refund["refund_id"]
    changed = client.call("POST", "/v3/refund/domestic/refunds",
                          {**body, "amount": {"refund": 900, "total": 2500, "currency": "CNY"}})
    assert (changed.status_code, changed.json()["code"]) == (400, "INVALID_REQUEST")
    too_much = client.call("POST", "/v3/refund/domestic/refunds",
                           {**body, "out_refund_no": "RF20250101005B",
                            "amount": {"refund": 1501, "total": 2500, "currency": "CNY"}})
    assert (too_much.status_code, too_much.json()["code"]) == (400, "INVALID_REQUEST")
    queried = client.call("GET", "/v3/refund/domestic/refunds/RF20250101005")
    assert queried.json()["status"] == "SUCCESS" and client.verified(queried)
    trade = client.call("GET", f"/v3/pay/transactions/out-trade-no/REG20250101005?mchid={MCHID}")
    assert trade.json()["trade_state"] == "REFUND"
    unknown = client.call("GET", "/v3/refund/domestic/refunds/NOSUCH")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "RESOURCE_NOT_EXISTS")
    no_order = client.call("POST", "/v3/refund/domestic/refunds",
                           {**body, "out_trade_no": "NOSUCH0001", "out_refund_no": "RFX1"})
    assert (no_order.status_code, no_order.json()["code"]) == (404, "RESOURCE_NOT_EXISTS")


def test_a_refund_stays_processing_for_refund_seconds(client):
    client.sandbox.state.set_knobs({"refund_seconds": 0.3})
    client.jsapi("REG20250101006")
    client.pay("REG20250101006")
    made = client.call("POST", "/v3/refund/domestic/refunds", {
        "out_trade_no": "REG20250101006", "out_refund_no": "RF20250101006",
        "amount": {"refund": 2500, "total": 2500, "currency": "CNY"}}).json()
    assert made["status"] == "PROCESSING" and made["success_time"] == ""
    time.sleep(0.5)
    done = client.call("GET", "/v3/refund/domestic/refunds/RF20250101006").json()
    assert done["status"] == "SUCCESS" and done["success_time"].endswith("+08:00")


# -- the signature rules -------------------------------------------------------------------

@pytest.mark.parametrize("case", ["tampered body", "wrong key", "wrong serial", "stale",
                                  "no header"])
def test_a_request_that_does_not_verify_is_refused_401_sign_error(client, case):
    body = {"mchid": MCHID}
    path = "/v3/pay/transactions/out-trade-no/REG20250101007/close"
    if case == "tampered body":
        response = client.call("POST", path, body, sent_body=json.dumps({"mchid": "1"}))
    elif case == "wrong key":
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        response = client.call("POST", path, body, key=other)
    elif case == "wrong serial":
        response = client.call("POST", path, body, serial="ABCDEF0123456789")
    elif case == "stale":
        response = client.call("POST", path, body, timestamp=int(time.time()) - 301)
    else:
        response = requests.post(client.sandbox.url + path, json=body, timeout=5)
    assert response.status_code == 401
    assert response.json()["code"] == "SIGN_ERROR" and client.verified(response)


def test_the_signed_url_includes_the_query_string(client):
    client.jsapi("REG20250101008")
    # Signed for one query, sent with another: the signature covers path and query.
    response = client.call("GET", f"/v3/pay/transactions/out-trade-no/REG20250101008?mchid={MCHID}")
    assert response.status_code == 200
    tampered = requests.get(
        f"{client.sandbox.url}/v3/pay/transactions/out-trade-no/REG20250101008?mchid={MCHID}&x=1",
        headers={"Authorization": response.request.headers["Authorization"]}, timeout=5)
    assert tampered.status_code == 401


def test_certificates_are_encrypted_under_the_apiv3_key_and_sign_in_certificate_mode(merchant):
    sandbox = Sandbox(merchant, platform_mode="certificate")
    try:
        client = Client(sandbox, merchant)
        listed = client.call("GET", "/v3/certificates")
        assert listed.status_code == 200
        entry = listed.json()["data"][0]
        assert entry["encrypt_certificate"]["associated_data"] == "certificate"
        certificate = x509.load_pem_x509_certificate(decrypt(entry["encrypt_certificate"])
                                                     .encode())
        assert format(certificate.serial_number, "X") == entry["serial_no"]
        assert listed.headers["Wechatpay-Serial"] == entry["serial_no"]
        assert client.verified(listed, certificate.public_key())
        assert entry["expire_time"].endswith("+08:00")
        # A request naming the public key id (as during a switch) is answered with that key.
        switched = client.call("GET", "/v3/certificates",
                               headers={"Wechatpay-Serial": sandbox.state.public_key_id})
        assert switched.headers["Wechatpay-Serial"] == sandbox.state.public_key_id
        assert client.verified(switched)
    finally:
        sandbox.stop()


def test_fault_knobs_answer_429_and_500_with_documented_bodies(client):
    client.sandbox.state.set_knobs({"frequency_limit_rate": 1.0})
    limited = client.jsapi("REG20250101009")
    assert (limited.status_code, limited.json()["code"]) == (429, "FREQUENCY_LIMITED")
    client.sandbox.state.set_knobs({"frequency_limit_rate": 0.0, "system_error_rate": 1.0,
                                    "system_error_applies": True})
    failed = client.jsapi("REG20250101009")
    assert (failed.status_code, failed.json()["code"]) == (500, "SYSTEM_ERROR")
    client.sandbox.state.set_knobs({"system_error_rate": 0.0, "bad_signature_rate": 1.0})
    applied = client.jsapi("REG20250101009")  # the order was made behind the 500
    assert applied.status_code == 200 and not client.verified(applied)
    faults = requests.post(f"{client.sandbox.url}/_sandbox/faults", json={"nope": 1}, timeout=5)
    assert faults.status_code == 400


# -- the same sandbox through wechatpayv3, an independent implementation ------------------

wechatpayv3 = pytest.importorskip("wechatpayv3")


def _wxpay(sandbox: Sandbox, merchant, **mode: str):
    from wechatpayv3 import WeChatPay, WeChatPayType

    from adapter.wallet.sandbox.keys import public_pem

    wxpay = WeChatPay(wechatpay_type=WeChatPayType.JSAPI, mchid=MCHID,
                      private_key=merchant.private_pem, cert_serial_no=merchant.serial,
                      appid=APPID, apiv3_key=APIV3_KEY,
                      notify_url="https://hospital.example/notify/wechatpay",
                      public_key=public_pem(sandbox.state.platform_private_key),
                      public_key_id=sandbox.state.public_key_id, timeout=(2, 5))
    wxpay._core._gate_way = sandbox.url  # the library has no setting for the host
    if mode.get("certificates"):
        wxpay._core._public_key = wxpay._core._public_key_id = None
        wxpay._core._update_certificates()
        assert wxpay._core._certificates
    return wxpay


def test_wechatpayv3_accepts_the_sandboxs_signed_answers_in_public_key_mode(sandbox, merchant):
    wxpay = _wxpay(sandbox, merchant)
    code, text = wxpay.pay(description="挂号费", out_trade_no="REG20250101010", amount={
        "total": 1200}, payer={"openid": sandbox.openid()})
    assert code == 200 and "prepay_id" in json.loads(text)
    code, text = wxpay.query(out_trade_no="REG20250101010")
    assert code == 200 and json.loads(text)["trade_state"] == "NOTPAY"
    code, _ = wxpay.close(out_trade_no="REG20250101010")
    assert code == 204
    sandbox.state.set_knobs({"bad_signature_rate": 1.0})
    with pytest.raises(Exception, match="failed to verify the signature"):
        wxpay.query(out_trade_no="REG20250101010")


def test_wechatpayv3_accepts_them_in_certificate_mode(merchant):
    sandbox = Sandbox(merchant, platform_mode="certificate")
    try:
        wxpay = _wxpay(sandbox, merchant, certificates="yes")
        code, text = wxpay.pay(description="挂号费", out_trade_no="REG20250101011", amount={
            "total": 1200}, payer={"openid": sandbox.openid()})
        assert code == 200, text
        sandbox.state.set_knobs({"bills_today": True})
        Client(sandbox, merchant).pay("REG20250101011")
        code, text = wxpay.trade_bill(bill_date=sandbox.state.now().date().isoformat())
        assert code == 200, text
        code, data = wxpay.download_bill(json.loads(text)["download_url"])
        assert code == 200 and data[:2] == b"\x1f\x8b"  # the library asks for GZIP
    finally:
        sandbox.stop()
