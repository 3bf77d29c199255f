"""WeChat Pay API v3: a thin client, one signed call per method.

:class:`WechatPayClient` signs each request with the merchant's API key (wechatpayv3's
``build_authorization``), sends it with explicit timeouts on its own ``requests.Session``, and
believes an answer only once its platform signature and timestamp verified. Every call ends in
a small typed result, :class:`WalletRefused` (WeChat answered with a code) or
:class:`WalletUnavailable` (nobody knows what happened; :class:`WalletUnreachable` when the
request never left).

Why not wechatpayv3's own ``Core.request``: it posts through module-level ``requests`` calls to
a host fixed in a private attribute, re-serialises the body it signed, raises a bare
``Exception`` for a bad signature, checks no timestamp, and downloads certificates in its
constructor and on every unknown serial. Its signing, verifying and decrypting functions are
what this client uses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from adapter.ports import WalletRefused, WalletUnavailable
from adapter.wallet.transport import transport_failure
from adapter.wallet.wechatpay import consts
from adapter.wallet.wechatpay.signing import (
    NotVerified,
    PlatformCertificate,
    PlatformKeys,
    authorization,
    pay_sign,
    read_certificates,
    verify_signed,
)

logger = logging.getLogger(__name__)

BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
MAX_BILL_BYTES = 512 * 1024 * 1024  # a big hospital's day is tens of MB


def rfc3339(moment: dt.datetime) -> str:
    """A time as v3 writes it: 2026-11-26T10:15:00+08:00 (Beijing time)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("time must be timezone-aware")
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


