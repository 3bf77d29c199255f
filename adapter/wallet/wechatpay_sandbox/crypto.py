"""The platform's side of the v3 signatures and encryption, written against the documents with
`cryptography` (not the client library the adapter uses, so the two check each other).

- Requests: ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",
  signature="..",timestamp="..",serial_no=".."``, SHA256withRSA by the merchant's API key over
  ``METHOD\\nURL\\ntimestamp\\nnonce\\nbody\\n`` (URL: path and query as sent).
- Responses and callbacks: ``Wechatpay-Timestamp/-Nonce/-Signature/-Serial`` over
  ``timestamp\\nnonce\\nbody\\n`` by the platform key; the serial names the key (a platform
  certificate's serial in hexadecimal, or ``PUB_KEY_ID_...`` in platform public-key mode).
- Callback resources and the platform certificates in GET /v3/certificates: AEAD_AES_256_GCM
  under the 32-byte APIv3 key, a 12-character nonce, base64 of ciphertext and tag.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import secrets
import string

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from adapter.wallet.sandbox import keys
from adapter.wallet.wechatpay_sandbox.protocol import AUTH_SCHEME

_ALPHABET = string.ascii_uppercase + string.digits
_AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')
CERTIFICATE_YEARS = 5  # WeChat Pay platform certificates are issued for five years


def nonce(length: int = 32) -> str:
    """A random nonce of upper-case letters and digits."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def parse_authorization(header: str) -> dict[str, str] | None:
    """The parameters of a v3 Authorization header, or None when it is not one."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme != AUTH_SCHEME:
        return None
    return dict(_AUTH_PARAM.findall(rest))


def request_message(method: str, url: str, timestamp: str, nonce_str: str, body: str) -> str:
    """The string a merchant signs for a request (构造签名串)."""
    return f"{method}\n{url}\n{timestamp}\n{nonce_str}\n{body}\n"


def response_message(timestamp: str, nonce_str: str, body: str) -> str:
    """The string the platform signs for a response or a callback."""
    return f"{timestamp}\n{nonce_str}\n{body}\n"


def sign(message: str, key: rsa.RSAPrivateKey) -> str:
    """SHA256withRSA (PKCS#1 v1.5), base64."""
    return keys.sign(message, key)


def verify(message: str, signature: str, key: rsa.RSAPublicKey) -> bool:
    """True when ``signature`` is SHA256withRSA over ``message`` by ``key``."""
    return keys.verify(message, signature, key)


def aead_encrypt(apiv3_key: bytes, plaintext: str, associated_data: str) -> dict[str, str]:
    """An encrypted resource: {algorithm, ciphertext, nonce, associated_data}."""
    iv = nonce(12)
    sealed = AESGCM(apiv3_key).encrypt(iv.encode("ascii"), plaintext.encode("utf-8"),
                                       associated_data.encode("utf-8"))
    return {"algorithm": "AEAD_AES_256_GCM", "ciphertext": base64.b64encode(sealed).decode(),
            "nonce": iv, "associated_data": associated_data}


def make_certificate(key: rsa.RSAPrivateKey, now: dt.datetime) -> x509.Certificate:
    """A platform certificate for ``key`` (self-signed: the sandbox is its own CA)."""
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenpay.com (sandbox)"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Tenpay.com CA Center"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com sign"),
    ])
    return (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365 * CERTIFICATE_YEARS))
        .sign(key, hashes.SHA256())
    )


def serial_hex(certificate: x509.Certificate) -> str:
    """A certificate's serial as WeChat Pay writes it: upper-case hexadecimal."""
    return format(certificate.serial_number, "X")


def certificate_pem(certificate: x509.Certificate) -> str:
    """The certificate as PEM text."""
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def public_key_id(key: rsa.RSAPrivateKey, mchid: str) -> str:
    """A stable ``PUB_KEY_ID_...`` for the platform public key (the same key, the same id)."""
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    digits = str(int.from_bytes(hashlib.sha256(der).digest()[:8], "big")).zfill(20)[:16]
    return f"PUB_KEY_ID_01{mchid.zfill(10)[-10:]}{digits}"


def load_merchant_key(text: str) -> tuple[rsa.RSAPublicKey, str]:
    """The merchant's API public key and, from a certificate, its serial ("" from a bare key)."""
    if "BEGIN CERTIFICATE" in text:
        certificate = x509.load_pem_x509_certificate(text.encode("ascii"))
        public = certificate.public_key()
        if not isinstance(public, rsa.RSAPublicKey):
            raise ValueError("the merchant certificate's key is not RSA")
        return public, serial_hex(certificate)
    return keys.load_public_key(text), ""
