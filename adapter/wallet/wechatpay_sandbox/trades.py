"""The sandbox's orders and refunds: JSAPI order, query, close, refund and refund query, and
the payer confirming, each as the APIv3 documents have it.

:class:`OrderDesk` is mixed into :class:`adapter.wallet.wechatpay_sandbox.state.WechatSandboxState`,
which holds the data, the lock, the clock and the notifier; everything here runs under that lock.
Amounts are integer fen, as v3 carries them.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from adapter.wallet.wechatpay_sandbox.notifier import WechatNotifier
from adapter.wallet.wechatpay_sandbox.protocol import (
    CLOSED,
    CURRENCY,
    NOTPAY,
    REFUND,
    REFUND_PROCESSING,
    REFUND_SUCCESS,
    SUCCESS,
    TRADE_STATE_DESC,
    ApiError,
    invalid_request,
    param_error,
    parse_rfc3339,
    rfc3339,
)
from adapter.wallet.wechatpay_sandbox.users import WechatUser

logger = logging.getLogger(__name__)

PREPAY_TTL = dt.timedelta(hours=2)  # a prepay_id is valid for two hours
MAX_TOTAL_FEN = 100_000_000_00


@dataclass
class Refund:
    """One refund (out_refund_no) of an order."""

    refund_id: str
    out_refund_no: str
    refund_fen: int
    reason: str
    notify_url: str
    created_at: dt.datetime
    status: str = REFUND_PROCESSING
    success_at: dt.datetime | None = None


@dataclass
class Order:
    """A JSAPI order as the platform holds it."""

    out_trade_no: str
    appid: str
    mchid: str
    description: str
    total_fen: int
    openid: str
    notify_url: str
    attach: str
    created_at: dt.datetime
    expire_at: dt.datetime | None
    prepay_id: str
    prepay_at: dt.datetime
    transaction_id: str = ""
    state: str = NOTPAY
    paid_at: dt.datetime | None = None
    refunds: dict[str, Refund] = field(default_factory=dict)

    @property
    def refunded_fen(self) -> int:
        """Total of the refunds asked for so far (processing or done)."""
        return sum(r.refund_fen for r in self.refunds.values())

    def transaction(self) -> dict[str, Any]:
        """The order as 查询订单 answers it (and the payment callback's resource holds)."""
        answer: dict[str, Any] = {
            "appid": self.appid, "mchid": self.mchid, "out_trade_no": self.out_trade_no,
            "trade_state": self.state, "trade_state_desc": TRADE_STATE_DESC[self.state],
            "attach": self.attach,
            "amount": {"total": self.total_fen, "currency": CURRENCY,
                       "payer_currency": CURRENCY},
            "payer": {}, "promotion_detail": [],
        }
        if self.paid_at is not None:
            answer.update(transaction_id=self.transaction_id, trade_type="JSAPI",
                          bank_type="OTHERS", success_time=rfc3339(self.paid_at),
                          payer={"openid": self.openid})
            answer["amount"]["payer_total"] = self.total_fen
        return answer

    def refund_json(self, refund: Refund) -> dict[str, Any]:
        """A refund as 申请退款 and 查询单笔退款 answer it."""
        return {
            "refund_id": refund.refund_id, "out_refund_no": refund.out_refund_no,
            "transaction_id": self.transaction_id, "out_trade_no": self.out_trade_no,
            "channel": "ORIGINAL", "user_received_account": "支付用户零钱",
            "success_time": rfc3339(refund.success_at), "create_time": rfc3339(refund.created_at),
            "status": refund.status, "funds_account": "AVAILABLE",
            "amount": {"total": self.total_fen, "refund": refund.refund_fen,
                       "payer_total": self.total_fen, "payer_refund": refund.refund_fen,
                       "settlement_total": self.total_fen,
                       "settlement_refund": refund.refund_fen, "discount_refund": 0,
                       "currency": CURRENCY, "refund_fee": 0},
            "promotion_detail": [],
        }

    def refund_resource(self, refund: Refund) -> dict[str, Any]:
        """The refund callback's decrypted resource."""
        return {
            "mchid": self.mchid, "out_trade_no": self.out_trade_no,
            "transaction_id": self.transaction_id, "out_refund_no": refund.out_refund_no,
            "refund_id": refund.refund_id, "refund_status": refund.status,
            "success_time": rfc3339(refund.success_at),
            "user_received_account": "支付用户零钱",
            "amount": {"total": self.total_fen, "refund": refund.refund_fen,
                       "payer_total": self.total_fen, "payer_refund": refund.refund_fen},
        }


def _text(body: dict[str, Any], name: str, longest: int, required: bool = True) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or (required and not value) or len(value) > longest:
        raise param_error(f"{name}参数错误" if value else f"输入源“/body/{name}”映射到字段“{name}”"
                          "必填性规则校验失败，此字段为必填项")
    return value


def _fen(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOTAL_FEN:
        raise param_error(f"{name} 必须为正整数（单位：分）")
    return value


class OrderDesk:
    """The order and refund APIs over the state's orders (a mixin of WechatSandboxState)."""

    lock: threading.RLock
    appid: str
    mchid: str
    users: dict[str, WechatUser]
    orders: dict[str, Order]  # by out_trade_no
    prepays: dict[str, str]  # prepay_id -> out_trade_no
    transactions: dict[str, str]  # transaction_id -> out_trade_no
    refund_index: dict[str, str]  # out_refund_no -> out_trade_no
    notifier: WechatNotifier
    lost_notifications: bool
    notify_delay_seconds: float
    refund_seconds: float
    _seq: Iterator[int]

    def now(self) -> dt.datetime:  # provided by the state's clock
        raise NotImplementedError

    def create_jsapi(self, body: dict[str, Any]) -> dict[str, Any]:
        """JSAPI下单: the prepay_id; the same out_trade_no with the same order gives it again."""
        appid, mchid = _text(body, "appid", 32), _text(body, "mchid", 32)
        if appid != self.appid or mchid != self.mchid:
            raise ApiError(400, "APPID_MCHID_NOT_MATCH", "AppID和mch_id不匹配")
        out_trade_no = _text(body, "out_trade_no", 32)
        if len(out_trade_no) < 6:
            raise param_error("out_trade_no 长度为6-32个字符")
        description = _text(body, "description", 127)
        notify_url = _text(body, "notify_url", 256)
        attach = _text(body, "attach", 128, required=False)
        amount, payer = body.get("amount"), body.get("payer")
        if not isinstance(amount, dict) or not isinstance(payer, dict):
            raise param_error("amount 和 payer 为必填项")
        total = _fen(amount.get("total"), "amount.total")
        if amount.get("currency", CURRENCY) != CURRENCY:
            raise param_error("amount.currency 仅支持 CNY")
        openid = _text(payer, "openid", 128)
        expire_at = None
        if body.get("time_expire"):
            try:
                expire_at = parse_rfc3339(str(body["time_expire"]))
            except ValueError:
                raise param_error("time_expire 格式为 yyyy-MM-DDTHH:mm:ss+TIMEZONE") from None
        with self.lock:
            if openid not in self.users:
                raise param_error("openid 与 appid 不匹配")  # OPENID_MISMATCH in the docs' words
            now = self.now()
            order = self.orders.get(out_trade_no)
            if order is not None:
                return self._create_again(order, description, total, openid, now)
            if expire_at is not None and expire_at <= now:
                raise param_error("time_expire 不能早于当前时间")
            order = Order(out_trade_no, appid, mchid, description, total, openid, notify_url,
                          attach, now, expire_at, self._prepay_id(now), now)
            self.orders[out_trade_no] = order
            self.prepays[order.prepay_id] = out_trade_no
        logger.info("wechatpay sandbox: order %s created", out_trade_no)
        return {"prepay_id": order.prepay_id}

    def _prepay_id(self, now: dt.datetime) -> str:
        return f"wx{now:%d%H%M%S}{secrets.token_hex(12)}{next(self._seq) % 10000:04d}"

    def _create_again(self, order: Order, description: str, total: int, openid: str,
                      now: dt.datetime) -> dict[str, Any]:
        if (order.description, order.total_fen, order.openid) != (description, total, openid):
            raise ApiError(403, "OUT_TRADE_NO_USED", "商户订单号重复")
        if order.paid_at is not None:
            raise ApiError(400, "ORDERPAID", "该订单已支付")
        if order.state == CLOSED:
            raise ApiError(400, "ORDER_CLOSED", "订单已关闭")
        if now - order.prepay_at >= PREPAY_TTL:
            # The old prepay_id has expired: the same order gets a new one.
            del self.prepays[order.prepay_id]
            order.prepay_id, order.prepay_at = self._prepay_id(now), now
            self.prepays[order.prepay_id] = order.out_trade_no
        return {"prepay_id": order.prepay_id}

    def find_order(self, *, out_trade_no: str = "", transaction_id: str = "",
                   prepay_id: str = "") -> Order:
        """An order by any of its numbers; 404 ORDER_NOT_EXIST when unknown."""
        with self.lock:
            key = out_trade_no or self.transactions.get(transaction_id, "") or self.prepays.get(
                prepay_id, "")
            order = self.orders.get(key)
            if order is None:
                raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
            return order

    def query_order(self, **number: str) -> dict[str, Any]:
        """查询订单 (by out_trade_no or transaction_id)."""
        with self.lock:
            return self.find_order(**number).transaction()

    def close_order(self, out_trade_no: str) -> None:
        """关闭订单: an unpaid order closes; closing again is harmless."""
        with self.lock:
            order = self.find_order(out_trade_no=out_trade_no)
            if order.paid_at is not None:
                raise ApiError(400, "ORDERPAID", "订单已支付")
            order.state = CLOSED
        logger.info("wechatpay sandbox: order %s closed", out_trade_no)

    def pay(self, *, out_trade_no: str = "", prepay_id: str = "") -> Order:
        """The payer confirms in WeChat (the cashier or the helper); paying twice is a no-op."""
        with self.lock:
            order = self.find_order(out_trade_no=out_trade_no, prepay_id=prepay_id)
            if order.paid_at is not None:
                return order
            now = self.now()
            if order.state == CLOSED:
                raise ApiError(400, "ORDER_CLOSED", "订单已关闭")
            if order.expire_at is not None and now >= order.expire_at:
                raise ApiError(400, "ORDER_CLOSED", "订单已过期")
            if prepay_id and now - order.prepay_at >= PREPAY_TTL:
                raise invalid_request("prepay_id 已过期")
            order.state, order.paid_at = SUCCESS, now
            order.transaction_id = (f"4200{next(self._seq) % 10000:04d}{now:%Y%m%d}"
                                    f"{secrets.randbelow(10**12):012d}")
            self.transactions[order.transaction_id] = order.out_trade_no
            logger.info("wechatpay sandbox: order %s paid", order.out_trade_no)
            if not self.lost_notifications:
                self.notifier.notify(order.notify_url, "TRANSACTION.SUCCESS", "transaction",
                                     "支付成功", order.transaction(),
                                     {"out_trade_no": order.out_trade_no},
                                     self.notify_delay_seconds)
            return order

    # -- refunds --------------------------------------------------------------------------

    def refund(self, body: dict[str, Any]) -> dict[str, Any]:
        """申请退款: idempotent on out_refund_no; never beyond the paid amount."""
        out_refund_no = _text(body, "out_refund_no", 64)
        amount = body.get("amount")
        if not isinstance(amount, dict):
            raise param_error("amount 为必填项")
        refund_fen, total = _fen(amount.get("refund"), "amount.refund"), _fen(
            amount.get("total"), "amount.total")
        notify_url = _text(body, "notify_url", 256, required=False)
        with self.lock:
            order = self._refund_order(body)
            if total != order.total_fen:
                raise invalid_request("订单金额与原订单金额不一致")
            previous = order.refunds.get(out_refund_no)
            if previous is not None:
                if previous.refund_fen != refund_fen:
                    raise invalid_request("订单金额或退款金额与之前请求不一致，请核实后再试")
                return order.refund_json(previous)
            if out_refund_no in self.refund_index:
                raise invalid_request("商户退款单号已被其他订单使用")
            if order.paid_at is None:
                raise invalid_request("订单未支付，无法退款")
            if order.refunded_fen + refund_fen > order.total_fen:
                raise invalid_request("申请退款金额超过订单可退金额")
            now = self.now()
            refund = Refund(f"503{next(self._seq) % 100000:05d}{now:%Y%m%d}"
                            f"{secrets.randbelow(10**13):013d}", out_refund_no, refund_fen,
                            str(body.get("reason") or ""), notify_url, now)
            order.refunds[out_refund_no] = refund
            self.refund_index[out_refund_no] = order.out_trade_no
            order.state = REFUND
            if self.refund_seconds <= 0:
                self._finish_refund(order, refund)
            else:
                timer = threading.Timer(self.refund_seconds, self.finish_refund,
                                        (order.out_trade_no, out_refund_no))
                timer.daemon = True
                timer.start()
            logger.info("wechatpay sandbox: refund %s of order %s", out_refund_no,
                        order.out_trade_no)
            return order.refund_json(refund)

    def _refund_order(self, body: dict[str, Any]) -> Order:
        transaction_id = str(body.get("transaction_id") or "")
        out_trade_no = str(body.get("out_trade_no") or "")
        if not transaction_id and not out_trade_no:
            raise param_error("transaction_id 和 out_trade_no 必须二选一")
        try:
            return self.find_order(out_trade_no=out_trade_no, transaction_id=transaction_id)
        except ApiError:
            raise ApiError(404, "RESOURCE_NOT_EXISTS", "订单不存在") from None

    def finish_refund(self, out_trade_no: str, out_refund_no: str) -> None:
        """The money is back with the payer: SUCCESS, and the refund callback."""
        with self.lock:
            order = self.orders[out_trade_no]
            self._finish_refund(order, order.refunds[out_refund_no])

    def _finish_refund(self, order: Order, refund: Refund) -> None:
        if refund.status == REFUND_SUCCESS:
            return
        refund.status, refund.success_at = REFUND_SUCCESS, self.now()
        # The refund callback goes to the notify_url the refund request named (the docs: none
        # given, none sent, for merchants without one configured on the platform).
        if refund.notify_url and not self.lost_notifications:
            self.notifier.notify(refund.notify_url, "REFUND.SUCCESS", "refund", "退款成功",
                                 order.refund_resource(refund),
                                 {"out_trade_no": order.out_trade_no,
                                  "out_refund_no": refund.out_refund_no},
                                 self.notify_delay_seconds)

    def query_refund(self, out_refund_no: str) -> dict[str, Any]:
        """查询单笔退款（通过商户退款单号）."""
        with self.lock:
            out_trade_no = self.refund_index.get(out_refund_no)
            if out_trade_no is None:
                raise ApiError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
            order = self.orders[out_trade_no]
            return order.refund_json(order.refunds[out_refund_no])

