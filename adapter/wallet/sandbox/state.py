"""The sandbox's memory: users, auth codes, tokens, trades, refunds, inboxes, bills, knobs.

Everything is held under one lock. The business rules follow Alipay's published behaviour for
each API; where the sandbox chose something the docs leave open, the spot says so. Users, OAuth,
messages and bills are here; trades and refunds in adapter/wallet/sandbox/trades.py.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import random
import secrets
import threading
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from adapter.wallet.sandbox import keys
from adapter.wallet.sandbox.common import KnobbedState
from adapter.wallet.sandbox.notifier import Notifier
from adapter.wallet.sandbox.protocol import GatewayError, fmt
from adapter.wallet.sandbox.trades import Trade, TradeDesk
from adapter.wallet.sandbox.users import (
    DEFAULT_TEST_USER_PREFIX,
    SandboxUser,
    make_test_user,
    seed_users,
)

logger = logging.getLogger(__name__)

AUTH_CODE_TTL_SECONDS = 300.0  # Alipay: an auth_code is valid for 5 minutes, once
ACCESS_TOKEN_TTL_SECONDS = 1_296_000  # what Alipay reports as expires_in (15 days)
BILL_URL_TTL_SECONDS = 30.0  # Alipay: the bill_download_url is valid for 30 seconds


class SandboxState(KnobbedState, TradeDesk):
    """All of the sandbox's data and fault knobs, shared by the Flask app and the notifier.

    Knobs are plain attributes a test may change while the sandbox runs (or POST
    /_sandbox/faults): ``latency_ms``, ``timeout_rate``, ``timeout_seconds``,
    ``system_error_rate``, ``system_error_applies``, ``duplicate_notifications``,
    ``out_of_order_notifications``, ``refund_notifications``, ``notify_time_scale``,
    ``lost_notifications`` (a payment is made but never notified: only a query or the day's
    bill shows it). For reconciliation, :meth:`foreign_payment` makes a paid trade the
    adapter never heard of and :meth:`console_refund` a refund the adapter never asked for.
    """

    KNOBS: dict[str, type] = {
        "latency_ms": int,
        "timeout_rate": float,
        "timeout_seconds": float,
        "system_error_rate": float,
        "system_error_applies": bool,
        "duplicate_notifications": bool,
        "out_of_order_notifications": bool,
        "refund_notifications": bool,
        "notify_time_scale": float,
        "lost_notifications": bool,
    }

    def __init__(
        self,
        *,
        app_public_key: rsa.RSAPublicKey | str,
        platform_private_key: rsa.RSAPrivateKey | str | None = None,
        app_id: str = "2021000000000001",
        seller_id: str = "2088000000000001",
        public_url: str = "http://127.0.0.1:8900",
        notify_time_scale: float = 1.0,
        seed: int | None = None,
        users: list[SandboxUser] | None = None,
        latency_ms: int = 0,
        timeout_rate: float = 0.0,
        timeout_seconds: float = 30.0,
        system_error_rate: float = 0.0,
        system_error_applies: bool = True,
        duplicate_notifications: bool = False,
        out_of_order_notifications: bool = False,
        refund_notifications: bool = False,
        notify_http_timeout: float = 5.0,
        lost_notifications: bool = False,
    ) -> None:
        self.app_id = app_id
        self.seller_id = seller_id
        self.public_url = public_url.rstrip("/")
        self.app_public_key = (keys.load_public_key(app_public_key)
                               if isinstance(app_public_key, str) else app_public_key)
        if platform_private_key is None:
            platform_private_key = keys.generate_private_key()
        self.platform_private_key = (keys.load_private_key(platform_private_key)
                                     if isinstance(platform_private_key, str)
                                     else platform_private_key)
        self.platform_public_pem = keys.public_pem(self.platform_private_key)
        self.notify_time_scale = notify_time_scale
        self.latency_ms = latency_ms
        self.timeout_rate = timeout_rate
        self.timeout_seconds = timeout_seconds
        self.system_error_rate = system_error_rate
        self.system_error_applies = system_error_applies
        self.duplicate_notifications = duplicate_notifications
        self.out_of_order_notifications = out_of_order_notifications
        self.refund_notifications = refund_notifications
        self.notify_http_timeout = notify_http_timeout
        self.lost_notifications = lost_notifications
        self.rng = random.Random(seed)  # fault dice and shuffles; not security relevant
        self.lock = threading.RLock()
        self.users: dict[str, SandboxUser] = {u.user_id: u for u in (users or seed_users())}
        self.auth_codes: dict[str, tuple[str, float, bool]] = {}  # code -> user, issued, used
        self.tokens: dict[str, str] = {}  # access_token -> user_id
        self.refresh_tokens: dict[str, str] = {}
        self.trades: dict[str, Trade] = {}  # by out_trade_no
        self.trade_nos: dict[str, str] = {}  # trade_no -> out_trade_no
        self.inboxes: dict[str, list[dict[str, Any]]] = {}
        self.bills: dict[str, tuple[dt.date, float]] = {}  # token -> bill date, issued
        self._trade_seq = itertools.count(1)
        self._test_user_seq = itertools.count(1)
        self.notifier = Notifier(self)

    def close(self) -> None:
        """Stop the notification thread."""
        self.notifier.stop()

    # -- users and OAuth ----------------------------------------------------------------

    MAX_TEST_USERS_PER_CALL = 10_000

    def add_test_users(self, count: int, prefix: str = DEFAULT_TEST_USER_PREFIX) -> list[str]:
        """Create ``count`` certified adult users with valid resident IDs; their user_ids.

        Numbering continues across calls, so every call gives new people (new user ids and new
        ID numbers); a number whose user id is already taken is skipped. ValueError on a bad
        count or prefix, or when the prefix leaves no room for more users.
        """
        if isinstance(count, bool) or not isinstance(count, int) or not (
                1 <= count <= self.MAX_TEST_USERS_PER_CALL):
            raise ValueError(f"count must be a whole number from 1 to "
                             f"{self.MAX_TEST_USERS_PER_CALL}")
        if not isinstance(prefix, str) or not prefix.isdigit() or not 1 <= len(prefix) <= 12:
            raise ValueError("prefix must be 1 to 12 digits")
        made: list[str] = []
        with self.lock:
            # Bounded: at most count skips of taken ids beyond the count itself.
            for _ in range(2 * count + len(self.users)):
                if len(made) == count:
                    break
                user = make_test_user(next(self._test_user_seq), prefix)
                if user.user_id in self.users:
                    continue
                self.users[user.user_id] = user
                made.append(user.user_id)
            if len(made) < count:
                raise ValueError("could not find free user ids for that prefix")
        logger.info("wallet sandbox: %d test users added", len(made))
        return made

    def issue_auth_code(self, user_id: str) -> str:
        """What the wallet hands the merchant after the user taps 授权: a one-time auth_code."""
        with self.lock:
            if user_id not in self.users:
                raise KeyError(user_id)
            code = secrets.token_hex(16)
            self.auth_codes[code] = (user_id, time.monotonic(), False)
        logger.info("wallet sandbox: auth code issued for user %s", user_id)
        return code

    def exchange_auth_code(self, code: str) -> dict[str, Any]:
        """alipay.system.oauth.token, grant_type authorization_code."""
        with self.lock:
            entry = self.auth_codes.get(code)
            if entry is None:
                raise _code_invalid()
            user_id, issued, used = entry
            expired = time.monotonic() - issued > self.scaled(AUTH_CODE_TTL_SECONDS)
            if used or expired:
                raise _code_invalid()
            self.auth_codes[code] = (user_id, issued, True)
            return self._new_tokens(user_id)

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        """alipay.system.oauth.token, grant_type refresh_token."""
        with self.lock:
            user_id = self.refresh_tokens.pop(refresh_token, None)
            if user_id is None:
                raise GatewayError("isv.refresh-token-invalid", "刷新令牌refresh_token无效",
                                   code="40002", msg="Invalid Arguments")
            return self._new_tokens(user_id)

    def _new_tokens(self, user_id: str) -> dict[str, Any]:
        access, refresh = secrets.token_hex(20), secrets.token_hex(20)
        self.tokens[access] = user_id
        self.refresh_tokens[refresh] = user_id
        return {
            "user_id": user_id,
            "access_token": access,
            "expires_in": ACCESS_TOKEN_TTL_SECONDS,
            "refresh_token": refresh,
            "re_expires_in": ACCESS_TOKEN_TTL_SECONDS * 2,
            "auth_start": fmt(self.now()),
        }

    def user_info(self, auth_token: str) -> dict[str, Any]:
        """alipay.user.info.share: what the user agreed to share (auth_user scope)."""
        with self.lock:
            user_id = self.tokens.get(auth_token)
            if user_id is None:
                # Alipay answers an unknown or expired token with 20001 (invalid auth token).
                raise GatewayError("aop.invalid-auth-token", "无效的访问令牌", code="20001",
                                   msg="Insufficient Token Permissions")
            user = self.users[user_id]
        info: dict[str, Any] = {
            "user_id": user.user_id,
            "nick_name": user.nick_name,
            "gender": user.gender,
            "is_certified": "T" if user.is_certified else "F",
            "mobile": user.mobile,
            "user_type": "2",
            "user_status": "T",
        }
        if user.is_certified:
            info.update(user_name=user.name, cert_type=user.cert_type, cert_no=user.cert_no)
        return info

    # -- messages and bills ---------------------------------------------------------------

    def send_message(self, biz: dict[str, Any]) -> dict[str, Any]:
        """alipay.open.public.message.single.send: kept in the user's inbox."""
        user_id = str(biz.get("to_user_id") or "")
        template = biz.get("template")
        if not user_id or not isinstance(template, dict):
            raise GatewayError("isv.invalid-arguments", "to_user_id 和 template 必填",
                               code="40002", msg="Invalid Arguments")
        with self.lock:
            if user_id not in self.users:
                raise GatewayError("USER_NOT_EXIST", "用户不存在")
            self.inboxes.setdefault(user_id, []).append(
                {"at": fmt(self.now()), "template_id": str(template.get("template_id", "")),
                 "context": template.get("context", {})}
            )
        logger.info("wallet sandbox: message pushed to user %s", user_id)
        return {}

    def bill_url(self, biz: dict[str, Any]) -> dict[str, Any]:
        """alipay.data.dataservice.bill.downloadurl.query (bill_type trade, one day)."""
        if str(biz.get("bill_type") or "") != "trade":
            raise GatewayError("isv.invalid-arguments", "bill_type 仅支持 trade",
                               code="40002", msg="Invalid Arguments")
        try:
            bill_date = dt.date.fromisoformat(str(biz.get("bill_date") or ""))
        except ValueError:
            raise GatewayError("isv.invalid-arguments", "bill_date 格式为 yyyy-MM-dd",
                               code="40002", msg="Invalid Arguments") from None
        # Real Alipay serves yesterday's bill from about 09:00; the sandbox also serves today's
        # (so far) so a demo can reconcile at once. Future days do not exist yet.
        if bill_date > self.now().date():
            raise GatewayError("isp.bill_not_exist", "账单不存在")
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.bills[token] = (bill_date, time.monotonic())
        return {"bill_download_url": f"{self.public_url}/bill/{token}.csv.zip"}

    def bill_for_token(self, token: str) -> dt.date | None:
        """The day a bill URL was issued for, while it is still valid (30 s, unscaled)."""
        with self.lock:
            entry = self.bills.get(token)
        if entry is None or time.monotonic() - entry[1] > BILL_URL_TTL_SECONDS:
            return None
        return entry[0]


def _code_invalid() -> GatewayError:
    # Alipay answers an unknown, used or expired auth code this way (under error_response).
    return GatewayError("isv.code-invalid", "授权码code无效", code="40002",
                        msg="Invalid Arguments")
