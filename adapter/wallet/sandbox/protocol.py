"""What every part of the sandbox shares of Alipay's protocol: error answers, Beijing time, the
trade statuses."""

from __future__ import annotations

import datetime as dt

from adapter.wallet.sandbox.common import BEIJING

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
TRADE_CLOSED = "TRADE_CLOSED"
TRADE_SUCCESS = "TRADE_SUCCESS"
TRADE_FINISHED = "TRADE_FINISHED"


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


def fmt(value: dt.datetime | None) -> str:
    """Beijing wall time as Alipay writes it ("" for none)."""
    return value.astimezone(BEIJING).strftime(TIME_FORMAT) if value else ""
