"""The sandbox's trades and refunds: alipay.trade.create/query/close/refund, the refund query, and
the buyer paying (cashier page or helper), each as Alipay's published behaviour has it.

:class:`TradeDesk` is mixed into :class:`adapter.wallet.sandbox.state.SandboxState`, which holds
the data, the lock and the clock; everything here runs under that lock.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from adapter.wallet.sandbox.money import parse_yuan, yuan
from adapter.wallet.sandbox.notifier import Notifier
from adapter.wallet.sandbox.protocol import (
    BEIJING,
    TIME_FORMAT,
    TRADE_CLOSED,
    TRADE_FINISHED,
    TRADE_SUCCESS,
    WAIT_BUYER_PAY,
    GatewayError,
    fmt,
    invalid_parameter,
)
from adapter.wallet.sandbox.users import SandboxUser

logger = logging.getLogger(__name__)


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
            "gmt_create": fmt(self.created_at),
            "gmt_payment": fmt(self.paid_at),
            "time_expire": fmt(self.expire_at),
            "refunds": [
                {"out_request_no": r.out_request_no, "refund_amount": yuan(r.refund_fen),
                 "gmt_refund": fmt(r.at)}
                for r in self.refunds.values()
            ],
        }


class TradeDesk:
    """The trade and refund APIs over the state's trades (a mixin of SandboxState)."""

    # Held by SandboxState; now() is its clock.
    lock: threading.RLock
    users: dict[str, SandboxUser]
    trades: dict[str, Trade]  # by out_trade_no
    trade_nos: dict[str, str]  # trade_no -> out_trade_no
    seller_id: str
    refund_notifications: bool
    lost_notifications: bool
    notifier: Notifier
    _trade_seq: Iterator[int]

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
                    send_pay_date=fmt(trade.paid_at),
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
            if trade.notify_url and not self.lost_notifications:
                self.notifier.enqueue(trade.notify_url, self._trade_fields(trade))
            return trade

    # -- faults for reconciliation --------------------------------------------------------

    def foreign_payment(self, out_trade_no: str, total_fen: int, buyer_id: str) -> Trade:
        """A trade paid on the merchant's account that the adapter never created (another of
        the hospital's systems on the same account, or a mistake): it is on the bill only."""
        if not out_trade_no or len(out_trade_no) > 64 or total_fen <= 0:
            raise invalid_parameter("out_trade_no / total_amount")
        with self.lock:
            if out_trade_no in self.trades:
                raise GatewayError("ACQ.CONTEXT_INCONSISTENT", "交易已存在")
            now = self.now()
            trade_no = f"{now:%Y%m%d}22001{next(self._trade_seq):015d}"
            trade = Trade(
                trade_no=trade_no, out_trade_no=out_trade_no, total_fen=total_fen,
                subject="其他收款", buyer_id=buyer_id, seller_id=self.seller_id, notify_url="",
                product_code="FACE_TO_FACE_PAYMENT", created_at=now, expire_at=None,
                status=TRADE_SUCCESS, paid_at=now)
            self.trades[out_trade_no] = trade
            self.trade_nos[trade_no] = out_trade_no
        logger.info("wallet sandbox: foreign trade %s paid", trade_no)
        return trade

    def console_refund(self, out_trade_no: str, refund_fen: int, out_request_no: str) -> Trade:
        """A refund made in the merchant's console, not asked for by the adapter."""
        self.refund({"out_trade_no": out_trade_no, "refund_amount": yuan(refund_fen),
                     "out_request_no": out_request_no, "refund_reason": "商家后台退款"})
        return self.find_trade(out_trade_no=out_trade_no)

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
            "gmt_create": fmt(trade.created_at),
            "gmt_payment": fmt(trade.paid_at),
            "fund_bill_list": f'[{{"amount":"{total}","fundChannel":"ALIPAYACCOUNT"}}]',
        }
        if refund is not None:
            fields.update(
                out_biz_no=refund.out_request_no,
                refund_fee=yuan(trade.refunded_fen),
                gmt_refund=refund.at.strftime(TIME_FORMAT) + ".000",
            )
            if trade.closed_at:
                fields["gmt_close"] = fmt(trade.closed_at)
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
            "gmt_refund_pay": fmt(refund.at),
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
                "gmt_refund_pay": fmt(refund.at),
            }
