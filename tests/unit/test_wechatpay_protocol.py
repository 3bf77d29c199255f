"""WeChat Pay v3 signatures and callbacks against independent implementations.

What we sign verifies with an independent verifier (tests/wechatpay_kit.py, `cryptography`
directly) and with wechatpayv3's own verification code; what the platform signs (written by
the kit) verifies with ours and with wechatpayv3's; a tampered body, a wrong serial and a stale
timestamp are refused (a replayed notification id: tests/integration/test_notify_wechatpay.py).
"""

from __future__ import annotations

import json
import time

import pytest
from wechatpayv3 import utils as wxutils
from wechatpayv3.core import Core

from adapter.ports import InvalidNotification, TradeState
from adapter.wallet.wechatpay.notify import read_callback
from adapter.wallet.wechatpay.signing import (
    PlatformCertificate,
    PlatformKeys,
    authorization,
    decrypt_resource,
    pay_sign,
    serial_of,
)
from tests import wechatpay_kit as kit


def keys() -> PlatformKeys:
    return PlatformKeys(public_key=kit.PLATFORM_KEY.public_key(), public_key_id=kit.PUBLIC_KEY_ID)


def read(body: str, headers: dict[str, str], now: float | None = None, platform_keys=None):
    # The time of the reading, not of the module's import: a long run outlasts 5 minutes.
    return read_callback(body.encode(), headers, platform_keys or keys(), kit.APIV3_KEY,
                         time.time() if now is None else now)


# --- what we sign ----------------------------------------------------------------------------

def test_our_request_signature_verifies_independently_and_with_wechatpayv3s_verifier():
    body = json.dumps({"mchid": kit.MCHID, "description": "挂号费 儿科"}, ensure_ascii=False,
                      separators=(",", ":"))
    path = "/v3/pay/transactions/jsapi"
    header = authorization("POST", path, body, mchid=kit.MCHID, serial_no=kit.CERT_SERIAL,
                           private_key=kit.MERCHANT_KEY)
    assert kit.request_verifies("POST", path, body, header)
    # wechatpayv3's rsa_verify checks "a\nb\nc\n": the request's five lines fit as three.
    parts = kit.AUTHORIZATION.match(header)
    assert wxutils.rsa_verify("POST", path, f"{parts['timestamp']}\n{parts['nonce']}\n{body}",
                              parts["signature"], kit.MERCHANT_KEY.public_key())
    # one byte of the body changed: neither verifies
    assert not kit.request_verifies("POST", path, body.replace("儿科", "内科"), header)
    assert not kit.request_verifies("POST", path, body, header, kit.OTHER_KEY.public_key())


def test_our_pay_sign_verifies_over_the_four_documented_lines():
    signature = pay_sign(kit.APPID, "1764122400", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
                         "prepay_id=wx201410272009395522657a690389285100", kit.MERCHANT_KEY)
    message = (f"{kit.APPID}\n1764122400\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\n"
               "prepay_id=wx201410272009395522657a690389285100\n")
    assert kit.verify(message, signature, kit.MERCHANT_KEY.public_key())


# --- what the platform signs -----------------------------------------------------------------

def test_a_callback_signed_and_encrypted_independently_reads_as_a_payment_notice():
    body = kit.callback(notice_id="EV-2026112610000500001")
    notice = read(body, kit.signed_headers(body))
    assert notice.notice_id == "EV-2026112610000500001"
    assert (notice.platform, notice.app_id, notice.merchant_id) == (
        "wechatpay", kit.APPID, kit.MCHID)
    assert (notice.out_trade_no, notice.trade_no, notice.total_fen, notice.state) == (
        "R20261126000001", "4200000000202611260000000001", 2500, TradeState.PAID)
    assert notice.buyer_id == kit.OPENID
    assert notice.paid_at.isoformat() == "2026-11-26T10:00:04+08:00"


