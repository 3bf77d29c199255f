"""WeChat Pay v3 callbacks: verify over the raw body, decrypt the resource, read the notice.

A callback is a JSON body signed like an answer (Wechatpay-Timestamp/Nonce/Signature/Serial
headers over "timestamp\\nnonce\\nbody\\n") whose ``resource`` is AEAD_AES_256_GCM-encrypted with
the APIv3 key. The body's ``id`` is the notification's id, the same on every retry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from adapter.ports import InvalidNotification, PaymentNotice
from adapter.wallet.wechatpay import consts
from adapter.wallet.wechatpay.client import read_time
from adapter.wallet.wechatpay.signing import (
    NotVerified,
    PlatformKeys,
    decrypt_resource,
    verify_signed,
)


def read_callback(raw: bytes, headers: Mapping[str, str], keys: PlatformKeys, apiv3_key: str,
                  now: float) -> PaymentNotice:
    """Verify a callback (timestamp within five minutes, known serial, signature over the raw
    body), decrypt it and read it; raises InvalidNotification."""
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidNotification("body is not UTF-8") from None
    try:
        verify_signed(headers, body, keys, now)
    except NotVerified as exc:
        raise InvalidNotification(str(exc)) from None
    # Past this point WeChat signed what it sent: refusals say so (it is kept whole).
    try:
        envelope = json.loads(body)
    except ValueError:
        raise InvalidNotification("body is not JSON", signed=True) from None
    if not isinstance(envelope, dict) or not envelope.get("id"):
        raise InvalidNotification("id missing", signed=True)
    event_type = envelope.get("event_type")
    if event_type in consts.REFUND_EVENTS:
        # Refunds are settled by querying them (adapter/payments/refunds.py), as with Alipay.
        raise InvalidNotification("a refund notification: refunds are settled by query",
                                  signed=True)
    if event_type != consts.TRANSACTION_SUCCESS:
        raise InvalidNotification("event_type is not TRANSACTION.SUCCESS", signed=True)
    resource = envelope.get("resource")
    if envelope.get("resource_type") != consts.ENCRYPTED_RESOURCE or not isinstance(
            resource, dict):
        raise InvalidNotification("resource is not an encrypted resource", signed=True)
    clear = decrypt_resource(resource, apiv3_key)
    if clear is None:
        raise InvalidNotification("resource does not decrypt (the APIv3 key?)", signed=True)
    try:
        transaction = json.loads(clear)
    except ValueError:
        raise InvalidNotification("resource is not JSON", signed=True) from None
    if not isinstance(transaction, dict):
        raise InvalidNotification("resource is not a JSON object", signed=True)
    return _notice(str(envelope["id"]), transaction)


def _notice(notice_id: str, transaction: dict[str, Any]) -> PaymentNotice:
    for required in ("appid", "mchid", "out_trade_no", "trade_state"):
        if not transaction.get(required):
            raise InvalidNotification(f"{required} missing", signed=True)
    amount = transaction.get("amount")
    total = amount.get("total") if isinstance(amount, dict) else None
    if isinstance(total, bool) or not isinstance(total, int):
        raise InvalidNotification("amount.total is not an amount in fen", signed=True)
    state = consts.TRADE_STATES.get(str(transaction["trade_state"]))
    if state is None:
        raise InvalidNotification("trade_state is not one WeChat documents", signed=True)
    payer = transaction.get("payer")
    return PaymentNotice(
        platform=consts.PLATFORM,
        notice_id=notice_id,
        app_id=str(transaction["appid"]),
        merchant_id=str(transaction["mchid"]),
        out_trade_no=str(transaction["out_trade_no"]),
        trade_no=str(transaction.get("transaction_id", "") or ""),
        state=state,
        total_fen=total,
        buyer_id=str(payer.get("openid", "")) if isinstance(payer, dict) else "",
        paid_at=read_time(transaction.get("success_time")),
    )
