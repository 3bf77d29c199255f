"""Alipay RSA2 signing: the signed text, keys in every accepted format, response extraction,
and interoperability with an independent implementation (python-alipay-sdk)."""

from __future__ import annotations

import base64
import functools
import json
from urllib.parse import parse_qsl, urlencode

import pytest
from cryptography.hazmat.primitives import serialization

from adapter.money import fen, yuan
from adapter.ports import WalletUnavailable
from adapter.wallet.alipay.signing import (
    KeyFormatError,
    SignatureError,
    extract_response,
    generate_key_pair,
    load_private_key,
    load_public_key,
    public_key_one_line,
    sign,
    sign_params,
    signing_content,
    verify,
    verify_notification,
    verify_response,
)


@pytest.fixture(scope="module")
def app_keys() -> tuple[str, str]:
    return generate_key_pair()


@pytest.fixture(scope="module")
def platform_keys() -> tuple[str, str]:
    return generate_key_pair()


def _pkcs1_private_pem(private_pem: str) -> str:
    return load_private_key(private_pem).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def _pkcs1_public_pem(public_pem: str) -> str:
    return load_public_key(public_pem).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    ).decode()


def _one_line(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


@functools.cache
def _loaded(private_pem: str):
    return load_private_key(private_pem)  # loading checks the key: ~50 ms, so once per key


def _signed_body(inner: str, private_pem: str, method: str = "alipay.trade.query",
                 sign_value: str | None = None, spacing: str = "") -> str:
    key = method.replace(".", "_") + "_response"
    sig = sign(inner, _loaded(private_pem)) if sign_value is None else sign_value
    sep = "," + spacing
    return "{" + f'"{key}":{spacing}{inner}{sep}"sign":{spacing}"{sig}"' + "}"


# --------------------------------------------------------------------------------------------
# The signed text


def test_signing_content_sorts_drops_empty_and_excludes_sign():
    params = {
        "timestamp": "2024-05-01 10:00:00",
        "app_id": "2021000000000001",
        "sign": "xxx",
        "notify_url": "",
        "app_auth_token": None,
        "method": "alipay.trade.query",
        "biz_content": '{"out_trade_no":"T1"}',
    }
    assert signing_content(params) == (
        'app_id=2021000000000001&biz_content={"out_trade_no":"T1"}'
        "&method=alipay.trade.query&timestamp=2024-05-01 10:00:00"
    )


def test_signing_content_keeps_sign_type_for_requests():
    assert signing_content({"sign_type": "RSA2", "sign": "s", "a": "1"}) == "a=1&sign_type=RSA2"


def test_signing_content_sorts_by_byte_order():
    # Upper case sorts before lower case and "_" (0x5f) between them, as byte order says.
    content = signing_content({"b": "1", "B": "2", "a_b": "3", "a": "4", "aB": "5"})
    assert content == "B=2&a=4&aB=5&a_b=3&b=1"


def test_signing_content_is_not_url_encoded_and_keeps_chinese():
    params = {"subject": "挂号费 内科&复诊=是", "url": "https://h.example/a?x=1&y=%2F+z"}
    assert signing_content(params) == (
        "subject=挂号费 内科&复诊=是&url=https://h.example/a?x=1&y=%2F+z"
    )


def test_signing_content_refuses_non_string_values():
    with pytest.raises(TypeError):
        signing_content({"total_amount": 25.0})  # type: ignore[dict-item]


# --------------------------------------------------------------------------------------------
# Keys


def test_keys_in_every_accepted_format_sign_and_verify(app_keys):
    private_pem, public_pem = app_keys
    privates = {
        "pkcs8-pem": private_pem,
        "pkcs1-pem": _pkcs1_private_pem(private_pem),
        "pkcs8-one-line": _one_line(private_pem),
        "pkcs1-one-line": _one_line(_pkcs1_private_pem(private_pem)),
        "bytes": private_pem.encode(),
        "wrapped-one-line": "\n  ".join(_one_line(private_pem)[i : i + 64]
                                       for i in range(0, len(_one_line(private_pem)), 64)),
    }
    publics = {
        "spki-pem": public_pem,
        "pkcs1-pem": _pkcs1_public_pem(public_pem),
        "console-one-line": public_key_one_line(public_pem),
        "pkcs1-one-line": _one_line(_pkcs1_public_pem(public_pem)),
    }
    content = "app_id=1&subject=门诊缴费"
    signatures = {sign(content, key) for key in privates.values()}
    assert len(signatures) == 1  # PKCS#1 v1.5 is deterministic: same key, same signature
    signature = signatures.pop()
    for name, key in publics.items():
        assert verify(content, signature, key), name


def test_public_key_one_line_is_console_format(app_keys):
    one_line = public_key_one_line(app_keys[1])
    assert "\n" not in one_line and one_line.startswith("MIIBIjAN")  # SPKI, 2048-bit RSA


@pytest.mark.parametrize(
    "text",
    ["", "   ", "not a key at all!", "QUJDRA==",
     # a broken PEM body under a real header (built so no key-looking block is committed)
     "-----BEGIN " + "PRIVATE KEY-----\nAAAA\n-----END " + "PRIVATE KEY-----",
     "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----"],
)
def test_unreadable_private_keys_raise_key_format_error(text):
    with pytest.raises(KeyFormatError):
        load_private_key(text)


def test_key_errors_never_echo_the_key(app_keys):
    private_pem = app_keys[0]
    damaged = private_pem.replace(private_pem.splitlines()[3], "A" * 64)
    for loader, text in ((load_private_key, damaged), (load_public_key, private_pem),
                         (load_public_key, _one_line(private_pem)[:-8])):
        with pytest.raises(KeyFormatError) as info:
            loader(text)
        message = str(info.value)
        assert "MII" not in message and "AAAA" not in message and len(message) < 120
        assert info.value.__cause__ is None


def test_private_key_where_public_expected_is_named(app_keys):
    with pytest.raises(KeyFormatError, match="private key"):
        load_public_key(app_keys[0])


def test_short_keys_are_refused():
    from cryptography.hazmat.primitives.asymmetric import rsa

    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = short.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    with pytest.raises(KeyFormatError, match="too short"):
        load_private_key(pem)


# --------------------------------------------------------------------------------------------
# Sign and verify


def test_wrong_key_tampered_values_and_bad_base64_do_not_verify(app_keys, platform_keys):
    params = {"app_id": "2021000000000001", "total_amount": "25.00", "subject": "挂号费"}
    signature = sign_params(params, app_keys[0])
    content = signing_content(params)
    assert verify(content, signature, app_keys[1])
    assert not verify(content, signature, platform_keys[1])  # wrong key
    assert not verify(signing_content({**params, "total_amount": "0.01"}), signature, app_keys[1])
    assert not verify(signing_content({**params, "subject": "挂号费 "}), signature, app_keys[1])
    # "+" turned into " " by a careless form decoder; a signature without "+" gets one space.
    spaced = signature.replace("+", " ") if "+" in signature else " " + signature[1:]
    for bad in ("", "!!!", "abc", signature[:-4], spaced, "=" * 8):
        assert not verify(content, bad, app_keys[1]), bad
    raw = bytearray(base64.b64decode(signature))
    raw[10] ^= 1
    assert not verify(content, base64.b64encode(bytes(raw)).decode(), app_keys[1])
    assert not verify(content, None, app_keys[1])  # type: ignore[arg-type]


def test_notification_excludes_sign_and_sign_type(platform_keys):
    fields = {
        "notify_id": "2024050100222100000000000001",
        "out_trade_no": "BK20240501000001",
        "total_amount": "25.00",
        "subject": "挂号费-内科 王医生",
        "trade_status": "TRADE_SUCCESS",
        "charset": "utf-8",
        "passback_params": "a=1&b=2 3",
    }
    signature = sign(signing_content(fields), platform_keys[0])
    received = {**fields, "sign": signature, "sign_type": "RSA2"}
    # The notification arrives form-encoded; values are verified after decoding.
    decoded = dict(parse_qsl(urlencode(received), keep_blank_values=True))
    assert verify_notification(decoded, platform_keys[1])
    assert not verify_notification({**decoded, "total_amount": "2500.00"}, platform_keys[1])
    assert not verify_notification({**decoded, "sign_type": "RSA"}, platform_keys[1])
    assert not verify_notification({k: v for k, v in decoded.items() if k != "sign"},
                                   platform_keys[1])
    # A request-style signature (sign_type included in the text) is not a notification one.
    request_style = sign(signing_content({**fields, "sign_type": "RSA2"}), platform_keys[0])
    assert not verify_notification({**decoded, "sign": request_style}, platform_keys[1])


# --------------------------------------------------------------------------------------------
# Synchronous responses: the exact text


INNER_VARIANTS = [
    '{"code":"10000","msg":"Success","out_trade_no":"T1","total_amount":"25.00"}',
    '{ "code" : "10000", "msg": "Success",\n  "out_trade_no": "T1" }',
    '{"code":"10000","msg":"Success","subject":"挂号费\\"内科\\" {复诊}","x":"}\\\\"}',
    '{"code":"10000","msg":"Success","subject":"\\u6302\\u53f7\\u8d39","fund_bill_list":'
    '[{"amount":"25.00","fund_channel":"ALIPAYACCOUNT"}],"nested":{"a":{"b":"}{"}}}',
    '{"code":"10000","msg":"Success","note":"ends with backslash\\\\","n":12.5,"t":true,"z":null}',
]


@pytest.mark.parametrize("inner", INNER_VARIANTS)
@pytest.mark.parametrize("spacing", ["", " ", "\n  "])
def test_extract_response_returns_the_exact_raw_text(inner, spacing, platform_keys):
    body = _signed_body(inner, platform_keys[0], spacing=spacing)
    content, signature = extract_response(body, "alipay.trade.query")
    assert content == inner
    assert verify(content, signature, platform_keys[1])
    assert verify_response(body, "alipay.trade.query", platform_keys[1]) == json.loads(inner)


def test_reserialised_json_would_not_verify(platform_keys):
    # Why extraction works on raw text: json.dumps(json.loads(x)) is not x.
    inner = INNER_VARIANTS[1]
    body = _signed_body(inner, platform_keys[0])
    parsed = json.loads(body)["alipay_trade_query_response"]
    sig = json.loads(body)["sign"]
    assert not verify(json.dumps(parsed), sig, platform_keys[1])
    assert not verify(json.dumps(parsed, ensure_ascii=False, separators=(",", ":")), sig,
                      platform_keys[1])


def test_extract_response_sign_before_response_and_other_members(platform_keys):
    inner = '{"code":"10000","msg":"Success","trade_no":"2024"}'
    sig = sign(inner, platform_keys[0])
    body = ('{"sign":"' + sig + '","alipay_cert_sn":"x",'
            '"decoy":"\\"alipay_trade_query_response\\":{}",'
            '"alipay_trade_query_response":' + inner + "}")
    assert extract_response(body, "alipay.trade.query") == (inner, sig)


def test_extract_response_key_inside_a_string_is_not_the_member():
    body = '{"error":"alipay_trade_query_response: {\\"code\\":\\"10000\\"}","sign":"x"}'
    with pytest.raises(ValueError):
        extract_response(body, "alipay.trade.query")


def test_extract_error_response():
    inner = ('{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.code-invalid",'
             '"sub_msg":"授权码code无效"}')
    body = '{"error_response":' + inner + ',"sign":""}'
    assert extract_response(body, "alipay.system.oauth.token") == (inner, "")
    assert extract_response('{"error_response":' + inner + "}", "alipay.system.oauth.token") == (
        inner, None)


@pytest.mark.parametrize(
    "body",
    ["", "null", "[]", "<html>502 Bad Gateway</html>", '{"other_response":{}}',
     '{"alipay_trade_query_response":"str"}', '{"alipay_trade_query_response":{"a":"b"',
     '{"alipay_trade_query_response":{"a":"b\\"}}'],
)
def test_extract_response_unreadable_raises_value_error(body):
    with pytest.raises(ValueError):
        extract_response(body, "alipay.trade.query")


def test_verify_response_refuses_tampering_and_wrong_key(platform_keys, app_keys):
    inner = '{"code":"10000","msg":"Success","total_amount":"25.00"}'
    body = _signed_body(inner, platform_keys[0])
    with pytest.raises(SignatureError):
        verify_response(body.replace("25.00", "0.01"), "alipay.trade.query", platform_keys[1])
    with pytest.raises(SignatureError):
        verify_response(body, "alipay.trade.query", app_keys[1])
    with pytest.raises(SignatureError):
        verify_response(_signed_body(inner, platform_keys[0], sign_value="!!"),
                        "alipay.trade.query", platform_keys[1])
    with pytest.raises(SignatureError):
        verify_response("<html>", "alipay.trade.query", platform_keys[1])
    assert issubclass(SignatureError, WalletUnavailable)


def test_unsigned_answers_are_errors_only(platform_keys):
    error = '{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.code-invalid"}'
    for body in ('{"error_response":' + error + ',"sign":""}',
                 '{"error_response":' + error + "}",
                 '{"alipay_system_oauth_token_response":' + error + "}"):
        answer = verify_response(body, "alipay.system.oauth.token", platform_keys[1])
        assert answer["code"] == "40002"
    success = '{"code":"10000","msg":"Success","access_token":"x"}'
    for body in ('{"alipay_system_oauth_token_response":' + success + ',"sign":""}',
                 '{"alipay_system_oauth_token_response":' + success + "}",
                 '{"alipay_system_oauth_token_response":{"access_token":"x"}}',
                 '{"alipay_system_oauth_token_response":{"code":10000}}'):
        with pytest.raises(SignatureError):
            verify_response(body, "alipay.system.oauth.token", platform_keys[1])


# --------------------------------------------------------------------------------------------
# Money at the boundary


def test_yuan_and_fen_are_exact_and_strict():
    assert [yuan(0), yuan(1), yuan(10), yuan(2500), yuan(123456789)] == [
        "0.00", "0.01", "0.10", "25.00", "1234567.89"]
    assert [fen("0.01"), fen("25.00"), fen("1234567.89")] == [1, 2500, 123456789]
    for n in (0, 1, 99, 100, 12345, 10**15 + 3):
        assert fen(yuan(n)) == n
    for bad in ("25", "25.0", "25.000", "-1.00", "1e2", " 1.00", "１.00", ".50", "NaN", "1,00"):
        with pytest.raises(ValueError):
            fen(bad)
    for bad_fen in (25.0, "2500", True):
        with pytest.raises(TypeError):
            yuan(bad_fen)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        yuan(-1)


# --------------------------------------------------------------------------------------------
# Interoperability with python-alipay-sdk (an independent implementation over pycryptodome)


@pytest.fixture(scope="module")
def sdk():
    alipay = pytest.importorskip("alipay")

    def make(private_pem: str, public_pem: str):
        return alipay.AliPay(appid="2021000000000001", app_notify_url=None,
                             app_private_key_string=private_pem,
                             alipay_public_key_string=public_pem, sign_type="RSA2")

    return make


REQUEST_PARAMS = {
    "app_id": "2021000000000001",
    "method": "alipay.trade.create",
    "format": "JSON",
    "charset": "utf-8",
    "sign_type": "RSA2",
    "timestamp": "2024-05-01 10:00:00",
    "version": "1.0",
    "notify_url": "https://hospital.example/notify/alipay?x=1&y=2",
    "biz_content": json.dumps(
        {"out_trade_no": "BK1", "total_amount": "25.00", "subject": "挂号费 内科(王医生) & 复诊"},
        ensure_ascii=False, separators=(",", ":")),
}


def test_request_signed_by_sdk_verifies_with_ours_and_is_identical(sdk, app_keys):
    theirs = sdk(app_keys[0], app_keys[1])
    signed_query = theirs.sign_data(dict(REQUEST_PARAMS))
    received = dict(parse_qsl(signed_query, keep_blank_values=True))
    assert verify(signing_content(received), received["sign"], app_keys[1])
    # Deterministic PKCS#1 v1.5: both implementations produce the very same signature.
    assert sign_params(REQUEST_PARAMS, app_keys[0]) == received["sign"]


def test_request_signed_by_us_verifies_with_sdk(sdk, app_keys):
    # The SDK verifies with its "alipay public key"; give it the app's to check our request.
    theirs = sdk(app_keys[0], app_keys[1])
    ours = sign_params(REQUEST_PARAMS, app_keys[0])
    assert theirs._verify(signing_content(REQUEST_PARAMS), ours)
    assert not theirs._verify(signing_content({**REQUEST_PARAMS, "app_id": "2"}), ours)


def test_response_signed_by_us_verifies_with_sdk(sdk, platform_keys):
    inner = ('{"code":"10000","msg":"Success","out_trade_no":"BK1","subject":"挂号费 内科",'
             '"trade_status":"TRADE_SUCCESS","total_amount":"25.00"}')
    body = _signed_body(inner, platform_keys[0], spacing=" ")
    theirs = sdk(platform_keys[0], platform_keys[1])
    assert theirs._verify_and_return_sync_response(body, "alipay_trade_query_response") == \
        json.loads(inner)


def test_response_signed_by_sdk_verifies_with_ours(sdk, platform_keys):
    theirs = sdk(platform_keys[0], platform_keys[1])
    inner = ('{"code":"10000","msg":"Success","out_trade_no":"BK1","buyer_logon_id":"159****1234",'
             '"refund_fee":"25.00","fund_change":"Y","note":"退款成功"}')
    body = ('{"alipay_trade_refund_response":' + inner + ',"sign":"' + theirs._sign(inner) + '"}')
    assert verify_response(body, "alipay.trade.refund", platform_keys[1])["note"] == "退款成功"


def test_braces_in_strings_break_the_sdk_extractor_but_not_ours(sdk, platform_keys):
    inner = '{"code":"10000","msg":"Success","subject":"挂号费 {复诊}}"}'
    body = _signed_body(inner, platform_keys[0])
    answer = verify_response(body, "alipay.trade.query", platform_keys[1])
    assert answer["subject"] == "挂号费 {复诊}}"
    theirs = sdk(platform_keys[0], platform_keys[1])
    assert theirs._get_string_to_be_signed(body, "alipay_trade_query_response") != inner


NOTIFICATION = {
    "gmt_create": "2024-05-01 10:00:00",
    "charset": "utf-8",
    "seller_email": "hospital@example.com",
    "subject": "挂号费-内科 王医生 & 复诊=是",
    "buyer_id": "2088102177846880",
    "invoice_amount": "25.00",
    "notify_id": "2024050100222100000000000001",
    "fund_bill_list": '[{"amount":"25.00","fundChannel":"ALIPAYACCOUNT"}]',
    "notify_type": "trade_status_sync",
    "trade_status": "TRADE_SUCCESS",
    "total_amount": "25.00",
    "trade_no": "2024050122001400000000000001",
    "auth_app_id": "2021000000000001",
    "app_id": "2021000000000001",
    "out_trade_no": "BK1",
    "version": "1.0",
    "notify_time": "2024-05-01 10:00:05",
}


def test_notification_signed_by_us_verifies_with_sdk(sdk, platform_keys):
    signature = sign(signing_content(NOTIFICATION, exclude=("sign", "sign_type")),
                     platform_keys[0])
    received = {**NOTIFICATION, "sign_type": "RSA2"}
    theirs = sdk(platform_keys[0], platform_keys[1])
    assert theirs.verify(dict(received), signature)  # the SDK drops sign_type itself


def test_notification_signed_by_sdk_verifies_with_ours(sdk, platform_keys):
    theirs = sdk(platform_keys[0], platform_keys[1])
    signed_query = theirs.sign_data(dict(NOTIFICATION))  # everything but sign / sign_type
    received = dict(parse_qsl(signed_query, keep_blank_values=True))
    received["sign_type"] = "RSA2"
    # Round-trip through a form body, as the notify endpoint receives it.
    as_received = dict(parse_qsl(urlencode(received), keep_blank_values=True))
    assert verify_notification(as_received, platform_keys[1])
    assert not verify_notification({**as_received, "total_amount": "0.01"}, platform_keys[1])
