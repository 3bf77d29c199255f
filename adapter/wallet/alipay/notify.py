"""Alipay asynchronous notifications: decode the raw body, verify, and read the notice."""

from __future__ import annotations

import datetime as dt
import urllib.parse
import zoneinfo
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from adapter.money import fen
from adapter.ports import InvalidNotification, PaymentNotice
from adapter.wallet.alipay import consts
from adapter.wallet.alipay.signing import verify_notification

# Alipay writes gmt_* times in Beijing time without an offset.
ALIPAY_TZ = zoneinfo.ZoneInfo("Asia/Shanghai")


def decode_form(raw: bytes) -> dict[str, str]:
    """Decode an x-www-form-urlencoded body in the charset it declares (utf-8, or gbk).

    The signature covers the values after URL-decoding in that charset, so the body is decoded
    here from the raw bytes rather than by a framework that may assume UTF-8.
    """
    try:
        ascii_body = raw.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidNotification("body is not URL-encoded") from None
    charset = dict(urllib.parse.parse_qsl(ascii_body, encoding="latin-1")).get("charset", "utf-8")
    if charset.lower() not in ("utf-8", "utf8", "gbk", "gb2312", "gb18030"):
        raise InvalidNotification("unsupported charset")
    try:
        pairs = urllib.parse.parse_qsl(
            ascii_body, keep_blank_values=True, encoding=charset, errors="strict"
        )
    except (UnicodeDecodeError, LookupError):
        raise InvalidNotification(f"body is not valid {charset}") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise InvalidNotification(f"parameter {key} given twice")
        params[key] = value
    return params


def _time(value: str) -> dt.datetime | None:
    # Read only from a notice whose signature verified.
    if not value:
        return None
    try:
        return dt.datetime.strptime(value, consts.TIME_FORMAT).replace(tzinfo=ALIPAY_TZ)
    except ValueError:
        raise InvalidNotification("gmt_payment is not a time", signed=True) from None


def read_notice(params: Mapping[str, str], platform_public_key: RSAPublicKey) -> PaymentNotice:
    """Verify the platform's signature (sign and sign_type excluded) and read the notice."""
    if not params.get("sign"):
        raise InvalidNotification("unsigned")
    if params.get("sign_type", consts.SIGN_TYPE) != consts.SIGN_TYPE:
        raise InvalidNotification("sign_type is not RSA2")
    if not verify_notification(params, platform_public_key):
        raise InvalidNotification("signature does not verify")
    # Past this point the platform signed what it sent: refusals say so (it is kept whole).
    for required in ("notify_id", "app_id", "out_trade_no", "trade_status", "total_amount"):
        if not params.get(required):
            raise InvalidNotification(f"{required} missing", signed=True)
    try:
        total_fen = fen(params["total_amount"])
    except ValueError:
        raise InvalidNotification("total_amount is not an amount", signed=True) from None
    state = consts.TRADE_STATES.get(params["trade_status"])
    if state is None:
        raise InvalidNotification("trade_status is not one Alipay documents", signed=True)
    return PaymentNotice(
        platform=consts.PLATFORM,
        notice_id=params["notify_id"],
        app_id=params["app_id"],
        merchant_id=params.get("seller_id", ""),
        out_trade_no=params["out_trade_no"],
        trade_no=params.get("trade_no", ""),
        state=state,
        total_fen=total_fen,
        buyer_id=params.get("buyer_id", "") or params.get("buyer_open_id", ""),
        paid_at=_time(params.get("gmt_payment", "")),
    )
