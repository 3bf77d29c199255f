"""The sandbox's own RSA2 (SHA256withRSA) signing, independent of adapter/wallet/signing.py.

The sandbox plays the platform, so it implements the documented rules itself rather than
sharing the adapter's code: a mistake on either side then shows up as a failed signature
instead of cancelling out. Rules (Alipay OpenAPI v1 "自行实现签名"): drop ``sign`` (and, for
notifications, ``sign_type``) and empty values, sort by key, join ``k=v`` with ``&``, UTF-8,
PKCS#1 v1.5 with SHA-256, base64.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

logger = logging.getLogger(__name__)


def _pem_or_der(text: str, kind: str) -> bytes:
    """PEM text as bytes, or DER from the bare base64 Alipay's key tool shows."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return text.encode("ascii")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"not a PEM or base64 {kind} key") from None


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM (PKCS#8 or PKCS#1) or bare base64 PKCS#8."""
    data = _pem_or_der(text, "private")
    loader = (serialization.load_pem_private_key if data.startswith(b"-----")
              else serialization.load_der_private_key)
    key = loader(data, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """An RSA public key from PEM or bare base64 SubjectPublicKeyInfo."""
    data = _pem_or_der(text, "public")
    loader = (serialization.load_pem_public_key if data.startswith(b"-----")
              else serialization.load_der_public_key)
    key = loader(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def public_pem(key: rsa.RSAPrivateKey) -> str:
    """The SubjectPublicKeyInfo PEM of a private key's public half."""
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def private_pem(key: rsa.RSAPrivateKey) -> str:
    """PKCS#8 PEM, unencrypted (the file is written with mode 0600)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def generate_private_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit key, the size Alipay's key tool makes."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def signing_content(params: Mapping[str, str], exclude: Iterable[str] = ("sign",)) -> str:
    """The documented string to sign: non-empty params but ``exclude``, sorted, ``k=v&...``."""
    skip = set(exclude)
    return "&".join(
        f"{k}={v}" for k, v in sorted(params.items()) if k not in skip and v not in ("", None)
    )


def sign(content: str, key: rsa.RSAPrivateKey) -> str:
    """SHA256withRSA over UTF-8 ``content``, base64."""
    signature = key.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def verify(content: str, signature: str, key: rsa.RSAPublicKey) -> bool:
    """True when ``signature`` (base64) is SHA256withRSA over ``content`` by ``key``."""
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def load_or_create_platform_key(path: Path) -> rsa.RSAPrivateKey:
    """Read the sandbox's platform key, or generate it and write it with mode 0600."""
    if path.exists():
        return load_private_key(path.read_text(encoding="ascii"))
    key = generate_private_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(private_pem(key))
    logger.info("wallet sandbox: generated a new platform key pair")
    return key


def write_public_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    """Write the platform public key (PEM) where the adapter reads it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(public_pem(key), encoding="ascii")
