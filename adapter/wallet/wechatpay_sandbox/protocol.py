"""What every part of the WeChat Pay sandbox shares of the v3 protocol: the error answer, RFC 3339
times in Beijing time, and the trade and refund states (each name once)."""

from __future__ import annotations

import datetime as dt

from adapter.wallet.sandbox.common import BEIJING

# trade_state (APIv3 查询订单 应答参数)
SUCCESS = "SUCCESS"
REFUND = "REFUND"  # 转入退款: a refund was made on the paid order
NOTPAY = "NOTPAY"
CLOSED = "CLOSED"
TRADE_STATE_DESC = {
    SUCCESS: "支付成功",
    REFUND: "转入退款",
    NOTPAY: "订单未支付",
    CLOSED: "订单已关闭",
}
# refund status (APIv3 申请退款 应答参数 status)
REFUND_SUCCESS = "SUCCESS"
REFUND_PROCESSING = "PROCESSING"

AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
CURRENCY = "CNY"
MAX_REQUEST_SKEW_SECONDS = 300  # v3 接口规则: a request's timestamp within 5 minutes


class ApiError(Exception):
    """A v3 error answer: the HTTP status and the body {"code": ..., "message": ...}."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, str]:
        """The JSON body of the answer."""
        return {"code": self.code, "message": self.message}


def param_error(message: str) -> ApiError:
    """400 PARAM_ERROR, the answer to a missing or malformed field."""
    return ApiError(400, "PARAM_ERROR", message)


def invalid_request(message: str) -> ApiError:
    """400 INVALID_REQUEST: the request is well formed but breaks a business rule."""
    return ApiError(400, "INVALID_REQUEST", message)


def sign_error(message: str) -> ApiError:
    """401 SIGN_ERROR: the request's Authorization does not verify."""
    return ApiError(401, "SIGN_ERROR", message)


def system_error() -> ApiError:
    """500 SYSTEM_ERROR: 系统异常，请用相同参数重新调用."""
    return ApiError(500, "SYSTEM_ERROR", "系统错误")


def rfc3339(value: dt.datetime | None) -> str:
    """Beijing time as v3 writes it, ``2024-07-09T10:06:33+08:00`` ("" for none)."""
    return value.astimezone(BEIJING).isoformat(timespec="seconds") if value else ""


def parse_rfc3339(text: str) -> dt.datetime:
    """An RFC 3339 time with an offset; ValueError otherwise."""
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("time without an offset")
    return value
