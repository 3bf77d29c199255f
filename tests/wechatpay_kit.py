"""WeChat Pay's side of the protocol for tests, written with `cryptography` directly (not with
wechatpayv3 nor the adapter's code): the platform's keys and certificate, its signatures over
answers and callbacks, AEAD_AES_256_GCM resources, and a check of a merchant's request
signature, each as WeChat's documentation states it."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import secrets
import time
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
CERT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"  # the merchant's API certificate
PUBLIC_KEY_ID = "PUB_KEY_ID_0119000000002024112700000000000001"
APIV3_KEY = "a12d3924fd499edac8a5efc0b1c2d3e4"  # 32 characters


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


MERCHANT_KEY = new_key()
PLATFORM_KEY = new_key()
OTHER_KEY = new_key()


def certificate(key: rsa.RSAPrivateKey, serial: int | None = None,
                days: int = 30) -> x509.Certificate:
    """A self-signed platform certificate (WeChat's are issued by its CA; only the key and the
    serial matter to the merchant)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(serial or x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .sign(key, hashes.SHA256()))


def serial_hex(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "X")


def sign(message: str, key: rsa.RSAPrivateKey) -> str:
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(),
                                     hashes.SHA256())).decode()


def verify(message: str, signature: str, public: Any) -> bool:
    try:
        public.verify(base64.b64decode(signature), message.encode(), padding.PKCS1v15(),
                      hashes.SHA256())
    except Exception:  # noqa: BLE001
        return False
    return True


def signed_headers(body: str, *, key: rsa.RSAPrivateKey = PLATFORM_KEY,
                   serial: str = PUBLIC_KEY_ID, timestamp: int | None = None,
                   nonce: str | None = None) -> dict[str, str]:
    """Wechatpay-* headers of an answer or callback: SHA256withRSA over
    "timestamp\\nnonce\\nbody\\n"."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    return {
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": sign(f"{stamp}\n{nonce}\n{body}\n", key),
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


def encrypt(plain: str, associated: str = "transaction", key: str = APIV3_KEY) -> dict[str, str]:
    nonce = secrets.token_hex(6)  # 12 characters, as WeChat's
    ciphertext = AESGCM(key.encode()).encrypt(nonce.encode(), plain.encode(), associated.encode())
    return {"algorithm": "AEAD_AES_256_GCM", "ciphertext": base64.b64encode(ciphertext).decode(),
            "associated_data": associated, "nonce": nonce}


def transaction(**overrides: Any) -> dict[str, Any]:
    data = {
        "appid": APPID, "mchid": MCHID, "out_trade_no": "R20261126000001",
        "transaction_id": "4200000000202611260000000001", "trade_type": "JSAPI",
        "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "OTHERS",
        "attach": "", "success_time": "2026-11-26T10:00:04+08:00",
        "payer": {"openid": OPENID},
        "amount": {"total": 2500, "payer_total": 2500, "currency": "CNY",
                   "payer_currency": "CNY"},
    }
    data.update(overrides)
    return data


def callback(resource: dict[str, Any] | None = None, *, notice_id: str | None = None,
             event_type: str = "TRANSACTION.SUCCESS", apiv3_key: str = APIV3_KEY) -> str:
    """A callback body: the envelope with the transaction encrypted under the APIv3 key."""
    return json.dumps({
        "id": notice_id or f"EV-{os.urandom(8).hex()}",
        "create_time": "2026-11-26T10:00:05+08:00",
        "resource_type": "encrypt-resource", "event_type": event_type, "summary": "支付成功",
        "resource": encrypt(json.dumps(resource or transaction(), ensure_ascii=False),
                            key=apiv3_key),
    }, ensure_ascii=False)


AUTHORIZATION = re.compile(
    r'^WECHATPAY2-SHA256-RSA2048 mchid="(?P<mchid>[^"]+)",nonce_str="(?P<nonce>[^"]+)",'
    r'signature="(?P<signature>[^"]+)",timestamp="(?P<timestamp>\d+)",serial_no="(?P<serial>[^"]+)"$')


def request_verifies(method: str, path: str, body: str, header: str,
                     public: Any = None) -> bool:
    """Whether a merchant request's Authorization verifies, as WeChat checks it: SHA256withRSA
    over "METHOD\\npath?query\\ntimestamp\\nnonce\\nbody\\n" with the merchant's public key."""
    match = AUTHORIZATION.match(header)
    if match is None or match["mchid"] != MCHID or match["serial"] != CERT_SERIAL:
        return False
    message = f"{method}\n{path}\n{match['timestamp']}\n{match['nonce']}\n{body}\n"
    return verify(message, match["signature"], public or MERCHANT_KEY.public_key())
