"""WeChat Pay v3 signatures and keys, over wechatpayv3's own primitives.

wechatpayv3 (the kept library) signs requests (``build_authorization``), verifies answers and
callbacks (``rsa_verify``), decrypts AEAD_AES_256_GCM resources (``aes_decrypt``) and loads
keys and certificates; those are used as they are. Two things it does not do well are done
here around them, each where it matters:

- it never looks at Wechatpay-Timestamp, so a signed callback could be replayed forever:
  :func:`verify_signed` refuses one more than five minutes off our clock;
- its ``Core`` keeps the platform certificates itself and, on a serial it does not know,
  clears them and downloads /v3/certificates again, on every request (anyone can post a
  callback with a made-up serial): :class:`PlatformKeys` refreshes at most once per interval
  and keeps what it had when a download fails.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from wechatpayv3 import utils as wxutils

from adapter.wallet.wechatpay import consts

logger = logging.getLogger(__name__)


class KeyFormatError(ValueError):
    """A key, certificate or APIv3 key that cannot be used."""


def load_private_key(pem: str | bytes) -> RSAPrivateKey:
    """The merchant's API private key (apiclient_key.pem, PKCS#8)."""
    text = pem.decode("ascii", "replace") if isinstance(pem, bytes) else pem
    try:
        key = wxutils.load_private_key(text)
    except Exception:  # noqa: BLE001 - the library raises a bare Exception
        raise KeyFormatError("not a PEM private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise KeyFormatError("not an RSA private key")
    return key


def load_public_key(pem: str | bytes) -> RSAPublicKey:
    """The platform public key (pub_key.pem, downloaded from the merchant platform)."""
    text = pem.decode("ascii", "replace") if isinstance(pem, bytes) else pem
    try:
        key = wxutils.load_public_key(text)
    except Exception:  # noqa: BLE001 - the library raises a bare Exception
        raise KeyFormatError("not a PEM public key") from None
    if not isinstance(key, RSAPublicKey):
        raise KeyFormatError("not an RSA public key")
    return key


def load_apiv3_key(text: str) -> str:
    """The APIv3 key: 32 characters, the AES-256 key of callbacks and certificates."""
    key = text.strip()
    if len(key.encode("utf-8")) != 32:
        raise KeyFormatError("the APIv3 key must be 32 bytes")
    return key


def authorization(method: str, path: str, body: str, *, mchid: str, serial_no: str,
                  private_key: RSAPrivateKey) -> str:
    """The Authorization header of a request: method, path with query, timestamp, nonce and
    the exact body sent, signed SHA256withRSA (wechatpayv3's build_authorization)."""
    return wxutils.build_authorization(path, method, mchid, serial_no, private_key, data=body)


def pay_sign(appid: str, timestamp: str, nonce: str, package: str,
             private_key: RSAPrivateKey) -> str:
    """paySign of the JSAPI payment call: appId, timeStamp, nonceStr and package, one a line."""
    return wxutils.rsa_sign(private_key, f"{appid}\n{timestamp}\n{nonce}\n{package}\n")


def decrypt_resource(resource: Mapping[str, object], apiv3_key: str) -> str | None:
    """An AEAD_AES_256_GCM resource (callback, certificate) in clear; None when it does not
    decrypt (tampered, or another APIv3 key)."""
    nonce, ciphertext = resource.get("nonce"), resource.get("ciphertext")
    associated = resource.get("associated_data") or ""
    if resource.get("algorithm") != consts.RESOURCE_ALGORITHM:
        return None
    if not (isinstance(nonce, str) and isinstance(ciphertext, str)
            and isinstance(associated, str)):
        return None
    try:
        return wxutils.aes_decrypt(nonce, ciphertext, associated, apiv3_key)
    except (ValueError, TypeError, UnicodeError):  # bad base64, nonce length, not UTF-8
        return None


class NotVerified(Exception):
    """An answer or callback whose signature, serial or timestamp is not one to stand by."""


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def verify_signed(headers: Mapping[str, str], body: str, keys: PlatformKeys,
                  now: float) -> None:
    """Check a platform-signed answer or callback; raises NotVerified saying what failed.

    The timestamp is checked first (wechatpayv3 does not check it at all): a stale one is a
    replay, refused before any key is looked for.
    """
    seen = _lower(headers)
    signature_type = seen.get(consts.HEADER_SIGNATURE_TYPE, consts.SIGNATURE_TYPE)
    if signature_type != consts.SIGNATURE_TYPE:
        raise NotVerified("signature type is not WECHATPAY2-SHA256-RSA2048")
    timestamp = seen.get(consts.HEADER_TIMESTAMP, "")
    nonce = seen.get(consts.HEADER_NONCE, "")
    signature = seen.get(consts.HEADER_SIGNATURE, "")
    serial = seen.get(consts.HEADER_SERIAL, "")
    if not (timestamp and nonce and signature and serial):
        raise NotVerified("unsigned")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > consts.MAX_CLOCK_SKEW_SECONDS:
        raise NotVerified("timestamp more than 5 minutes off")
    key = keys.key_for(serial)
    if key is None:
        raise NotVerified("unknown platform serial")
    # WeChat probes merchants with deliberately wrong signatures (WECHATPAY/SIGNTEST/...):
    # they fail here like any other.
    if not wxutils.rsa_verify(timestamp, nonce, body, signature, key):
        raise NotVerified("signature does not verify")


@dataclass(frozen=True)
class PlatformCertificate:
    """One platform certificate, read from /v3/certificates."""

    serial_no: str  # upper-case hex, as Wechatpay-Serial carries it
    certificate: x509.Certificate

    def valid_at(self, moment: dt.datetime) -> bool:
        """Within the certificate's validity."""
        return (self.certificate.not_valid_before_utc <= moment
                <= self.certificate.not_valid_after_utc)


def serial_of(certificate: x509.Certificate) -> str:
    """A certificate's serial as WeChat writes it (upper-case hex)."""
    return format(certificate.serial_number, "X")


class PlatformKeys:
    """The platform's verifying keys by serial: the configured platform public key (public-key
    mode), and/or the platform certificates (certificate mode) fetched by ``fetch``.

    Certificates are cached; an unknown serial triggers at most one refresh per
    ``refresh_interval`` seconds (wechatpayv3's Core downloads on every such request), and a
    cache older than ``max_age`` is refreshed at the next look-up (certificates rotate with an
    overlap, so one found stays good meanwhile). A failed refresh keeps what was there.
    """

    def __init__(
        self,
        *,
        public_key: RSAPublicKey | None = None,
        public_key_id: str = "",
        fetch: Callable[[], list[PlatformCertificate]] | None = None,
        refresh_interval: float = 60.0,
        max_age: float = 12 * 3600.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if (public_key is None) != (not public_key_id):
            raise ValueError("the platform public key and its id go together")
        if public_key is None and fetch is None:
            raise ValueError("neither a platform public key nor certificates")
        self.public_key = public_key
        self.public_key_id = public_key_id
        self._fetch = fetch
        self.refresh_interval = refresh_interval
        self.max_age = max_age
        self._monotonic = monotonic
        self._certificates: dict[str, PlatformCertificate] = {}
        self._fetched_at: float | None = None  # last successful download
        self._tried_at: float | None = None  # last attempt, successful or not
        self._lock = threading.Lock()
        self.refreshes = 0  # downloads attempted (for tests and metrics)

    @property
    def certificate_mode(self) -> bool:
        """Certificates are fetched from the platform."""
        return self._fetch is not None

    def key_for(self, serial: str) -> RSAPublicKey | None:
        """The key for a Wechatpay-Serial, or None (unknown after the allowed refresh)."""
        if self.public_key is not None and serial == self.public_key_id:
            return self.public_key
        if self._fetch is None or serial.startswith(consts.PUBLIC_KEY_ID_PREFIX):
            return None
        normal = serial.strip().upper().lstrip("0")
        if not normal or any(c not in "0123456789ABCDEF" for c in normal):
            return None  # not a certificate serial: no download can make it one
        found = self._valid(normal)
        stale = self._fetched_at is None or self._monotonic() - self._fetched_at > self.max_age
        if found is None or stale:
            self.refresh(only_if_due=True)
            found = self._valid(normal) or found
        return found.certificate.public_key() if found else None

    def _valid(self, serial: str) -> PlatformCertificate | None:
        cert = self._certificates.get(serial)
        if cert is None or not cert.valid_at(dt.datetime.now(dt.UTC)):
            return None
        return cert

    def newest(self) -> PlatformCertificate | None:
        """The certificate valid longest (what a request encrypting a field would name)."""
        valid = [c for c in self._certificates.values() if c.valid_at(dt.datetime.now(dt.UTC))]
        return max(valid, key=lambda c: c.certificate.not_valid_after_utc, default=None)

    def refresh(self, *, only_if_due: bool = False) -> bool:
        """Download the certificates now (or only when the interval since the last attempt is
        over); True when a download succeeded. The cache is replaced whole, never emptied."""
        if self._fetch is None:
            return False
        with self._lock:
            now = self._monotonic()
            if (only_if_due and self._tried_at is not None
                    and now - self._tried_at < self.refresh_interval):
                return False
            self._tried_at = now
            self.refreshes += 1
            try:
                certificates = self._fetch()
            except Exception as exc:  # noqa: BLE001 - keep what we had; the caller refuses
                logger.warning("platform certificates: download failed (%s)",
                               type(exc).__name__)
                return False
            if not certificates:
                logger.warning("platform certificates: the platform listed none")
                return False
            self._certificates = {c.serial_no.lstrip("0"): c for c in certificates}
            self._fetched_at = now
            logger.info("platform certificates: %d cached", len(certificates))
            return True


def read_certificates(data: Mapping[str, object], apiv3_key: str) -> list[PlatformCertificate]:
    """The certificates of a /v3/certificates answer, each decrypted with the APIv3 key (the
    AEAD tag is what proves they come from WeChat); ones that do not decrypt are skipped."""
    found = []
    entries = data.get("data")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("encrypt_certificate"), dict):
            continue
        pem = decrypt_resource(entry["encrypt_certificate"], apiv3_key)
        certificate = wxutils.load_certificate(pem) if pem else None
        if certificate is None:
            logger.warning("platform certificates: one does not decrypt or load")
            continue
        found.append(PlatformCertificate(serial_of(certificate), certificate))
    return found
