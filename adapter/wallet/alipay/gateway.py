"""The WalletGateway port over Alipay: what the use cases need on top of the thin client.

It settles unknown outcomes by querying, with the same out_trade_no / out_request_no, so nothing
is ever charged or refunded twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

from adapter.ports import (
    RefundResult,
    TradeState,
    WalletRefused,
    WalletTrade,
    WalletUnavailable,
    WalletUser,
)
from adapter.wallet.alipay import consts
from adapter.wallet.alipay.client import AlipayClient, AlipayTrade

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


class AlipayWalletGateway:
    """adapter.ports.WalletGateway over Alipay, settling unknown outcomes by querying."""

    def __init__(
        self, client: AlipayClient, *, cert_types: Mapping[str, str] | None = None
    ) -> None:
        self.client = client
        self.cert_types = dict(consts.CERT_TYPES if cert_types is None else cert_types)

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
    ) -> str:
        """alipay.trade.create; an unknown outcome is settled by trade.query, then one retry."""
        try:
            return self.client.trade_create(out_trade_no, total_fen, subject, buyer_id, expire_at)
        except WalletUnavailable:
            logger.warning("trade %s: create outcome unknown, querying", out_trade_no)
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
