"""Alipay OpenAPI v1 (gateway.do): a thin client, one signed call per method.

:class:`AlipayClient` makes one signed call per method, with explicit timeouts, and returns a
small typed result; it turns every answer into a result, :class:`WalletRefused` (the platform
said no) or :class:`WalletUnavailable` (nobody knows what happened). The port on top of it is
:class:`adapter.wallet.alipay.gateway.AlipayWalletGateway`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from adapter.money import fen, yuan
from adapter.ports import RefundResult, WalletRefused, WalletUnavailable
from adapter.wallet.alipay import consts
from adapter.wallet.alipay.signing import (
    PrivateKeyInput,
    PublicKeyInput,
    load_private_key,
    load_public_key,
    sign_params,
    verify_response,
)
from adapter.wallet.transport import transport_failure

logger = logging.getLogger(__name__)

# Alipay reads timestamp and time_expire as Beijing time; China has no daylight saving, so a
# fixed +08:00 avoids depending on the tz database.
BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


@dataclass(frozen=True)
class OAuthToken:
    """alipay.system.oauth.token: who the user is and a token to read their shared info."""

    user_id: str
    access_token: str
    expires_in: int
    refresh_token: str = ""

    def __repr__(self) -> str:  # keep tokens out of logs and tracebacks
        return f"OAuthToken(user_id={self.user_id!r}, expires_in={self.expires_in})"


@dataclass(frozen=True)
class UserInfo:
    """alipay.user.info.share as the platform says it (cert_type still the platform's code)."""

    user_id: str
    is_certified: bool
    user_name: str = ""
    cert_type: str = ""
    cert_no: str = ""
    gender: str = ""  # F, M or ""
    mobile: str = ""

    def __repr__(self) -> str:  # personal data stays out of logs and tracebacks
        return f"UserInfo(user_id={self.user_id!r}, is_certified={self.is_certified})"


@dataclass(frozen=True)
class AlipayTrade:
    """alipay.trade.query / close as the platform says it (trade_status still Alipay's word)."""

    out_trade_no: str
    trade_status: str  # WAIT_BUYER_PAY, TRADE_CLOSED, TRADE_SUCCESS, TRADE_FINISHED
    trade_no: str = ""
    total_fen: int = 0
    buyer_id: str = ""


def _beijing(moment: dt.datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("time must be timezone-aware")
    return moment.astimezone(BEIJING).strftime(consts.TIME_FORMAT)


def _buyer_field(buyer_id: str) -> str:
    # Alipay user_ids are 16 digits starting 2088; apps created since the open_id migration get
    # an open_id instead, which trade.create takes as buyer_open_id.
    if len(buyer_id) == 16 and buyer_id.startswith("2088") and buyer_id.isdigit():
        return "buyer_id"
    return "buyer_open_id"


class AlipayClient:
    """One signed gateway.do call per method; answers are verified before they are believed."""

    def __init__(
        self,
        gateway_url: str,
        app_id: str,
        app_private_key: PrivateKeyInput,
        alipay_public_key: PublicKeyInput,
        *,
        seller_id: str = "",
        notify_url: str = "",
        timeout: tuple[float, float] = (5.0, 15.0),
        session: requests.Session | None = None,
        message_template_id: str = "",
    ) -> None:
        self.gateway_url = gateway_url
        self.app_id = app_id
        self._private_key = (
            app_private_key if not isinstance(app_private_key, str | bytes)
            else load_private_key(app_private_key)
        )
        self._public_key = (
            alipay_public_key if not isinstance(alipay_public_key, str | bytes)
            else load_public_key(alipay_public_key)
        )
        self.seller_id = seller_id
        self.notify_url = notify_url
        self.timeout = timeout
        self.session = session or requests.Session()
        self.message_template_id = message_template_id

    @property
    def platform_public_key(self) -> RSAPublicKey:
        """Alipay's public key: it signs answers and notifications."""
        return self._public_key

    # ----------------------------------------------------------------------------------------
    # Transport

    def _params(
        self,
        method: str,
        biz_content: Mapping[str, Any] | None,
        extra: Mapping[str, str] | None = None,
        notify_url: str = "",
    ) -> dict[str, str]:
        params = {
            "app_id": self.app_id,
            "method": method,
            "format": consts.FORMAT,
            "charset": consts.CHARSET,
            "sign_type": consts.SIGN_TYPE,
            "timestamp": dt.datetime.now(BEIJING).strftime(consts.TIME_FORMAT),
            "version": consts.VERSION,
        }
        if notify_url:
            params["notify_url"] = notify_url
        if biz_content is not None:
            params["biz_content"] = json.dumps(
                biz_content, ensure_ascii=False, separators=(",", ":")
            )
        if extra:
            params.update(extra)
        params["sign"] = sign_params(params, self._private_key)
        return params

    def _call(
        self,
        method: str,
        biz_content: Mapping[str, Any] | None,
        extra: Mapping[str, str] | None = None,
        notify_url: str = "",
    ) -> dict[str, Any]:
        """POST one signed request; the verified response object when its code is 10000."""
        params = self._params(method, biz_content, extra, notify_url)
        body = urlencode(params, encoding="utf-8")
        try:
            response = self.session.post(
                self.gateway_url,
                data=body.encode("ascii"),
                headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise transport_failure(method, exc) from None
        if response.status_code != 200:
            logger.warning("%s: gateway answered HTTP %s", method, response.status_code)
            raise WalletUnavailable(f"{method}: HTTP {response.status_code}")
        try:
            # We asked for charset=utf-8; requests' guess from headers may say ISO-8859-1.
            raw = response.content.decode("utf-8")
        except UnicodeDecodeError:
            raise WalletUnavailable(f"{method}: response is not UTF-8") from None
        result = verify_response(raw, method, self._public_key)  # SignatureError is Unavailable
        code = str(result.get("code", ""))
        if code == consts.SUCCESS:
            return result
        if not code and method == consts.OAUTH_TOKEN and result.get("access_token"):
            # alipay.system.oauth.token answers success without a code field (its documented
            # response sample carries only the token fields); errors come as error_response.
            return result
        sub_code = str(result.get("sub_code", ""))
        sub_msg = str(result.get("sub_msg", "") or result.get("msg", ""))
        if consts.is_unknown_outcome(code, sub_code):
            logger.warning("%s: %s %s, outcome unknown", method, code, sub_code)
            raise WalletUnavailable(f"{method}: {code} {sub_code}")
        logger.info("%s: refused %s %s", method, code, sub_code)
        raise WalletRefused(code, sub_code, sub_msg)

    # ----------------------------------------------------------------------------------------
    # Identity

    def oauth_token(self, auth_code: str) -> OAuthToken:
        """alipay.system.oauth.token: exchange a one-time auth_code (isv.code-invalid if used)."""
        # This method takes its parameters beside the common ones, not in biz_content.
        result = self._call(
            consts.OAUTH_TOKEN,
            None,
            {"grant_type": consts.GRANT_AUTHORIZATION_CODE, "code": auth_code},
        )
        return OAuthToken(
            user_id=str(result.get("user_id") or result.get("open_id") or ""),
            access_token=str(result.get("access_token", "")),
            expires_in=int(result.get("expires_in", 0) or 0),
            refresh_token=str(result.get("refresh_token", "")),
        )

    def user_info(self, access_token: str) -> UserInfo:
        """alipay.user.info.share with the user's access token (auth_token common parameter)."""
        result = self._call(consts.USER_INFO_SHARE, None, {"auth_token": access_token})
        return UserInfo(
            user_id=str(result.get("user_id") or result.get("open_id") or ""),
            is_certified=result.get("is_certified") == consts.CERTIFIED,
            user_name=str(result.get("user_name", "")),
            cert_type=str(result.get("cert_type", "")),
            cert_no=str(result.get("cert_no", "")),
            gender=consts.GENDERS.get(str(result.get("gender", "")).lower(), ""),
            mobile=str(result.get("mobile", "")),
        )

    # ----------------------------------------------------------------------------------------
    # Trades

    def trade_create(
        self,
        out_trade_no: str,
        total_fen: int,
        subject: str,
        buyer_id: str,
        time_expire: dt.datetime,
        notify_url: str = "",
    ) -> str:
        """alipay.trade.create (JSAPI_PAY); the platform's trade_no."""
        if total_fen <= 0:
            raise ValueError("total_fen must be positive")
        biz: dict[str, Any] = {
            "out_trade_no": out_trade_no,
            "total_amount": yuan(total_fen),
            "subject": subject,
            "product_code": consts.PRODUCT_CODE_JSAPI,
            _buyer_field(buyer_id): buyer_id,
            "time_expire": _beijing(time_expire),
        }
        if self.seller_id:
            biz["seller_id"] = self.seller_id
        result = self._call(
            consts.TRADE_CREATE, biz, notify_url=notify_url or self.notify_url
        )
        if result.get("out_trade_no") not in (None, out_trade_no):
            raise WalletUnavailable("trade.create answered for another out_trade_no")
        trade_no = str(result.get("trade_no", ""))
        if not trade_no:
            raise WalletUnavailable("trade.create succeeded without a trade_no")
        logger.info("trade %s created as %s", out_trade_no, trade_no)
        return trade_no

    def trade_query(self, out_trade_no: str) -> AlipayTrade:
        """alipay.trade.query; a trade Alipay does not have is WalletRefused ACQ.TRADE_NOT_EXIST."""
        result = self._call(consts.TRADE_QUERY, {"out_trade_no": out_trade_no})
        if result.get("out_trade_no") not in (None, out_trade_no):
            raise WalletUnavailable("trade.query answered for another out_trade_no")
        amount = result.get("total_amount")
        return AlipayTrade(
            out_trade_no=out_trade_no,
            trade_status=str(result.get("trade_status", "")),
            trade_no=str(result.get("trade_no", "")),
            total_fen=fen(amount) if amount else 0,
            buyer_id=str(result.get("buyer_user_id") or result.get("buyer_open_id") or ""),
        )

    def trade_close(self, out_trade_no: str) -> AlipayTrade:
        """alipay.trade.close of an unpaid trade; the trade is then TRADE_CLOSED."""
        result = self._call(consts.TRADE_CLOSE, {"out_trade_no": out_trade_no})
        logger.info("trade %s closed", out_trade_no)
        return AlipayTrade(
            out_trade_no=out_trade_no,
            trade_status=consts.TRADE_CLOSED,
            trade_no=str(result.get("trade_no", "")),
        )

    def trade_refund(
        self, out_trade_no: str, refund_fen: int, out_request_no: str, reason: str
    ) -> RefundResult:
        """alipay.trade.refund; ``done`` when fund_change is Y (N: ask refund_query)."""
        if refund_fen <= 0:
            raise ValueError("refund_fen must be positive")
        biz: dict[str, Any] = {
            "out_trade_no": out_trade_no,
            "refund_amount": yuan(refund_fen),
            "out_request_no": out_request_no,
        }
        if reason:
            biz["refund_reason"] = reason
        result = self._call(consts.TRADE_REFUND, biz)
        # refund_fee in the answer is the trade's refunded total, not this request's amount.
        done = result.get("fund_change") == consts.FUND_CHANGED
        logger.info("refund %s/%s answered fund_change=%s", out_trade_no, out_request_no, done)
        return RefundResult(out_trade_no, out_request_no, refund_fen, done)

    def refund_query(self, out_trade_no: str, out_request_no: str) -> RefundResult:
        """alipay.trade.fastpay.refund.query; refund_fen 0 means no such refund."""
        result = self._call(
            consts.REFUND_QUERY,
            {
                "out_trade_no": out_trade_no,
                "out_request_no": out_request_no,
                "query_options": ["gmt_refund_pay"],
            },
        )
        amount = result.get("refund_amount")
        if not amount:
            # Documented: an answer without the refund's data means it was not made.
            return RefundResult(out_trade_no, out_request_no, 0, False)
        # Documented: refund data with refund_status REFUND_SUCCESS, or with no refund_status
        # (older answers), is a refund made.
        status = str(result.get("refund_status", "") or "")
        return RefundResult(
            out_trade_no, out_request_no, fen(amount), status in ("", consts.REFUND_SUCCESS)
        )

    # ----------------------------------------------------------------------------------------
    # Messages and bills

    def message_send(self, to_user_id: str, text: str, url: str = "") -> None:
        """alipay.open.public.message.single.send: a service-window template message.

        The template (chosen in the Alipay console, id given to the client) is expected to have
        one keyword; the text fills it, and the url opens when the user taps the message.
        """
        if not self.message_template_id:
            raise ValueError("no message template id configured")
        context: dict[str, Any] = {
            "head_color": "#000000",
            "action_name": "查看详情",
            "keyword1": {"color": "#000000", "value": text},
        }
        if url:
            context["url"] = url
        self._call(
            consts.MESSAGE_SINGLE_SEND,
            {
                "to_user_id": to_user_id,
                "template": {"template_id": self.message_template_id, "context": context},
            },
        )

    def bill_download_url(self, bill_date: dt.date, bill_type: str = "trade") -> str:
        """alipay.data.dataservice.bill.downloadurl.query: a short-lived URL of the csv.zip."""
        result = self._call(
            consts.BILL_DOWNLOAD_URL,
            {"bill_type": bill_type, "bill_date": bill_date.isoformat()},
        )
        url = str(result.get("bill_download_url", ""))
        if not url.startswith(("https://", "http://")):
            raise WalletUnavailable("bill download URL missing from the answer")
        return url

    def download(self, url: str) -> bytes:
        """GET the bill file (the URL carries its own signature; it is not logged)."""
        try:
            response = self.session.get(url, timeout=self.timeout)
        except requests.RequestException as exc:
            raise WalletUnavailable(f"bill download: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise WalletUnavailable(f"bill download: HTTP {response.status_code}")
        return response.content
