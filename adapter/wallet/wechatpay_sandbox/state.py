"""The WeChat Pay sandbox's memory: the merchant it knows, its platform keys, users, OAuth codes
and tokens, orders and refunds, inboxes, bills and fault knobs, all under one lock.

Orders and refunds are in adapter/wallet/wechatpay_sandbox/trades.py; the official-account APIs
(OAuth, tokens, template messages) are here. Where the sandbox chose something the documents
leave open, the spot says so.
"""

from __future__ import annotations

import itertools
import logging
import random
import secrets
import threading
import time
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from adapter.wallet.sandbox import keys
from adapter.wallet.sandbox.common import KnobbedState
from adapter.wallet.wechatpay_sandbox import crypto
from adapter.wallet.wechatpay_sandbox.notifier import WechatNotifier
from adapter.wallet.wechatpay_sandbox.protocol import AUTH_SCHEME, rfc3339
from adapter.wallet.wechatpay_sandbox.trades import Order, OrderDesk
from adapter.wallet.wechatpay_sandbox.users import WechatUser, wechat_users

logger = logging.getLogger(__name__)

PUBLIC_KEY_MODE = "public-key"
CERTIFICATE_MODE = "certificate"
OAUTH_CODE_TTL_SECONDS = 300.0  # 网页授权: a code is used once and expires in 5 minutes
ACCESS_TOKEN_TTL_SECONDS = 7200  # expires_in of both access tokens
OLD_TOKEN_GRACE_SECONDS = 300.0  # cgi-bin/token: the previous token stays valid 5 minutes
BILL_URL_TTL_SECONDS = 30.0  # download_url: valid for 30 seconds


