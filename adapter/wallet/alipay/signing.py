"""Alipay OpenAPI v1 signatures (sign_type RSA2 = SHA256withRSA), done with `cryptography`.

Why not an SDK: python-alipay-sdk is an alpha (its response extractor counts braces without
knowing JSON strings, see :func:`extract_response`), and Alipay's own generated Python SDK reads
PKCS#1 keys only, while the Alipay console hands out PKCS#8. The v1 protocol is small:

- Request: every parameter but ``sign`` (``sign_type`` included), empty values dropped, sorted by
  key, raw values joined ``k=v`` with ``&``; RSASSA-PKCS1-v1_5 over SHA-256 of its UTF-8 bytes,
  base64. URL-encoding belongs to transport only and is never part of the signed text.
- Synchronous response: the platform signs the exact bytes of the ``<method>_response`` value as
  they appear in the body; the signature is the top-level ``sign`` member.
- Asynchronous notification: like a request, but ``sign`` AND ``sign_type`` are left out, and the
  values are taken as received (after form URL-decoding).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from adapter.ports import WalletUnavailable
from adapter.wallet.alipay import consts

logger = logging.getLogger(__name__)

MIN_KEY_BITS = 2048  # RSA2 keys issued by the Alipay console are 2048 bits

_WHITESPACE = re.compile(r"\s+")


class KeyFormatError(ValueError):
    """A key could not be read; the message says why without ever quoting the key."""


class SignatureError(WalletUnavailable):
    """A gateway response did not verify: its content cannot be trusted, the outcome is unknown."""


PrivateKeyInput = RSAPrivateKey | str | bytes
PublicKeyInput = RSAPublicKey | str | bytes


# --------------------------------------------------------------------------------------------
# Keys


def _as_text(text: str | bytes) -> str:
    if isinstance(text, bytes):
        try:
            return text.decode("ascii")
        except UnicodeDecodeError:
            raise KeyFormatError("key is not ASCII text (PEM or base64 expected)") from None
    if not isinstance(text, str):
        raise KeyFormatError(f"key must be str or bytes, not {type(text).__name__}")
    return text


def _one_line_der(text: str) -> bytes:
    compact = _WHITESPACE.sub("", text)
    if not compact:
        raise KeyFormatError("key is empty")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError("key is neither PEM nor valid one-line base64") from None


def _check_rsa_size(bits: int) -> None:
    if bits < MIN_KEY_BITS:
        raise KeyFormatError(f"RSA key of {bits} bits is too short for RSA2 (>= {MIN_KEY_BITS})")


def load_private_key(text: str | bytes) -> RSAPrivateKey:
    """Read an RSA private key: PKCS#1 PEM, PKCS#8 PEM, or the console's one-line base64 DER."""
    pem = _as_text(text).strip()
    try:
        if "-----BEGIN" in pem:
            if "ENCRYPTED" in pem:
                raise KeyFormatError("encrypted private keys are not supported; store it decrypted")
            if "PRIVATE KEY-----" not in pem:
                raise KeyFormatError("PEM block is not a private key")
            key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        else:
            # load_der_private_key reads PKCS#8 and the traditional PKCS#1 RSAPrivateKey.
            key = serialization.load_der_private_key(_one_line_der(pem), password=None)
    except KeyFormatError:
        raise
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyFormatError("not a readable RSA private key (PKCS#1 or PKCS#8)") from None
    if not isinstance(key, RSAPrivateKey):
        raise KeyFormatError(f"private key is not RSA ({type(key).__name__})")
    _check_rsa_size(key.key_size)
    return key


