"""The WalletGateway port over WeChat Pay v3: what the use cases need on top of the thin client.

It settles unknown outcomes with the same out_trade_no / out_refund_no, so nothing is charged or
refunded twice. Where WeChat's model differs from the port's, it is said at the method:
``create_trade`` gives the prepay_id to pay with and no trade_no (WeChat gives its
transaction_id only once paid), and WeChat gives no real-name identity, so every user is
uncertified.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

from adapter.ports import (
    CreatedTrade,
    NotificationAnswer,
    PaymentNotice,
    RefundResult,
    TradeState,
    WalletBill,
    WalletRefused,
    WalletTrade,
    WalletUnavailable,
    WalletUnreachable,
    WalletUser,
)
from adapter.wallet.wechatpay import bill, consts, notify
from adapter.wallet.wechatpay.client import WechatPayClient, WechatRefund, WechatTrade
from adapter.wallet.wechatpay.config import WechatPayConfig
from adapter.wallet.wechatpay.official import OfficialAccount
from adapter.wallet.wechatpay.signing import load_apiv3_key, load_private_key, load_public_key

logger = logging.getLogger(__name__)


def wallet_trade(answer: WechatTrade) -> WalletTrade:
    """WeChat's trade in the adapter's words; a trade_state WeChat does not document is
    WalletUnavailable, since nobody can say whether the money was taken."""
    state = consts.TRADE_STATES.get(answer.trade_state)
    if state is None:
        logger.warning("trade %s: unknown trade_state", answer.out_trade_no)
        raise WalletUnavailable(f"trade {answer.out_trade_no}: unknown trade_state")
    return WalletTrade(answer.out_trade_no, state, answer.transaction_id, answer.total_fen,
                       answer.openid)


def _refund_result(refund: WechatRefund, out_trade_no: str) -> RefundResult:
    if refund.status in (consts.REFUND_CLOSED, ""):
        return RefundResult(out_trade_no, refund.out_refund_no, 0, False)
    return RefundResult(out_trade_no, refund.out_refund_no, refund.refund_fen,
                        refund.status in consts.REFUND_ON_ITS_WAY)


def _answer(status: int, message: str) -> NotificationAnswer:
    return NotificationAnswer(f'{{"code":"FAIL","message":"{message}"}}', status,
                              "application/json")


# outcome of a notification -> WeChat's answer: 200/204 stops its retries; anything else with
# {"code":"FAIL","message":...} is retried on its published schedule.
_ANSWERS = {
    "success": NotificationAnswer("", 204, "application/json"),
    "refused": _answer(400, "refused"),
    "error": _answer(500, "error"),
}


class WechatPayWalletGateway:
    """adapter.ports.WalletGateway over WeChat Pay v3, settling unknown outcomes by asking again."""

    platform = consts.PLATFORM
    browser_marker = consts.BROWSER_MARKER

    def __init__(
        self,
        client: WechatPayClient,
        official: OfficialAccount,
        *,
        sign_in_page: str = consts.OAUTH_URL,
        cashier_page: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.official = official
        self.sign_in_page = sign_in_page
        self.cashier_page = cashier_page
        self.clock = clock

    @classmethod
    def from_config(cls, config: WechatPayConfig, notify_url: str) -> WechatPayWalletGateway:
        """The gateway for a configuration, reading its key files."""
        public_key = (load_public_key(config.platform_public_key_file.read_text())
                      if config.platform_public_key_file else None)
        client = WechatPayClient(
            config.api_url, config.mchid, config.appid,
            load_private_key(config.private_key_file.read_text()), config.cert_serial_no,
            load_apiv3_key(config.apiv3_key_file.read_text()),
            public_key=public_key, public_key_id=config.platform_public_key_id,
            certificates=config.platform_certificates, notify_url=notify_url)
        official = OfficialAccount(config.official_api, config.appid,
                                   config.app_secret_file.read_text().strip(),
                                   template_id=config.template_id,
                                   template_field=config.template_field)
        return cls(client, official, sign_in_page=config.sign_in_page,
                   cashier_page=config.cashier_page)

    @property
    def app_id(self) -> str:
        """Our AppID; notifications for another app are refused."""
        return self.client.appid

    @property
    def merchant_id(self) -> str:
        """Our mchid; notifications for another merchant are refused."""
        return self.client.mchid

    def display_name(self, locale: str) -> str:
        """微信支付, or WeChat Pay in English."""
        return consts.DISPLAY_NAMES["en" if locale.startswith("en") else "zh-CN"]

    # ----------------------------------------------------------------------------------------
    # Pages and identity

    def sign_in_url(self, redirect_uri: str, state: str) -> str:
        """The OAuth2 authorize page, scope snsapi_base. WeChat documents the parameters in
        this order and the #wechat_redirect fragment; it refuses the page otherwise."""
        query = urlencode({"appid": self.app_id, "redirect_uri": redirect_uri,
                           "response_type": "code", "scope": consts.OAUTH_SCOPE,
                           "state": state})
        separator = "&" if "?" in self.sign_in_page else "?"
        return f"{self.sign_in_page}{separator}{query}{consts.OAUTH_FRAGMENT}"

    def exchange_auth_code(self, auth_code: str) -> WalletUser:
        """/sns/oauth2/access_token: the openid. WeChat shares no real-name identity, so the
        user is uncertified until bound to a verified patient."""
        answer = self.official.oauth_openid(auth_code)
        return WalletUser(user_id=answer.openid, is_certified=False)

    def pay_parameters(self, out_trade_no: str, pay_reference: str,
                       return_url: str) -> dict[str, str]:
        """What WeixinJSBridge getBrandWCPayRequest (wx.chooseWCPay) takes for the prepay_id
        (``pay_reference``), paySign over appId, timeStamp, nonceStr and package; on an
        imitation of the platform also its cashier page (``?prepay_id=&return_url=``, the
        bridge's parameters beside them so it checks paySign as WeChat would), which comes
        back to return_url."""
        timestamp, nonce = str(int(self.clock())), secrets.token_hex(16)
        package = consts.PACKAGE_PREFIX + pay_reference
        parameters = {
            "appId": self.app_id,
            "timeStamp": timestamp,
            "nonceStr": nonce,
            "package": package,
            "signType": consts.PAY_SIGN_TYPE,
            "paySign": self.client.pay_sign(timestamp, nonce, package),
        }
        if self.cashier_page:
            query = {"prepay_id": pay_reference, **({"return_url": return_url}
                                                    if return_url else {}), **parameters}
            parameters["cashier_url"] = f"{self.cashier_page}?{urlencode(query)}"
        return parameters

    def push_message(self, user_id: str, text: str, url: str = "") -> None:
        """A template message of the official account to the openid."""
        self.official.send_template(user_id, text, url)

    # ----------------------------------------------------------------------------------------
    # Trades

    def create_trade(self, out_trade_no: str, total_fen: int, subject: str, buyer_id: str,
                     expire_at: dt.datetime) -> CreatedTrade:
        """A JSAPI order: its prepay_id is what pay_parameters takes; WeChat gives the
        transaction_id only once paid (the callback or the query carries it). WeChat takes
        the same out_trade_no with the same parameters again and answers a prepay_id, so an
        unknown outcome is settled by ordering once more; an order that exists with other
        parameters is refused."""
        return CreatedTrade(pay_reference=self._order(out_trade_no, total_fen, subject,
                                                      buyer_id, expire_at))

    def _order(self, out_trade_no: str, total_fen: int, subject: str, buyer_id: str,
               expire_at: dt.datetime) -> str:
        try:
            return self.client.jsapi_order(out_trade_no, total_fen, subject, buyer_id, expire_at)
        except WalletRefused as exc:
            exc.nothing_created = exc.code not in consts.TRADE_EXISTS_CODES
            raise
        except WalletUnreachable:
            raise
        except WalletUnavailable:
            logger.warning("trade %s: order outcome unknown, ordering again", out_trade_no)
        try:
            return self.client.jsapi_order(out_trade_no, total_fen, subject, buyer_id, expire_at)
        except WalletUnreachable as exc:
            raise WalletUnavailable(str(exc)) from None

    def query_trade(self, out_trade_no: str) -> WalletTrade:
        """The order query; ORDER_NOT_EXIST is state NOT_FOUND, not an error."""
        try:
            return wallet_trade(self.client.query(out_trade_no))
        except WalletRefused as exc:
            if exc.code in consts.ORDER_NOT_EXIST_CODES:
                return WalletTrade(out_trade_no, TradeState.NOT_FOUND)
            raise

    def close_trade(self, out_trade_no: str) -> WalletTrade:
        """Close the order; when it was paid meanwhile (ORDERPAID), says so instead."""
        try:
            self.client.close(out_trade_no)
            return WalletTrade(out_trade_no, TradeState.CLOSED)
        except WalletRefused as exc:
            if exc.code in consts.ORDER_NOT_EXIST_CODES:
                return WalletTrade(out_trade_no, TradeState.NOT_FOUND)
            if exc.code not in consts.CLOSE_REFUSED_BY_STATE:
                raise
            logger.info("trade %s: close refused (%s), querying", out_trade_no, exc.code)
        except WalletUnavailable:
            logger.warning("trade %s: close outcome unknown, querying", out_trade_no)
        status = self.query_trade(out_trade_no)
        if status.state is not TradeState.CREATED:
            return status
        self.client.close(out_trade_no)  # still open after a lost answer: closing is idempotent
        return WalletTrade(out_trade_no, TradeState.CLOSED)

    def refund(self, out_trade_no: str, refund_fen: int, out_request_no: str,
               reason: str) -> RefundResult:
        """A domestic refund with out_refund_no = out_request_no, the same on every retry
        (WeChat refunds one out_refund_no at most once). WeChat wants the order's total, read
        from the order first. An unknown outcome is settled by the refund query, then one
        retry; ABNORMAL (the buyer's account cannot take it) is refused for staff to handle."""
        trade = self.client.query(out_trade_no)
        if not trade.total_fen:
            raise WalletUnavailable(f"trade {out_trade_no}: no total to refund against")
        try:
            refund = self.client.refund(out_trade_no, out_request_no, refund_fen,
                                        trade.total_fen, reason)
        except WalletUnavailable:
            logger.warning("refund %s/%s: outcome unknown, querying", out_trade_no, out_request_no)
            refund = self._queried_refund(out_request_no) or self.client.refund(
                out_trade_no, out_request_no, refund_fen, trade.total_fen, reason)
        if refund.status == consts.REFUND_ABNORMAL:
            logger.warning("refund %s/%s: ABNORMAL, staff must act", out_trade_no, out_request_no)
            raise WalletRefused(consts.REFUND_ABNORMAL, "", "the buyer's account cannot take "
                                "the refund back: handle it in the merchant console")
        return _refund_result(refund, out_trade_no)

    def _queried_refund(self, out_refund_no: str) -> WechatRefund | None:
        try:
            return self.client.query_refund(out_refund_no)
        except WalletRefused as exc:
            if exc.code == consts.RESOURCE_NOT_EXISTS:
                return None
            raise

    def query_refund(self, out_trade_no: str, out_request_no: str) -> RefundResult:
        """The refund query by out_refund_no (refund_fen 0: none made)."""
        refund = self._queried_refund(out_request_no)
        if refund is None:
            return RefundResult(out_trade_no, out_request_no, 0, False)
        if refund.out_trade_no and refund.out_trade_no != out_trade_no:
            raise WalletUnavailable(f"refund {out_request_no} is of another trade")
        return _refund_result(refund, out_trade_no)

    # ----------------------------------------------------------------------------------------
    # Bills

    def download_bill(self, bill_date: dt.date) -> bytes:
        """The day's trade bill (ALL) as WeChat ships it, its hash_value checked."""
        return self.client.download(self.client.trade_bill(bill_date))

    def download_trade_bill(self, bill_date: dt.date) -> WalletBill:
        """The day's trade bill, read as it is iterated (adapter.wallet.wechatpay.bill). WeChat
        makes no bill for a day without trades (NO_STATEMENT_EXIST): that day's bill is empty,
        so reconciliation still finds our own trades of it (STATEMENT_CREATING stays refused:
        the bill is not made yet)."""
        try:
            raw = self.download_bill(bill_date)
        except WalletRefused as exc:
            if exc.code != consts.NO_STATEMENT_EXIST:
                raise
            logger.info("trade bill of %s: none (no trades that day)", bill_date)
            return WalletBill(bill_date, iter(()))
        return bill.read_trade_bill(bill_date, raw)

    # ----------------------------------------------------------------------------------------
    # Notifications

    def read_notification(self, raw: bytes, headers: Mapping[str, str]) -> PaymentNotice:
        """A payment callback, verified over the raw body with the Wechatpay-* headers."""
        return notify.read_callback(raw, headers, self.client.keys, self.client.apiv3_key,
                                    self.clock())

    def notification_answer(self, outcome: str) -> NotificationAnswer:
        """204 with no body stops WeChat's retries; 4xx/5xx {"code":"FAIL"} is retried."""
        return _ANSWERS[outcome]