def read_time(value: object) -> dt.datetime | None:
    """A v3 time (RFC 3339 with its offset), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@dataclass(frozen=True)
class WechatTrade:
    """A trade as the query says it (trade_state still WeChat's word)."""

    out_trade_no: str
    trade_state: str
    transaction_id: str = ""
    total_fen: int = 0
    openid: str = ""
    success_time: dt.datetime | None = None


@dataclass(frozen=True)
class WechatRefund:
    """A refund as the refund call or query says it (status still WeChat's word)."""

    out_trade_no: str
    out_refund_no: str
    status: str
    refund_fen: int
    refund_id: str = ""


@dataclass(frozen=True)
class BillLink:
    """Where the day's trade bill is, and the hash the file must have."""

    download_url: str
    hash_type: str = ""
    hash_value: str = ""


def _amount(data: dict[str, Any], field: str) -> int:
    amount = data.get("amount")
    value = amount.get(field) if isinstance(amount, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise WalletUnavailable(f"answer without an integer amount.{field}")
    return value


class WechatPayClient:
    """One signed v3 call per method; answers are verified before they are believed."""

    def __init__(
        self,
        api_url: str,
        mchid: str,
        appid: str,
        private_key: RSAPrivateKey,
        cert_serial_no: str,
        apiv3_key: str,
        *,
        public_key: RSAPublicKey | None = None,
        public_key_id: str = "",
        certificates: bool = False,
        notify_url: str = "",
        timeout: tuple[float, float] = (5.0, 15.0),
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        refresh_interval: float = 60.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._path_prefix = urlsplit(self.api_url).path
        self.mchid = mchid
        self.appid = appid
        self._private_key = private_key
        self.cert_serial_no = cert_serial_no
        self._apiv3_key = apiv3_key
        self.notify_url = notify_url
        self.timeout = timeout
        self.session = session or requests.Session()
        self.clock = clock
        self.keys = PlatformKeys(public_key=public_key, public_key_id=public_key_id,
                                 fetch=self.download_certificates if certificates else None,
                                 refresh_interval=refresh_interval)

    @property
    def apiv3_key(self) -> str:
        """The APIv3 key (callback resources are encrypted with it)."""
        return self._apiv3_key

    def pay_sign(self, timestamp: str, nonce: str, package: str) -> str:
        """paySign of a JSAPI payment for our appid, with the merchant's API key."""
        return pay_sign(self.appid, timestamp, nonce, package, self._private_key)

    # ----------------------------------------------------------------------------------------
    # Transport

    def _send(self, method: str, path: str, body: dict[str, Any] | None,
              what: str) -> requests.Response:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":")) if body else ""
        headers = {
            "Accept": "application/json",
            "User-Agent": "future-hospital-adapter",
            # The signature covers the path as the server sees it, prefix included.
            "Authorization": authorization(method, self._path_prefix + path, text,
                                           mchid=self.mchid, serial_no=self.cert_serial_no,
                                           private_key=self._private_key),
        }
        if text:
            headers["Content-Type"] = "application/json"
        if self.keys.public_key_id:
            # Public-key mode: WeChat asks for the key's id beside every request.
            headers["Wechatpay-Serial"] = self.keys.public_key_id
        try:
            return self.session.request(method, self.api_url + path,
                                        data=text.encode("utf-8") if text else None,
                                        headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise transport_failure(what, exc) from None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, *,
              what: str, verify: bool = True) -> dict[str, Any]:
        """One request; the verified JSON answer ({} for 204)."""
        response = self._send(method, path, body, what)
        try:
            # The signature is over the body as sent: UTF-8, whatever requests would guess.
            raw = response.content.decode("utf-8")
        except UnicodeDecodeError:
            raise WalletUnavailable(f"{what}: answer is not UTF-8") from None
        if not 200 <= response.status_code < 300:
            self._refusal(what, response.status_code, raw)
        if verify:
            try:
                verify_signed(response.headers, raw, self.keys, self.clock())
            except NotVerified as exc:
                logger.warning("%s: answer not verified (%s)", what, exc)
                raise WalletUnavailable(f"{what}: answer not verified ({exc})") from None
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise WalletUnavailable(f"{what}: answer is not JSON") from None
        if not isinstance(data, dict):
            raise WalletUnavailable(f"{what}: answer is not a JSON object")
        return data

    def _refusal(self, what: str, status: int, raw: str) -> None:
        """Raise for a 4xx/5xx: WalletRefused with WeChat's code, unless the code (or the
        lack of one) leaves the outcome unknown."""
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        code = str(data.get("code", "")) if isinstance(data, dict) else ""
        message = str(data.get("message", "")) if isinstance(data, dict) else ""
        if status >= 500 or not code or code in consts.UNKNOWN_OUTCOME_CODES:
            logger.warning("%s: HTTP %s %s, outcome unknown", what, status, code)
            raise WalletUnavailable(f"{what}: HTTP {status} {code}".strip())
        logger.info("%s: refused HTTP %s %s", what, status, code)
        raise WalletRefused(code, "", message)

    # ----------------------------------------------------------------------------------------
    # Trades

    def jsapi_order(self, out_trade_no: str, total_fen: int, description: str, openid: str,
                    time_expire: dt.datetime) -> str:
        """POST /v3/pay/transactions/jsapi; the prepay_id (valid two hours)."""
        if total_fen <= 0:
            raise ValueError("total_fen must be positive")
        body = {
            "appid": self.appid,
            "mchid": self.mchid,
            "description": description[:127],  # WeChat's bound
            "out_trade_no": out_trade_no,
            "time_expire": rfc3339(time_expire),
            "notify_url": self.notify_url,
            "amount": {"total": total_fen, "currency": consts.CURRENCY},
            "payer": {"openid": openid},
        }
        data = self._call("POST", consts.JSAPI_PATH, body, what="jsapi order")
        prepay_id = str(data.get("prepay_id", ""))
        if not prepay_id:
            raise WalletUnavailable("jsapi order answered without a prepay_id")
        logger.info("trade %s ordered", out_trade_no)
        return prepay_id

    def query(self, out_trade_no: str) -> WechatTrade:
        """GET .../out-trade-no/{out_trade_no}; a trade WeChat does not have is WalletRefused
        ORDER_NOT_EXIST."""
        path = consts.QUERY_PATH.format(out_trade_no=quote(out_trade_no, safe=""),
                                        mchid=quote(self.mchid, safe=""))
        data = self._call("GET", path, what="trade query")
        if data.get("out_trade_no") not in (None, out_trade_no):
            raise WalletUnavailable("trade query answered for another out_trade_no")
        amount = data.get("amount")
        payer = data.get("payer")
        return WechatTrade(
            out_trade_no=out_trade_no,
            trade_state=str(data.get("trade_state", "")),
            transaction_id=str(data.get("transaction_id", "") or ""),
            total_fen=_amount(data, "total") if isinstance(amount, dict) else 0,
            openid=str(payer.get("openid", "")) if isinstance(payer, dict) else "",
            success_time=read_time(data.get("success_time")),
        )

    def close(self, out_trade_no: str) -> None:
        """POST .../out-trade-no/{out_trade_no}/close (answered 204)."""
        path = consts.CLOSE_PATH.format(out_trade_no=quote(out_trade_no, safe=""))
        self._call("POST", path, {"mchid": self.mchid}, what="trade close")
        logger.info("trade %s closed", out_trade_no)

    def refund(self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int,
               reason: str) -> WechatRefund:
        """POST /v3/refund/domestic/refunds. WeChat refunds one out_refund_no at most once: the
        same request again answers the refund already made."""
        if refund_fen <= 0:
            raise ValueError("refund_fen must be positive")
        body: dict[str, Any] = {
            "out_trade_no": out_trade_no,
            "out_refund_no": out_refund_no,
            "amount": {"refund": refund_fen, "total": total_fen, "currency": consts.CURRENCY},
        }
        if reason:
            body["reason"] = reason[:80]  # WeChat's bound
        data = self._call("POST", consts.REFUND_PATH, body, what="refund")
        return self._refund(data, out_trade_no, out_refund_no)

    def query_refund(self, out_refund_no: str) -> WechatRefund:
        """GET /v3/refund/domestic/refunds/{out_refund_no}; none is WalletRefused
        RESOURCE_NOT_EXISTS."""
        path = consts.REFUND_QUERY_PATH.format(out_refund_no=quote(out_refund_no, safe=""))
        data = self._call("GET", path, what="refund query")
        return self._refund(data, str(data.get("out_trade_no", "")), out_refund_no)

    @staticmethod
    def _refund(data: dict[str, Any], out_trade_no: str, out_refund_no: str) -> WechatRefund:
        if data.get("out_refund_no") not in (None, out_refund_no):
            raise WalletUnavailable("refund answered for another out_refund_no")
        return WechatRefund(out_trade_no=str(data.get("out_trade_no", "") or out_trade_no),
                            out_refund_no=out_refund_no, status=str(data.get("status", "")),
                            refund_fen=_amount(data, "refund"),
                            refund_id=str(data.get("refund_id", "")))

    # ----------------------------------------------------------------------------------------
    # Bills and certificates

    def trade_bill(self, bill_date: dt.date) -> BillLink:
        """GET /v3/bill/tradebill (bill_type ALL); NO_STATEMENT_EXIST when there is none."""
        data = self._call("GET", consts.TRADE_BILL_PATH.format(bill_date=bill_date.isoformat()),
                          what="trade bill")
        url = str(data.get("download_url", ""))
        if not url.startswith(("https://", "http://")):
            raise WalletUnavailable("trade bill answered without a download_url")
        return BillLink(url, str(data.get("hash_type", "")), str(data.get("hash_value", "")))

    def download(self, link: BillLink) -> bytes:
        """GET the bill file: a signed request whose answer is not signed (WeChat documents
        it); the file's hash from the bill call stands in for the signature."""
        parts = urlsplit(link.download_url)
        path = parts.path.removeprefix(self._path_prefix) + (f"?{parts.query}" if parts.query
                                                             else "")
        api = urlsplit(self.api_url)
        if (parts.scheme, parts.netloc) != (api.scheme, api.netloc):
            # Our signed Authorization goes with the request: only to the API's own host.
            raise WalletUnavailable("bill download URL is not on the API host")
        response = self._send("GET", path, None, "bill download")
        if response.status_code != 200:
            raise WalletUnavailable(f"bill download: HTTP {response.status_code}")
        data = response.content
        if len(data) > MAX_BILL_BYTES:
            raise WalletUnavailable("bill download: larger than a bill can be")
        if link.hash_value:
            algorithm = (link.hash_type or "SHA1").lower()
            if algorithm not in ("sha1", "sha256", "sm3"):
                raise WalletUnavailable(f"bill download: unknown hash_type {link.hash_type}")
            digest = hashlib.new(algorithm, data).hexdigest()
            if digest.lower() != link.hash_value.lower():
                logger.warning("bill download: the file's hash is not the one announced")
                raise WalletUnavailable("bill download: hash_value does not match")
        return data

    def download_certificates(self) -> list[PlatformCertificate]:
        """GET /v3/certificates, each decrypted with the APIv3 key; the answer's signature is
        then checked with the certificate it names (or the platform public key)."""
        response = self._send("GET", consts.CERTIFICATES_PATH, None, "certificates")
        raw = response.content.decode("utf-8", "replace")
        if response.status_code != 200:
            self._refusal("certificates", response.status_code, raw)
        try:
            certificates = read_certificates(json.loads(raw), self._apiv3_key)
        except (ValueError, AttributeError):
            raise WalletUnavailable("certificates: answer is not JSON") from None
        listed = PlatformKeys(public_key=self.keys.public_key,
                              public_key_id=self.keys.public_key_id,
                              fetch=lambda: certificates)
        listed.refresh()
        try:
            verify_signed(response.headers, raw, listed, self.clock())
        except NotVerified as exc:
            raise WalletUnavailable(f"certificates: answer not verified ({exc})") from None
        return certificates