def load_public_key(text: str | bytes) -> RSAPublicKey:
    """Read an RSA public key: SubjectPublicKeyInfo PEM, PKCS#1 PEM, or one-line base64 DER."""
    pem = _as_text(text).strip()
    if "PRIVATE KEY-----" in pem:
        raise KeyFormatError("a private key was given where a public key is expected")
    try:
        if "-----BEGIN" in pem:
            key = serialization.load_pem_public_key(pem.encode("ascii"))
        else:
            # load_der_public_key reads SubjectPublicKeyInfo and PKCS#1 RSAPublicKey.
            key = serialization.load_der_public_key(_one_line_der(pem))
    except KeyFormatError:
        raise
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyFormatError("not a readable RSA public key (SPKI or PKCS#1)") from None
    if not isinstance(key, RSAPublicKey):
        raise KeyFormatError(f"public key is not RSA ({type(key).__name__})")
    _check_rsa_size(key.key_size)
    return key


def _private(key: PrivateKeyInput) -> RSAPrivateKey:
    return key if isinstance(key, RSAPrivateKey) else load_private_key(key)


def _public(key: PublicKeyInput) -> RSAPublicKey:
    return key if isinstance(key, RSAPublicKey) else load_public_key(key)


def generate_key_pair(bits: int = MIN_KEY_BITS) -> tuple[str, str]:
    """A fresh RSA key pair for the sandbox and tests: (PKCS#8 private PEM, SPKI public PEM)."""
    _check_rsa_size(bits)
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    return private_pem, public_pem