class OfficialAccountError(Exception):
    """An official-account API answer {"errcode": N, "errmsg": "..."} (HTTP 200)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WechatSandboxState(KnobbedState, OrderDesk):
    """All of the sandbox's data and knobs, shared by the Flask app and the notifier.

    Knobs (attributes; POST /_sandbox/faults): ``latency_ms``; ``timeout_rate`` and
    ``timeout_seconds`` (applied, answered late); ``system_error_rate`` with
    ``system_error_applies`` (500 SYSTEM_ERROR after or instead of applying);
    ``frequency_limit_rate`` (429 FREQUENCY_LIMITED, not applied); ``bad_signature_rate``
    (a response or callback signed with the wrong key); ``duplicate_notifications``,
    ``out_of_order_notifications``, ``lost_notifications``, ``notify_delay_seconds`` (first
    attempt held back, unscaled); ``notify_time_scale`` (retries, code and token lives);
    ``refund_seconds`` (how long a refund stays PROCESSING); ``bills_today`` (serve today's bill
    so far instead of 400 STATEMENT_CREATING, for demos).
    """

    KNOBS: dict[str, type] = {
        "latency_ms": int,
        "timeout_rate": float,
        "timeout_seconds": float,
        "system_error_rate": float,
        "system_error_applies": bool,
        "frequency_limit_rate": float,
        "bad_signature_rate": float,
        "duplicate_notifications": bool,
        "out_of_order_notifications": bool,
        "lost_notifications": bool,
        "notify_delay_seconds": float,
        "notify_time_scale": float,
        "refund_seconds": float,
        "bills_today": bool,
    }

    def __init__(
        self,
        *,
        merchant_public_key: rsa.RSAPublicKey | str,
        merchant_serial: str,
        apiv3_key: str,
        mchid: str = "1900000001",
        appid: str = "wx0000000000000001",
        app_secret: str = "sandbox-app-secret",  # noqa: S107 (the sandbox's own)
        platform_private_key: rsa.RSAPrivateKey | None = None,
        certificate_key: rsa.RSAPrivateKey | None = None,
        public_key_id: str | None = None,
        platform_mode: str = PUBLIC_KEY_MODE,
        public_url: str = "http://127.0.0.1:8901",
        users: list[WechatUser] | None = None,
        seed: int | None = None,
        notify_http_timeout: float = 5.0,
        **knobs: Any,
    ) -> None:
        if len(apiv3_key.encode("utf-8")) != 32:
            raise ValueError("the APIv3 key is 32 bytes")
        if platform_mode not in (PUBLIC_KEY_MODE, CERTIFICATE_MODE):
            raise ValueError(f"platform_mode is {PUBLIC_KEY_MODE} or {CERTIFICATE_MODE}")
        self.mchid, self.appid, self.app_secret = mchid, appid, app_secret
        self.apiv3_key = apiv3_key.encode("utf-8")
        self.merchant_public_key = (keys.load_public_key(merchant_public_key)
                                    if isinstance(merchant_public_key, str)
                                    else merchant_public_key)
        self.merchant_serial = merchant_serial
        self.platform_mode = platform_mode
        self.public_url = public_url.rstrip("/")
        # Public-key mode and certificate mode use different keys, as on the real platform.
        self.platform_private_key = platform_private_key or keys.generate_private_key()
        self.public_key_id = public_key_id or crypto.public_key_id(self.platform_private_key,
                                                                   mchid)
        self.certificate_key = certificate_key or keys.generate_private_key()
        self.certificate: x509.Certificate = crypto.make_certificate(self.certificate_key,
                                                                     self.now())
        self.certificate_serial = crypto.serial_hex(self.certificate)
        self._wrong_key = keys.generate_private_key()  # for bad_signature_rate
        self.notify_http_timeout = notify_http_timeout
        self.latency_ms, self.timeout_rate, self.timeout_seconds = 0, 0.0, 30.0
        self.system_error_rate, self.system_error_applies = 0.0, True
        self.frequency_limit_rate = self.bad_signature_rate = 0.0
        self.duplicate_notifications = self.out_of_order_notifications = False
        self.lost_notifications = self.bills_today = False
        self.notify_delay_seconds, self.notify_time_scale, self.refund_seconds = 0.0, 1.0, 0.0
        unknown = set(knobs) - set(self.KNOBS)
        if unknown:
            raise TypeError(f"unknown knobs: {', '.join(sorted(unknown))}")
        for name, value in knobs.items():
            setattr(self, name, value)
        self.rng = random.Random(seed)  # fault dice and shuffles; not security relevant
        self.lock = threading.RLock()
        self.users: dict[str, WechatUser] = {u.openid: u for u in (users or wechat_users(appid))}
        self.codes: dict[str, tuple[str, float, bool]] = {}  # code -> openid, issued, used
        self.sns_tokens: dict[str, tuple[str, float]] = {}  # token -> openid, issued
        self.cgi_tokens: dict[str, float] = {}  # token -> valid until (monotonic)
        self.inboxes: dict[str, list[dict[str, Any]]] = {}
        self.bills: dict[str, tuple[bytes, float]] = {}  # token -> file, issued
        self.orders: dict[str, Order] = {}
        self.prepays: dict[str, str] = {}
        self.transactions: dict[str, str] = {}
        self.refund_index: dict[str, str] = {}
        self._seq = itertools.count(1)
        self._msg_seq = itertools.count(2_000_000_001)
        self.notifier = WechatNotifier(self)

    def close(self) -> None:
        """Stop the notification thread."""
        self.notifier.stop()

    # -- signatures -----------------------------------------------------------------------

    def signing_key(self, requested_serial: str = "") -> tuple[str, rsa.RSAPrivateKey]:
        """(serial, key) the platform signs with: the mode's, unless the request's
        Wechatpay-Serial names the other one (as during a switch between the modes)."""
        if requested_serial == self.public_key_id:
            return self.public_key_id, self.platform_private_key
        if requested_serial == self.certificate_serial:
            return self.certificate_serial, self.certificate_key
        if self.platform_mode == PUBLIC_KEY_MODE:
            return self.public_key_id, self.platform_private_key
        return self.certificate_serial, self.certificate_key

    def signature_headers(self, body: str, requested_serial: str = "") -> dict[str, str]:
        """The Wechatpay-* headers of a response or a callback with ``body``."""
        serial, key = self.signing_key(requested_serial)
        if self.roll(self.bad_signature_rate):
            key = self._wrong_key
        timestamp, nonce = str(int(time.time())), crypto.nonce()
        return {
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": crypto.sign(crypto.response_message(timestamp, nonce, body),
                                               key),
            "Wechatpay-Serial": serial,
            "Wechatpay-Signature-Type": AUTH_SCHEME,
        }

    def certificates(self) -> dict[str, Any]:
        """GET /v3/certificates: the platform certificates, encrypted under the APIv3 key."""
        sealed = crypto.aead_encrypt(self.apiv3_key, crypto.certificate_pem(self.certificate),
                                     "certificate")
        return {"data": [{
            "serial_no": self.certificate_serial,
            "effective_time": rfc3339(self.certificate.not_valid_before_utc),
            "expire_time": rfc3339(self.certificate.not_valid_after_utc),
            "encrypt_certificate": sealed,
        }]}

    # -- official account: OAuth, tokens, template messages ------------------------------

    def issue_code(self, openid: str) -> str:
        """What WeChat appends to redirect_uri after 网页授权: a one-time code."""
        with self.lock:
            if openid not in self.users:
                raise KeyError(openid)
            code = secrets.token_urlsafe(24)
            self.codes[code] = (openid, time.monotonic(), False)
        return code

    def _check_app(self, appid: str, secret: str) -> None:
        if appid != self.appid:
            raise OfficialAccountError(40013, "invalid appid")
        if not secrets.compare_digest(secret.encode(), self.app_secret.encode()):
            raise OfficialAccountError(40125, "invalid appsecret")

    def exchange_code(self, appid: str, secret: str, code: str, grant_type: str) -> dict:
        """sns/oauth2/access_token: the code for the user's openid and a web access token."""
        self._check_app(appid, secret)
        if grant_type != "authorization_code":
            raise OfficialAccountError(40002, "invalid grant_type")
        with self.lock:
            entry = self.codes.get(code)
            if entry is None or time.monotonic() - entry[1] > self.scaled(
                    OAUTH_CODE_TTL_SECONDS):
                raise OfficialAccountError(40029, "invalid code")
            if entry[2]:
                raise OfficialAccountError(40163, "code been used")
            self.codes[code] = (entry[0], entry[1], True)
            token = secrets.token_urlsafe(32)
            self.sns_tokens[token] = (entry[0], time.monotonic())
        return {"access_token": token, "expires_in": ACCESS_TOKEN_TTL_SECONDS,
                "refresh_token": secrets.token_urlsafe(32), "openid": entry[0],
                "scope": "snsapi_base", "is_snapshotuser": 0}

    def sns_userinfo(self, token: str, openid: str) -> dict[str, Any]:
        """sns/userinfo: the profile a snsapi_userinfo token shows (never a real name)."""
        with self.lock:
            entry = self.sns_tokens.get(token)
            if entry is None or entry[0] != openid:
                raise OfficialAccountError(40001, "invalid credential, access_token is invalid "
                                           "or not latest")
            user = self.users[openid]
        return {"openid": openid, "nickname": user.nickname,
                "sex": 1 if user.person.gender == "M" else 2, "province": "", "city": "",
                "country": "CN", "headimgurl": "", "privilege": []}

    def cgi_token(self, grant_type: str, appid: str, secret: str) -> dict[str, Any]:
        """cgi-bin/token: a new access token; the previous one stays valid five minutes."""
        if grant_type != "client_credential":
            raise OfficialAccountError(40002, "invalid grant_type")
        self._check_app(appid, secret)
        now = time.monotonic()
        with self.lock:
            for old, until in list(self.cgi_tokens.items()):
                self.cgi_tokens[old] = min(until, now + self.scaled(OLD_TOKEN_GRACE_SECONDS))
            token = secrets.token_urlsafe(48)
            self.cgi_tokens[token] = now + self.scaled(ACCESS_TOKEN_TTL_SECONDS)
        return {"access_token": token, "expires_in": ACCESS_TOKEN_TTL_SECONDS}

    def send_template(self, token: str, body: Any) -> dict[str, Any]:
        """cgi-bin/message/template/send: kept in the user's inbox; the msgid."""
        with self.lock:
            until = self.cgi_tokens.get(token)
            if until is None:
                raise OfficialAccountError(40001, "invalid credential, access_token is invalid "
                                           "or not latest")
            if time.monotonic() > until:
                raise OfficialAccountError(42001, "access_token expired")
            if not isinstance(body, dict):
                raise OfficialAccountError(47001, "data format error")
            openid, template_id = body.get("touser"), body.get("template_id")
            if not isinstance(openid, str) or openid not in self.users:
                raise OfficialAccountError(40003, "invalid openid")
            if not isinstance(template_id, str) or not template_id:
                raise OfficialAccountError(40037, "invalid template_id")
            if not isinstance(body.get("data", {}), dict):
                raise OfficialAccountError(47001, "data format error")
            if not self.users[openid].subscribed:
                raise OfficialAccountError(43004, "require subscribe")
            msgid = next(self._msg_seq)
            self.inboxes.setdefault(openid, []).append({
                "msgid": msgid, "at": rfc3339(self.now()), "template_id": template_id,
                "url": str(body.get("url") or ""), "data": body.get("data", {}),
            })
        logger.info("wechatpay sandbox: template message %d sent", msgid)
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}