def test_wechatpayv3_reads_the_same_callback_so_the_kit_speaks_the_real_protocol():
    body = kit.callback()
    headers = kit.signed_headers(body)
    core = Core(mchid=kit.MCHID, cert_serial_no=kit.CERT_SERIAL,
                private_key=kit.private_pem(kit.MERCHANT_KEY), apiv3_key=kit.APIV3_KEY,
                public_key=kit.public_pem(kit.PLATFORM_KEY), public_key_id=kit.PUBLIC_KEY_ID)
    assert core.callback(headers, body)["resource"]["out_trade_no"] == "R20261126000001"
    assert core.callback(headers, body.replace("EV-", "EV-X")) is None  # tampered


def test_headers_are_read_whatever_their_case():
    body = kit.callback()
    headers = {name.lower(): value for name, value in kit.signed_headers(body).items()}
    assert read(body, headers).total_fen == 2500


@pytest.mark.parametrize(("change", "reason"), [
    (lambda body, h: (body.replace('"summary": "支付成功"', '"summary": "x"'), h),
     "signature does not verify"),
    (lambda body, h: (body, {**h, "Wechatpay-Serial": "PUB_KEY_ID_0119000000002024000000000009"}),
     "unknown platform serial"),
    (lambda body, h: (body, {**h, "Wechatpay-Serial": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"}),
     "unknown platform serial"),
    (lambda body, h: (body, kit.signed_headers(body, key=kit.OTHER_KEY)),
     "signature does not verify"),
    (lambda body, h: (body, kit.signed_headers(body, timestamp=int(time.time()) - 301)),
     "timestamp more than 5 minutes off"),
    (lambda body, h: (body, kit.signed_headers(body, timestamp=int(time.time()) + 301)),
     "timestamp more than 5 minutes off"),
    (lambda body, h: (body, {k: v for k, v in h.items() if k != "Wechatpay-Signature"}),
     "unsigned"),
    (lambda body, h: (body, {**h, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + h[
        "Wechatpay-Signature"]}), "signature does not verify"),
    (lambda body, h: (body, {**h, "Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"}),
     "signature type is not WECHATPAY2-SHA256-RSA2048"),
])
def test_a_callback_we_cannot_stand_by_is_refused_unsigned(change, reason):
    body = kit.callback()
    body, headers = change(body, kit.signed_headers(body))
    with pytest.raises(InvalidNotification) as refused:
        read(body, headers)
    assert refused.value.reason == reason
    assert not refused.value.signed  # its body is not kept: anyone could have sent it


def test_a_timestamp_within_five_minutes_is_accepted():
    body = kit.callback()
    assert read(body, kit.signed_headers(body, timestamp=int(time.time()) - 290)).total_fen == 2500


@pytest.mark.parametrize(("body", "reason"), [
    (kit.callback(apiv3_key="b" * 32), "resource does not decrypt (the APIv3 key?)"),
    (kit.callback(event_type="REFUND.SUCCESS"),
     "a refund notification: refunds are settled by query"),
    (kit.callback(kit.transaction(trade_state="PAID_SOMEHOW")),
     "trade_state is not one WeChat documents"),
    (kit.callback(kit.transaction(amount={"total": "25.00"})),
     "amount.total is not an amount in fen"),
    (kit.callback(kit.transaction(mchid="")), "mchid missing"),
])
def test_a_signed_callback_that_cannot_be_read_is_refused_as_signed(body, reason):
    with pytest.raises(InvalidNotification) as refused:
        read(body, kit.signed_headers(body))
    assert (refused.value.reason, refused.value.signed) == (reason, True)


def test_a_tampered_ciphertext_does_not_decrypt():
    resource = kit.encrypt('{"out_trade_no":"R1"}')
    assert decrypt_resource(resource, kit.APIV3_KEY) == '{"out_trade_no":"R1"}'
    flipped = dict(resource, ciphertext="A" + resource["ciphertext"][1:])
    assert decrypt_resource(flipped, kit.APIV3_KEY) is None
    assert decrypt_resource(dict(resource, associated_data="refund"), kit.APIV3_KEY) is None
    assert decrypt_resource(dict(resource, ciphertext="not base64!"), kit.APIV3_KEY) is None


# --- certificate mode ------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_certificate_mode_verifies_with_the_certificate_the_serial_names():
    cert = kit.certificate(kit.PLATFORM_KEY)
    fetched = [PlatformCertificate(serial_of(cert), cert)]
    platform_keys = PlatformKeys(fetch=lambda: fetched)
    body = kit.callback()
    assert read(body, kit.signed_headers(body, serial=kit.serial_hex(cert)),
                platform_keys=platform_keys).total_fen == 2500
    # lower-case hex and leading zeros are the same serial
    assert read(body, kit.signed_headers(body, serial="00" + kit.serial_hex(cert).lower()),
                platform_keys=platform_keys).total_fen == 2500
    assert platform_keys.refreshes == 1


def test_an_unknown_serial_refreshes_the_certificates_at_most_once_per_interval():
    cert = kit.certificate(kit.PLATFORM_KEY)
    calls: list[float] = []
    clock = Clock()

    def fetch() -> list[PlatformCertificate]:
        calls.append(clock.now)
        return [PlatformCertificate(serial_of(cert), cert)]

    platform_keys = PlatformKeys(fetch=fetch, refresh_interval=60, monotonic=clock)
    assert platform_keys.key_for(kit.serial_hex(cert)) is not None
    assert platform_keys.key_for("0123456789ABCDEF") is None
    assert len(calls) == 1  # within the interval of the first download: none more
    clock.now += 61
    for _ in range(50):  # a flood of callbacks with made-up serials
        assert platform_keys.key_for("0123456789ABCDEF") is None
    assert len(calls) == 2  # one refresh for all of them
    clock.now += 61
    assert platform_keys.key_for("0123456789ABCDEF") is None
    assert len(calls) == 3
    # not a certificate serial at all: no download can make it one
    assert platform_keys.key_for("not-hex") is None
    assert platform_keys.key_for("PUB_KEY_ID_0119") is None
    assert len(calls) == 3
    assert platform_keys.key_for(kit.serial_hex(cert)) is not None  # still cached


def test_a_failed_refresh_keeps_the_certificates_we_had():
    cert = kit.certificate(kit.PLATFORM_KEY)
    clock = Clock()
    answers: list = [[PlatformCertificate(serial_of(cert), cert)], RuntimeError("down"), []]

    def fetch() -> list[PlatformCertificate]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    platform_keys = PlatformKeys(fetch=fetch, refresh_interval=60, monotonic=clock,
                                 max_age=3600)
    assert platform_keys.key_for(kit.serial_hex(cert)) is not None
    clock.now += 3601  # stale: the next look-up refreshes, and the download fails
    assert platform_keys.key_for(kit.serial_hex(cert)) is not None
    clock.now += 61  # and then the platform lists none: still what we had
    assert platform_keys.key_for(kit.serial_hex(cert)) is not None
    assert platform_keys.refreshes == 3


def test_both_modes_at_once_while_a_merchant_moves_to_the_public_key():
    cert = kit.certificate(kit.OTHER_KEY)
    platform_keys = PlatformKeys(public_key=kit.PLATFORM_KEY.public_key(),
                                 public_key_id=kit.PUBLIC_KEY_ID,
                                 fetch=lambda: [PlatformCertificate(serial_of(cert), cert)])
    body = kit.callback()
    assert read(body, kit.signed_headers(body), platform_keys=platform_keys).total_fen == 2500
    by_cert = kit.signed_headers(body, key=kit.OTHER_KEY, serial=kit.serial_hex(cert))
    assert read(body, by_cert, platform_keys=platform_keys).total_fen == 2500


def test_an_expired_certificate_verifies_nothing():
    cert = kit.certificate(kit.PLATFORM_KEY, days=-1)
    platform_keys = PlatformKeys(fetch=lambda: [PlatformCertificate(serial_of(cert), cert)])
    assert platform_keys.key_for(kit.serial_hex(cert)) is None
