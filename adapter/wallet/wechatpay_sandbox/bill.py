"""The trade bill (交易账单, bill_type ALL) as WeChat Pay ships it, and its download URL.

The file, as bills downloaded from WeChat Pay are: UTF-8 CSV lines, the 27 Chinese column
names, one row per payment (交易状态 SUCCESS) and per refund (REFUND: 交易时间 is the refund's,
应结订单金额 0.00, the refund in 退款金额 and 申请退款金额), every value prefixed with a backtick
so that spreadsheets keep numbers as text; then the summary header "总交易单数,应结订单总金额,..."
and its line. Amounts are yuan with two decimals (the fee with five). The sandbox charges no fee.
``hash_value`` is the SHA1 of the file as served before compression (tar_type GZIP compresses it).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import logging
import secrets
import time
from typing import Any

from adapter.wallet.sandbox.common import BEIJING
from adapter.wallet.sandbox.money import yuan
from adapter.wallet.wechatpay_sandbox.protocol import ApiError, invalid_request, param_error
from adapter.wallet.wechatpay_sandbox.state import BILL_URL_TTL_SECONDS, WechatSandboxState
from adapter.wallet.wechatpay_sandbox.trades import Order, Refund

logger = logging.getLogger(__name__)

COLUMNS = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
)
SUMMARY_COLUMNS = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)
BILL_DAYS = 90  # 仅支持三个月内的账单下载申请
NO_FEE, NO_RATE = "0.00000", "0.00%"
_TIME = "%Y-%m-%d %H:%M:%S"


def _line(values: list[str]) -> str:
    # No quoting in WeChat's CSV: keep commas and line breaks out of free text.
    return ",".join("`" + v.replace(",", "，").replace("\r", " ").replace("\n", " ")
                    for v in values)


def _payment(order: Order) -> list[str]:
    assert order.paid_at is not None
    total = yuan(order.total_fen)
    return [order.paid_at.strftime(_TIME), order.appid, order.mchid, "0", "",
            order.transaction_id, order.out_trade_no, order.openid, "JSAPI", "SUCCESS",
            "OTHERS", "CNY", total, "0.00", "0", "0", "0.00", "0.00", "", "",
            order.description, order.attach, NO_FEE, NO_RATE, total, "0.00", ""]


def _refund(order: Order, refund: Refund) -> list[str]:
    amount = yuan(refund.refund_fen)
    return [refund.created_at.strftime(_TIME), order.appid, order.mchid, "0", "",
            order.transaction_id, order.out_trade_no, order.openid, "JSAPI", "REFUND",
            "OTHERS", "CNY", "0.00", "0.00", refund.refund_id, refund.out_refund_no, amount,
            "0.00", "ORIGINAL", refund.status, order.description, order.attach, NO_FEE,
            NO_RATE, "0.00", amount, ""]


def bill_text(state: WechatSandboxState, bill_date: dt.date) -> tuple[str, int]:
    """(the bill's text, its number of rows) for one day, Beijing time."""
    start = dt.datetime.combine(bill_date, dt.time(0), BEIJING)
    end = start + dt.timedelta(days=1)
    rows: list[tuple[dt.datetime, list[str]]] = []
    paid = refunded = 0
    with state.lock:
        for order in state.orders.values():
            if order.paid_at is not None and start <= order.paid_at < end:
                rows.append((order.paid_at, _payment(order)))
                paid += order.total_fen
            for refund in order.refunds.values():
                if start <= refund.created_at < end:
                    rows.append((refund.created_at, _refund(order, refund)))
                    refunded += refund.refund_fen
    rows.sort(key=lambda row: row[0])
    summary = [str(len(rows)), yuan(paid), yuan(refunded), "0.00", NO_FEE, yuan(paid),
               yuan(refunded)]
    lines = [COLUMNS, *(_line(values) for _, values in rows), SUMMARY_COLUMNS, _line(summary)]
    return "\r\n".join(lines) + "\r\n", len(rows)


def bill_url(state: WechatSandboxState, query: dict[str, str]) -> dict[str, Any]:
    """申请交易账单: {hash_type, hash_value, download_url} of the day's bill."""
    bill_type = query.get("bill_type") or "ALL"
    if bill_type != "ALL":
        raise param_error("沙箱仅提供 bill_type=ALL 的交易账单")
    tar_type = query.get("tar_type") or ""
    if tar_type not in ("", "GZIP"):
        raise param_error("tar_type 仅支持 GZIP")
    try:
        bill_date = dt.date.fromisoformat(query.get("bill_date") or "")
    except ValueError:
        raise invalid_request("请检查bill_date，并重新调用（格式 yyyy-MM-DD）") from None
    today = state.now().date()
    if bill_date > today or bill_date < today - dt.timedelta(days=BILL_DAYS):
        raise invalid_request("请检查bill_date，仅支持三个月内的账单下载申请")
    if bill_date == today and not state.bills_today:
        # The day's bill is made the next morning (T+1 after 08:00, the docs say).
        raise ApiError(400, "STATEMENT_CREATING", "账单生成中")
    text, count = bill_text(state, bill_date)
    if count == 0:
        raise ApiError(400, "NO_STATEMENT_EXIST", "账单文件不存在")
    data = text.encode("utf-8")
    token = secrets.token_urlsafe(32)
    served = gzip.compress(data, mtime=0) if tar_type == "GZIP" else data
    with state.lock:
        state.bills[token] = (served, time.monotonic())
    digest = hashlib.sha1(data).hexdigest()  # noqa: S324 - the documented hash_type
    return {"hash_type": "SHA1", "hash_value": digest,
            "download_url": f"{state.public_url}/v3/billdownload/file?token={token}"}


def bill_file(state: WechatSandboxState, token: str) -> bytes:
    """The file behind a download_url while it is valid (30 s, unscaled)."""
    with state.lock:
        entry = state.bills.get(token)
    if entry is None or time.monotonic() - entry[1] > BILL_URL_TTL_SECONDS:
        raise invalid_request("请按第一步申请账单的API指引，重新获取账单地址后再请求")
    logger.info("wechatpay sandbox: bill downloaded (%d bytes)", len(entry[0]))
    return entry[0]
