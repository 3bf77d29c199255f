"""The WalletGateway port over Alipay: what the use cases need on top of the thin client.

It settles unknown outcomes by querying, with the same out_trade_no / out_request_no, so nothing
is ever charged or refunded twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from urllib.parse import quote, urlencode

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
from adapter.wallet.alipay import bill, consts, notify
from adapter.wallet.alipay.client import AlipayClient, AlipayTrade
from adapter.wallet.alipay.config import AlipayConfig, cashier_page_for, sign_in_page_for

logger = logging.getLogger(__name__)


def wallet_trade(answer: AlipayTrade) -> WalletTrade:
    """Alipay's trade in the adapter's words; a trade_status Alipay does not document is
    WalletUnavailable, since nobody can say whether the money was taken."""
    state = consts.TRADE_STATES.get(answer.trade_status)
    if state is None:
        logger.warning("trade %s: unknown trade_status", answer.out_trade_no)
        raise WalletUnavailable(f"trade {answer.out_trade_no}: unknown trade_status")
    return WalletTrade(answer.out_trade_no, state, answer.trade_no, answer.total_fen,
                       answer.buyer_id)


# outcome of a notification -> Alipay's answer (only "success" with 200 stops its retries)
_ANSWERS = {
    "success": NotificationAnswer(consts.NOTIFY_SUCCESS, 200),
    "refused": NotificationAnswer(consts.NOTIFY_FAIL, 400),
    "error": NotificationAnswer(consts.NOTIFY_FAIL, 500),
}


class AlipayWalletGateway:
    """adapter.ports.WalletGateway over Alipay, settling unknown outcomes by querying.

    ``sign_in_page`` and ``cashier_page`` default to the pages that go with the client's
    gateway (see adapter.wallet.alipay.config); an empty ``cashier_page`` means the JS bridge.
    """

    platform = consts.PLATFORM
    browser_marker = consts.BROWSER_MARKER

    def __init__(
        self,
        client: AlipayClient,
        *,
        cert_types: Mapping[str, str] | None = None,
        sign_in_page: str = "",
        cashier_page: str | None = None,
    ) -> None:
        self.client = client
        self.cert_types = dict(consts.CERT_TYPES if cert_types is None else cert_types)
        self.sign_in_page = sign_in_page or sign_in_page_for(client.gateway_url)
        self.cashier_page = (cashier_page_for(client.gateway_url) if cashier_page is None
                             else cashier_page)

    @classmethod
    def from_config(cls, config: AlipayConfig) -> AlipayWalletGateway:
        """The gateway for a configuration, reading its key files."""
        client = AlipayClient(
            config.gateway,
            config.app_id,
            config.app_private_key_file.read_text(),
            config.public_key_file.read_text(),
            seller_id=config.seller_id,
            notify_url=config.notify_url,
            message_template_id=config.message_template_id,
        )
        return cls(client, sign_in_page=config.sign_in_page, cashier_page=config.cashier_page)

    @property
    def app_id(self) -> str:
        """Our APPID; notifications for another app are refused."""
        return self.client.app_id

    @property
    def merchant_id(self) -> str:
        """Our seller_id (the merchant's PID, 2088...); "" leaves notifications' unchecked."""
        return self.client.seller_id

    def display_name(self, locale: str) -> str:
        """支付宝, or Alipay in English."""
        return consts.DISPLAY_NAMES["en" if locale.startswith("en") else "zh-CN"]

    # ----------------------------------------------------------------------------------------
    # Pages: signing in and paying happen on the platform's side, in the patient's browser

    def sign_in_url(self, redirect_uri: str, state: str) -> str:
        """publicAppAuthorize.htm with app_id, scope auth_user, redirect_uri and state."""
        query = urlencode({"app_id": self.app_id, "scope": consts.AUTH_SCOPE,
                           "redirect_uri": redirect_uri, "state": state})
        return f"{self.sign_in_page}{'&' if '?' in self.sign_in_page else '?'}{query}"

    def pay_parameters(self, out_trade_no: str, trade_no: str, return_url: str) -> dict[str, str]:
        """The trade_no for AlipayJSBridge tradePay; on an imitation of the platform also its
        cashier page, which comes back to return_url."""
        parameters = {consts.TRADE_PAY_TRADE_NO: trade_no}
        if self.cashier_page:
            url = self.cashier_page + quote(trade_no, safe="")
            if return_url:
                url += "?" + urlencode({"return_url": return_url})
            parameters["cashier_url"] = url
        return parameters

    def exchange_auth_code(self, auth_code: str) -> WalletUser:
        """alipay.system.oauth.token, then alipay.user.info.share."""
        token = self.client.oauth_token(auth_code)
        info = self.client.user_info(token.access_token)
        document_type = self.cert_types.get(info.cert_type, "")
        if info.cert_type and not document_type:
            logger.info("user %s: cert_type %s has no document type", info.user_id, info.cert_type)
        return WalletUser(
            user_id=info.user_id or token.user_id,
            is_certified=info.is_certified,
            name=info.user_name,
            document_type=document_type,
            document_number=info.cert_no if document_type else "",
            sex=info.gender,
            mobile=info.mobile,
        )

    def create_trade(
        self,
        out_trade_no: str,
        total_fen: int,
        subject: str,
        buyer_id: str,
        expire_at: dt.datetime,
    ) -> CreatedTrade:
        """alipay.trade.create: Alipay gives its trade_no at once, and tradePay takes it.
        An unknown outcome is settled by trade.query, then one retry.

        WalletUnreachable only when this call's create provably never reached Alipay; once an
        attempt's outcome was unknown, every failure after it is plain WalletUnavailable.
        """
        trade_no = self._create(out_trade_no, total_fen, subject, buyer_id, expire_at)
        return CreatedTrade(pay_reference=trade_no, trade_no=trade_no)

    def _create(self, out_trade_no: str, total_fen: int, subject: str, buyer_id: str,
                expire_at: dt.datetime) -> str:
        try:
            return self.client.trade_create(out_trade_no, total_fen, subject, buyer_id, expire_at)
        except WalletRefused as exc:
            # Refused outright: nothing was created, unless it says a trade already exists.
            exc.nothing_created = exc.sub_code not in consts.TRADE_EXISTS_SUB_CODES
            raise
        except WalletUnreachable:
            raise
        except WalletUnavailable:
            logger.warning("trade %s: create outcome unknown, querying", out_trade_no)
        try:
            return self._settle_unknown_create(out_trade_no, total_fen, subject, buyer_id,
                                               expire_at)
        except WalletUnreachable as exc:
            raise WalletUnavailable(str(exc)) from None

    def _settle_unknown_create(self, out_trade_no: str, total_fen: int, subject: str,
                               buyer_id: str, expire_at: dt.datetime) -> str:
        status = self.query_trade(out_trade_no)
        if status.state is not TradeState.NOT_FOUND:
            if status.total_fen and status.total_fen != total_fen:
                # Never hand out a trade_no whose amount is not the one asked for.
                raise WalletRefused(consts.AMOUNT_MISMATCH, "", "existing trade, other amount")
            return status.trade_no
        # Not created: Alipay dedupes out_trade_no, so one retry with the same one is safe.
        return self.client.trade_create(out_trade_no, total_fen, subject, buyer_id, expire_at)

    def query_trade(self, out_trade_no: str) -> WalletTrade:
        """alipay.trade.query; ACQ.TRADE_NOT_EXIST is state NOT_FOUND, not an error."""
        try:
            return wallet_trade(self.client.trade_query(out_trade_no))
        except WalletRefused as exc:
            if exc.sub_code == consts.TRADE_NOT_EXIST:
                return WalletTrade(out_trade_no, TradeState.NOT_FOUND)
            raise

    def close_trade(self, out_trade_no: str) -> WalletTrade:
        """alipay.trade.close; when the trade was paid meanwhile, says so instead of closing."""
        try:
            return wallet_trade(self.client.trade_close(out_trade_no))
        except WalletRefused as exc:
            if exc.sub_code == consts.TRADE_NOT_EXIST:
                # The buyer never opened the cashier: nothing exists to close or to pay.
                return WalletTrade(out_trade_no, TradeState.NOT_FOUND)
            if exc.sub_code not in consts.CLOSE_REFUSED_BY_STATE:
                raise
            logger.info("trade %s: close refused (%s), querying", out_trade_no, exc.sub_code)
            return self.query_trade(out_trade_no)
        except WalletUnavailable:
            logger.warning("trade %s: close outcome unknown, querying", out_trade_no)
        status = self.query_trade(out_trade_no)
        if status.state is not TradeState.CREATED:
            return status
        # Still open after a lost answer: close once more (closing is idempotent).
        try:
            return wallet_trade(self.client.trade_close(out_trade_no))
        except WalletRefused as exc:
            if exc.sub_code not in consts.CLOSE_REFUSED_BY_STATE:
                raise
            return self.query_trade(out_trade_no)

    def refund(
        self, out_trade_no: str, refund_fen: int, out_request_no: str, reason: str
    ) -> RefundResult:
        """alipay.trade.refund; an unknown outcome is settled by refund.query and one retry,
        always with the same out_request_no (Alipay refunds one out_request_no at most once)."""
        try:
            result = self.client.trade_refund(out_trade_no, refund_fen, out_request_no, reason)
        except WalletUnavailable:
            logger.warning("refund %s/%s: outcome unknown, querying", out_trade_no, out_request_no)
            result = None
        if result is not None and result.done:
            return result
        # fund_change=N or no answer: the refund query is the documented way to know.
        queried = self.client.refund_query(out_trade_no, out_request_no)
        if queried.refund_fen:
            return queried
        if result is not None:
            return result  # answered, not (yet) made: the caller may query again later
        return self.client.trade_refund(out_trade_no, refund_fen, out_request_no, reason)

    def query_refund(self, out_trade_no: str, out_request_no: str) -> RefundResult:
        """alipay.trade.fastpay.refund.query."""
        return self.client.refund_query(out_trade_no, out_request_no)

    def push_message(self, user_id: str, text: str, url: str = "") -> None:
        """A service-window message to the user (alipay.open.public.message.single.send)."""
        self.client.message_send(user_id, text, url)

    def download_bill(self, bill_date: dt.date) -> bytes:
        """The day's trade bill: csv.zip bytes."""
        return self.client.download(self.client.bill_download_url(bill_date))

    def download_trade_bill(self, bill_date: dt.date) -> WalletBill:
        """The day's trade bill, read as it is iterated (adapter.wallet.alipay.bill)."""
        return bill.read_trade_bill(bill_date, self.download_bill(bill_date))

    # ----------------------------------------------------------------------------------------
    # Notifications

    def read_notification(self, raw: bytes, headers: Mapping[str, str]) -> PaymentNotice:
        """A trade_status_sync notification, verified with the platform's public key (Alipay
        signs inside the body; the headers are not read)."""
        return notify.read_notice(notify.decode_form(raw), self.client.platform_public_key)

    def notification_answer(self, outcome: str) -> NotificationAnswer:
        """Alipay reads the body: exactly "success" stops its retries, "fail" is retried."""
        return _ANSWERS[outcome]