def public_key_one_line(public_pem: str | bytes) -> str:
    """The public key as the Alipay console shows it: base64 of the SubjectPublicKeyInfo DER."""
    der = load_public_key(public_pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


# --------------------------------------------------------------------------------------------
# Signing and verifying


def signing_content(params: Mapping[str, str | None], exclude: tuple[str, ...] = ("sign",)) -> str:
    """The text to sign: non-empty parameters but the excluded, sorted by key, raw ``k=v&...``."""
    items: list[tuple[str, str]] = []
    for name, value in params.items():
        if name in exclude or value is None or value == "":
            continue
        if not isinstance(value, str):
            # A str() here would silently sign "True" or "25.0"; the caller must format values.
            raise TypeError(f"parameter {name!r} must be str, not {type(value).__name__}")
        items.append((name, value))
    items.sort(key=lambda item: item[0].encode("utf-8"))
    return "&".join(f"{name}={value}" for name, value in items)


def sign(content: str, key: PrivateKeyInput) -> str:
    """SHA256withRSA (RSASSA-PKCS1-v1_5, SHA-256) of the UTF-8 content, base64 on one line."""
    signature = _private(key).sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def verify(content: str, signature: str, key: PublicKeyInput) -> bool:
    """True only for a valid RSA2 signature of ``content``; bad input gives False, not an error."""
    public_key = _public(key)  # a bad *configured* key is an error worth raising
    if not isinstance(content, str) or not isinstance(signature, str) or not signature:
        return False
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        public_key.verify(raw, content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_params(params: Mapping[str, str | None], key: PrivateKeyInput) -> str:
    """The ``sign`` value for request parameters (everything but ``sign`` is signed)."""
    return sign(signing_content(params), key)


def verify_notification(params: Mapping[str, str], public_key: PublicKeyInput) -> bool:
    """Verify an asynchronous notification's form fields (as received, after URL-decoding).

    Alipay's rule for notifications: ``sign`` and ``sign_type`` are both left out of the signed
    text (unlike requests, where ``sign_type`` is signed).
    """
    key = _public(public_key)
    signature = params.get("sign")
    if not isinstance(signature, str) or not signature:
        return False
    if params.get("sign_type", consts.SIGN_TYPE) != consts.SIGN_TYPE:
        return False  # RSA (SHA-1) is refused, not downgraded to
    try:
        content = signing_content(params, exclude=("sign", "sign_type"))
    except TypeError:
        return False
    return verify(content, signature, key)


# --------------------------------------------------------------------------------------------
# Synchronous responses


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _string_end(text: str, i: int) -> int:
    """Index just past the JSON string starting at text[i] == '"'."""
    i += 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == '"':
            return i + 1
        i += 1
    raise ValueError("unterminated string in response body")


def _value_end(text: str, i: int) -> int:
    """Index just past the JSON value starting at text[i]; strings-aware for nested braces."""
    if i >= len(text):
        raise ValueError("response body ends where a value is expected")
    char = text[i]
    if char == '"':
        return _string_end(text, i)
    if char in "{[":
        depth = 0
        while i < len(text):
            char = text[i]
            if char == '"':
                i = _string_end(text, i)
                continue
            if char in "{[":
                depth += 1
            elif char in "}]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        raise ValueError("unbalanced braces in response body")
    # number, true, false, null
    start = i
    while i < len(text) and text[i] not in ",}] \t\r\n":
        i += 1
    if i == start:
        raise ValueError("malformed value in response body")
    return i


def _top_level_members(raw_body: str) -> dict[str, str]:
    """The raw text of each member of the top-level object, keyed by member name."""
    i = _skip_ws(raw_body, 0)
    if raw_body[i : i + 1] != "{":
        raise ValueError("response body is not a JSON object")
    members: dict[str, str] = {}
    i = _skip_ws(raw_body, i + 1)
    if raw_body[i : i + 1] == "}":
        return members
    while True:
        if raw_body[i : i + 1] != '"':
            raise ValueError("malformed member name in response body")
        key_end = _string_end(raw_body, i)
        name = json.loads(raw_body[i:key_end])
        i = _skip_ws(raw_body, key_end)
        if raw_body[i : i + 1] != ":":
            raise ValueError("missing ':' in response body")
        start = _skip_ws(raw_body, i + 1)
        end = _value_end(raw_body, start)
        members[name] = raw_body[start:end]
        i = _skip_ws(raw_body, end)
        if raw_body[i : i + 1] == ",":
            i = _skip_ws(raw_body, i + 1)
            continue
        if raw_body[i : i + 1] == "}":
            return members
        raise ValueError("malformed response body")


def response_key(method: str) -> str:
    """``alipay.trade.query`` -> ``alipay_trade_query_response``."""
    return method.replace(".", "_") + "_response"


def extract_response(raw_body: str, method: str) -> tuple[str, str | None]:
    """The exact raw text of the method's response object (or ``error_response``) and ``sign``.

    The platform signs the bytes it sent; re-serialising ``json.loads`` output changes spacing,
    escapes and key order and breaks the signature, so the value is cut out of the raw text.
    """
    members = _top_level_members(raw_body)
    content = members.get(response_key(method))
    if content is None:
        content = members.get("error_response")
    if content is None or not content.startswith("{"):
        raise ValueError(f"no {response_key(method)} or error_response object in body")
    sign_raw = members.get("sign")
    signature = json.loads(sign_raw) if sign_raw is not None else None
    if signature is not None and not isinstance(signature, str):
        raise ValueError("sign is not a string")
    return content, signature


def verify_response(raw_body: str, method: str, public_key: PublicKeyInput) -> dict[str, Any]:
    """The parsed response object if its signature verifies; otherwise :class:`SignatureError`.

    Alipay does not sign some gateway-level errors (an ``error_response`` for an invalid auth
    code, an invalid signature or app id arrives with an empty or no ``sign``). Such an unsigned
    object is returned only when its ``code`` is present and is not the success code: it can
    only ever be read as an error, never as a success.
    """
    key = _public(public_key)
    try:
        content, signature = extract_response(raw_body, method)
        parsed = json.loads(content)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise SignatureError(f"unreadable gateway response: {exc}") from None
    if not isinstance(parsed, dict):
        raise SignatureError("gateway response object is not a JSON object")
    if signature:
        if verify(content, signature, key):
            return parsed
        raise SignatureError(f"{method}: response signature does not verify")
    code = parsed.get("code")
    if isinstance(code, str) and code and code != consts.SUCCESS:
        logger.info("%s: unsigned error response accepted as an error (code %s)", method, code)
        return parsed
    raise SignatureError(f"{method}: unsigned response that is not an error")
