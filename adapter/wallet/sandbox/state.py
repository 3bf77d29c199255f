"""The sandbox's memory: users, auth codes, tokens, trades, refunds, inboxes, bills, knobs.

Everything is held under one lock. The business rules follow Alipay's published behaviour for
each API; where the sandbox chose something the docs leave open, the spot says so.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from adapter.wallet.sandbox import keys
from adapter.wallet.sandbox.money import parse_yuan, yuan
from adapter.wallet.sandbox.notifier import Notifier
from adapter.wallet.sandbox.users import (
    DEFAULT_TEST_USER_PREFIX,
    SandboxUser,
    make_test_user,
    seed_users,
)

logger = logging.getLogger(__name__)

# China has no daylight saving time: a fixed +08:00 is exact for Beijing time.
BEIJING = dt.timezone(dt.timedelta(hours=8), "CST")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
TRADE_CLOSED = "TRADE_CLOSED"
TRADE_SUCCESS = "TRADE_SUCCESS"
TRADE_FINISHED = "TRADE_FINISHED"

AUTH_CODE_TTL_SECONDS = 300.0  # Alipay: an auth_code is valid for 5 minutes, once
ACCESS_TOKEN_TTL_SECONDS = 1_296_000  # what Alipay reports as expires_in (15 days)
BILL_URL_TTL_SECONDS = 30.0  # Alipay: the bill_download_url is valid for 30 seconds


class GatewayError(Exception):
    """An Alipay error answer: code/msg plus sub_code/sub_msg (and extra response fields)."""

    def __init__(
        self, sub_code: str, sub_msg: str, *, code: str = "40004", msg: str = "Business Failed",
        signed: bool = True, extra: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code} {sub_code}")
        self.code = code
        self.msg = msg
        self.sub_code = sub_code
        self.sub_msg = sub_msg
        self.signed = signed
        self.extra = extra or {}

    def body(self) -> dict[str, str]:
        """The error's inner response object."""
        return {"code": self.code, "msg": self.msg, "sub_code": self.sub_code,
                "sub_msg": self.sub_msg, **self.extra}


def invalid_parameter(text: str) -> GatewayError:
    """ACQ.INVALID_PARAMETER, the trade APIs' answer to a malformed biz_content field."""
    return GatewayError("ACQ.INVALID_PARAMETER", f"参数无效: {text}")


@dataclass
class Refund:
    """One refund request (out_request_no) on a trade."""

    out_request_no: str
    refund_fen: int
    reason: str
    at: dt.datetime


@dataclass
class Trade:
    """A trade as the platform holds it."""

    trade_no: str
    out_trade_no: str
    total_fen: int
    subject: str
    buyer_id: str
    seller_id: str
    notify_url: str
    product_code: str
    created_at: dt.datetime
    expire_at: dt.datetime | None
    body: str = ""
    status: str = WAIT_BUYER_PAY
    paid_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    refunds: dict[str, Refund] = field(default_factory=dict)

    @property
    def refunded_fen(self) -> int:
        """Total refunded so far."""
        return sum(r.refund_fen for r in self.refunds.values())

    @property
    def paid(self) -> bool:
        """The buyer paid (refunds later do not undo that)."""
        return self.paid_at is not None

    def as_json(self) -> dict[str, Any]:
        """The sandbox helper endpoints' view of the trade."""
        return {
            "trade_no": self.trade_no,
            "out_trade_no": self.out_trade_no,
            "trade_status": self.status,
            "total_amount": yuan(self.total_fen),
            "refunded_amount": yuan(self.refunded_fen),
            "subject": self.subject,
            "buyer_id": self.buyer_id,
            "seller_id": self.seller_id,
            "notify_url": self.notify_url,
            "gmt_create": _fmt(self.created_at),
            "gmt_payment": _fmt(self.paid_at),
            "time_expire": _fmt(self.expire_at),
            "refunds": [
                {"out_request_no": r.out_request_no, "refund_amount": yuan(r.refund_fen),
                 "gmt_refund": _fmt(r.at)}
                for r in self.refunds.values()
            ],
        }


def _fmt(value: dt.datetime | None) -> str:
    return value.astimezone(BEIJING).strftime(TIME_FORMAT) if value else ""


class SandboxState:
    """All of the sandbox's data and fault knobs, shared by the Flask app and the notifier.

    Knobs are plain attributes a test may change while the sandbox runs (or POST
    /_sandbox/faults): ``latency_ms``, ``timeout_rate``, ``timeout_seconds``,
    ``system_error_rate``, ``system_error_applies``, ``duplicate_notifications``,
    ``out_of_order_notifications``, ``refund_notifications``, ``notify_time_scale``.
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

    # -- knobs and time ----------------------------------------------------------------

    def set_knobs(self, values: dict[str, Any]) -> dict[str, Any]:
        """Set fault knobs from JSON; ValueError on an unknown knob or a wrong type."""
        parsed: dict[str, Any] = {}
        for name, value in values.items():
            kind = self.KNOBS.get(name)
            if kind is None:
                raise ValueError(f"unknown knob {name}")
            if kind is bool:
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be true or false")
                parsed[name] = value
            else:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{name} must be a number")
                if value < 0 or (name.endswith("_rate") and value > 1):
                    raise ValueError(f"{name} out of range")
                parsed[name] = kind(value)
        with self.lock:
            for name, value in parsed.items():
                setattr(self, name, value)
        logger.info("wallet sandbox: knobs set: %s", ", ".join(sorted(parsed)))
        return self.knobs()

    def knobs(self) -> dict[str, Any]:
        """The current fault knobs."""
        return {name: getattr(self, name) for name in self.KNOBS}

    def scaled(self, seconds: float) -> float:
        """A documented platform delay, compressed by ``notify_time_scale``."""
        return seconds * self.notify_time_scale

    def now(self) -> dt.datetime:
        """Beijing time, to the second, as Alipay reports it."""
        return dt.datetime.now(BEIJING).replace(microsecond=0)

    def roll(self, rate: float) -> bool:
        """A seeded coin flip that lands True with probability ``rate``."""
        with self.lock:
            return rate > 0 and self.rng.random() < rate

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
            "auth_start": _fmt(self.now()),
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

    # -- trades ---------------------------------------------------------------------------

    def find_trade(self, *, out_trade_no: str = "", trade_no: str = "") -> Trade:
        """A trade by either number (expired ones closed first); GatewayError when unknown."""
        with self.lock:
            return self._find({"out_trade_no": out_trade_no, "trade_no": trade_no})

    def _find(self, biz: dict[str, Any]) -> Trade:
        out_trade_no = str(biz.get("out_trade_no") or "")
        trade_no = str(biz.get("trade_no") or "")
        if not out_trade_no and not trade_no:
            raise invalid_parameter("out_trade_no 和 trade_no 不能同时为空")
        # Alipay: when both are given, trade_no wins.
        if trade_no:
            out_trade_no = self.trade_nos.get(trade_no, "")
        trade = self.trades.get(out_trade_no)
        if trade is None:
            raise GatewayError("ACQ.TRADE_NOT_EXIST", "交易不存在")
        self._expire(trade)
        return trade

    def _expire(self, trade: Trade) -> None:
        if (trade.status == WAIT_BUYER_PAY and trade.expire_at is not None
                and self.now() >= trade.expire_at):
            trade.status = TRADE_CLOSED
            trade.closed_at = trade.expire_at
            logger.info("wallet sandbox: trade %s expired unpaid", trade.trade_no)

    def create_trade(self, biz: dict[str, Any], notify_url: str = "") -> dict[str, Any]:
        """alipay.trade.create: idempotent on out_trade_no with the same amount."""
        out_trade_no = str(biz.get("out_trade_no") or "")
        if not out_trade_no or len(out_trade_no) > 64:
            raise invalid_parameter("out_trade_no")
        subject = str(biz.get("subject") or "")
        if not subject or len(subject) > 256:
            raise invalid_parameter("subject")
        try:
            total_fen = parse_yuan(biz.get("total_amount"))
        except ValueError as exc:
            raise invalid_parameter(f"total_amount ({exc})") from None
        buyer_id = str(biz.get("buyer_id") or biz.get("buyer_open_id") or "")
        product_code = str(biz.get("product_code") or "JSAPI_PAY")
        if product_code == "JSAPI_PAY" and not buyer_id:
            raise invalid_parameter("JSAPI_PAY 需要 buyer_id")
        if buyer_id and buyer_id not in self.users:
            raise GatewayError("ACQ.BUYER_NOT_EXIST", "买家不存在")
        expire_at = None
        if biz.get("time_expire"):
            try:
                expire_at = dt.datetime.strptime(str(biz["time_expire"]), TIME_FORMAT)
            except ValueError:
                raise invalid_parameter("time_expire 格式为 yyyy-MM-dd HH:mm:ss") from None
            expire_at = expire_at.replace(tzinfo=BEIJING)
        seller_id = str(biz.get("seller_id") or self.seller_id)
        with self.lock:
            existing = self.trades.get(out_trade_no)
            if existing is not None:
                return self._create_again(existing, total_fen, buyer_id)
            now = self.now()
            if expire_at is not None and expire_at <= now:
                raise invalid_parameter("time_expire 已过")
            trade_no = f"{now:%Y%m%d}22001{next(self._trade_seq):015d}"
            trade = Trade(
                trade_no=trade_no, out_trade_no=out_trade_no, total_fen=total_fen,
                subject=subject, buyer_id=buyer_id, seller_id=seller_id, notify_url=notify_url,
                product_code=product_code, created_at=now, expire_at=expire_at,
                body=str(biz.get("body") or ""),
            )
            self.trades[out_trade_no] = trade
            self.trade_nos[trade_no] = out_trade_no
        logger.info("wallet sandbox: trade %s created for %s", trade_no, out_trade_no)
        return {"out_trade_no": out_trade_no, "trade_no": trade_no}

    def _create_again(self, trade: Trade, total_fen: int, buyer_id: str) -> dict[str, Any]:
        if trade.total_fen != total_fen or (buyer_id and buyer_id != trade.buyer_id):
            raise GatewayError("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
        self._expire(trade)
        if trade.paid:
            raise GatewayError("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
        if trade.status == TRADE_CLOSED:
            raise GatewayError("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
        return {"out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no}

    def query_trade(self, biz: dict[str, Any]) -> dict[str, Any]:
        """alipay.trade.query."""
        with self.lock:
            trade = self._find(biz)
            user = self.users.get(trade.buyer_id)
            answer: dict[str, Any] = {
                "trade_no": trade.trade_no,
                "out_trade_no": trade.out_trade_no,
                "buyer_logon_id": user.logon_id if user else "",
                "trade_status": trade.status,
                "total_amount": yuan(trade.total_fen),
                "buyer_user_id": trade.buyer_id,
            }
            if trade.paid:
                answer.update(
                    buyer_pay_amount=yuan(trade.total_fen),
                    receipt_amount=yuan(trade.total_fen),
                    invoice_amount=yuan(trade.total_fen),
                    point_amount="0.00",
                    send_pay_date=_fmt(trade.paid_at),
                )
            return answer

    def close_trade(self, biz: dict[str, Any]) -> dict[str, Any]:
        """alipay.trade.close: only an unpaid trade closes; closing twice is harmless."""
        with self.lock:
            trade = self._find(biz)
            if trade.paid:
                raise GatewayError("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            if trade.status == WAIT_BUYER_PAY:
                trade.status = TRADE_CLOSED
                trade.closed_at = self.now()
                logger.info("wallet sandbox: trade %s closed", trade.trade_no)
            return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}

    def pay(self, out_trade_no: str = "", trade_no: str = "") -> Trade:
        """The buyer pays (cashier page or helper endpoint); paying twice is a no-op."""
        with self.lock:
            trade = self._find({"out_trade_no": out_trade_no, "trade_no": trade_no})
            if trade.paid:
                return trade
            if trade.status != WAIT_BUYER_PAY:
                raise GatewayError("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            trade.status = TRADE_SUCCESS
            trade.paid_at = self.now()
            logger.info("wallet sandbox: trade %s paid", trade.trade_no)
            if trade.notify_url:
                self.notifier.enqueue(trade.notify_url, self._trade_fields(trade))
            return trade

    def finish(self, out_trade_no: str) -> Trade:
        """The refund period ended: TRADE_SUCCESS becomes TRADE_FINISHED (notified)."""
        with self.lock:
            trade = self._find({"out_trade_no": out_trade_no})
            if trade.status != TRADE_SUCCESS:
                raise GatewayError("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            trade.status = TRADE_FINISHED
            if trade.notify_url:
                self.notifier.enqueue(trade.notify_url, self._trade_fields(trade))
            return trade

    def _trade_fields(self, trade: Trade, refund: Refund | None = None) -> dict[str, str]:
        """The business fields of a trade_status_sync notification (the notifier adds the
        envelope: notify_time, notify_id, app_id, charset, version, sign_type, sign)."""
        user = self.users.get(trade.buyer_id)
        total = yuan(trade.total_fen)
        fields = {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_id": trade.buyer_id,
            "buyer_logon_id": user.logon_id if user else "",
            "seller_id": trade.seller_id,
            "trade_status": trade.status,
            "total_amount": total,
            "receipt_amount": total,
            "invoice_amount": total,
            "buyer_pay_amount": total,
            "point_amount": "0.00",
            "subject": trade.subject,
            "body": trade.body,
            "gmt_create": _fmt(trade.created_at),
            "gmt_payment": _fmt(trade.paid_at),
            "fund_bill_list": f'[{{"amount":"{total}","fundChannel":"ALIPAYACCOUNT"}}]',
        }
        if refund is not None:
            fields.update(
                out_biz_no=refund.out_request_no,
                refund_fee=yuan(trade.refunded_fen),
                gmt_refund=refund.at.strftime(TIME_FORMAT) + ".000",
            )
            if trade.closed_at:
                fields["gmt_close"] = _fmt(trade.closed_at)
        return fields

    # -- refunds --------------------------------------------------------------------------

    def refund(self, biz: dict[str, Any]) -> dict[str, Any]:
        """alipay.trade.refund: idempotent on out_request_no; never beyond the paid amount."""
        try:
            refund_fen = parse_yuan(biz.get("refund_amount"))
        except ValueError as exc:
            raise invalid_parameter(f"refund_amount ({exc})") from None
        with self.lock:
            trade = self._find(biz)
            # Alipay: without out_request_no the request is the full refund keyed by
            # out_trade_no.
            out_request_no = str(biz.get("out_request_no") or trade.out_trade_no)
            if not trade.paid:
                raise GatewayError("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            if trade.status == TRADE_FINISHED:
                raise GatewayError("ACQ.TRADE_HAS_FINISHED", "交易已完结")
            previous = trade.refunds.get(out_request_no)
            if previous is not None:
                if previous.refund_fen != refund_fen:
                    # The docs leave this open; refusing makes an adapter bug visible.
                    raise GatewayError("ACQ.CONTEXT_INCONSISTENT", "退款请求号重复但金额不同")
                return self._refund_answer(trade, previous, fund_change="N")
            if trade.refunded_fen + refund_fen > trade.total_fen:
                raise GatewayError("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限",
                                   extra={"out_trade_no": trade.out_trade_no,
                                          "refund_fee": yuan(trade.refunded_fen)})
            refund = Refund(out_request_no, refund_fen, str(biz.get("refund_reason") or ""),
                            self.now())
            trade.refunds[out_request_no] = refund
            if trade.refunded_fen == trade.total_fen:
                trade.status = TRADE_CLOSED
                trade.closed_at = refund.at
            logger.info("wallet sandbox: refund %s on trade %s", out_request_no, trade.trade_no)
            if trade.notify_url and self.refund_notifications:
                self.notifier.enqueue(trade.notify_url, self._trade_fields(trade, refund))
            return self._refund_answer(trade, refund, fund_change="Y")

    def _refund_answer(self, trade: Trade, refund: Refund, fund_change: str) -> dict[str, Any]:
        user = self.users.get(trade.buyer_id)
        return {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": user.logon_id if user else "",
            "fund_change": fund_change,
            # Alipay: refund_fee is the trade's total refunded so far, not this request's.
            "refund_fee": yuan(trade.refunded_fen),
            "send_back_fee": yuan(refund.refund_fen),
            "gmt_refund_pay": _fmt(refund.at),
            "buyer_user_id": trade.buyer_id,
        }

    def query_refund(self, biz: dict[str, Any]) -> dict[str, Any]:
        """alipay.trade.fastpay.refund.query: a refund not found is an empty 10000 answer."""
        with self.lock:
            trade = self._find(biz)
            out_request_no = str(biz.get("out_request_no") or "")
            if not out_request_no:
                raise invalid_parameter("out_request_no")
            refund = trade.refunds.get(out_request_no)
            if refund is None:
                # Alipay docs: code 10000 only says the query ran; no refund fields means
                # "not refunded" (retry the refund with the same out_request_no).
                return {}
            return {
                "trade_no": trade.trade_no,
                "out_trade_no": trade.out_trade_no,
                "out_request_no": out_request_no,
                "total_amount": yuan(trade.total_fen),
                "refund_amount": yuan(refund.refund_fen),
                "refund_status": "REFUND_SUCCESS",
                "refund_reason": refund.reason,
                "gmt_refund_pay": _fmt(refund.at),
            }

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
                {"at": _fmt(self.now()), "template_id": str(template.get("template_id", "")),
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
