"""Asynchronous notifications (trade_status_sync), on the shared delivery queue.

Alipay's documented behaviour: POST form-encoded to notify_url; the merchant must answer the
seven characters ``success``; otherwise Alipay retries, "通知的间隔频率一般是：4m,10m,10m,1h,2h,6h,
15h", then gives up (8 attempts in about 25 hours). Every attempt is re-signed with a fresh
notify_time; the notify_id stays the same across retries of one notification.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Protocol

import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from adapter.wallet.sandbox import keys
from adapter.wallet.sandbox.delivery import Delivery, DeliveryQueue, Knobs, PostResult

logger = logging.getLogger(__name__)

RETRY_SCHEDULE_SECONDS = (240, 600, 600, 3600, 7200, 21600, 54000)


class Platform(Knobs, Protocol):
    """What the notifier reads of the sandbox (SandboxState): who signs, its knobs and clock."""

    app_id: str
    platform_private_key: rsa.RSAPrivateKey

    def now(self) -> dt.datetime:
        """Beijing time, to the second."""
        ...


class Notifier(DeliveryQueue):
    """Alipay's trade_status_sync notifications to the trades' notify_url."""

    RETRY_SCHEDULE_SECONDS = RETRY_SCHEDULE_SECONDS
    THREAD_NAME = "wallet-sandbox-notify"

    def __init__(self, state: Platform) -> None:
        super().__init__(state)
        self._platform = state

    def enqueue(self, notify_url: str, fields: dict[str, Any],  # type: ignore[override]
                label: dict[str, Any] | None = None, delay: float = 0.0) -> str:
        """Schedule a new notification of a trade's fields now; returns its notify_id."""
        label = label or {
            "out_trade_no": fields.get("out_trade_no", ""),
            "trade_status": fields.get("trade_status", ""),
            "refund": "out_biz_no" in fields,
        }
        return super().enqueue(notify_url, fields, label, delay)

    def _post(self, delivery: Delivery, http: requests.Session) -> PostResult:
        params = self._signed(delivery)
        response = http.post(
            delivery.notify_url, data=params, timeout=self._platform.notify_http_timeout,
            allow_redirects=False,
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
        answer = response.text[:200]
        # Alipay: only the exact body "success" stops the retries.
        return PostResult(response.status_code == 200 and answer == "success",
                          response.status_code, answer, {"notify_time": params["notify_time"]})

    def _signed(self, delivery: Delivery) -> dict[str, str]:
        state = self._platform
        params = {
            **delivery.fields,
            "notify_time": state.now().strftime("%Y-%m-%d %H:%M:%S"),
            "notify_type": "trade_status_sync",
            "notify_id": delivery.notify_id,
            "app_id": state.app_id,
            "charset": "utf-8",
            "version": "1.0",
            "sign_type": "RSA2",
            "auth_app_id": state.app_id,
        }
        params = {k: v for k, v in params.items() if v != ""}
        # Alipay signs notifications over all parameters but sign and sign_type.
        content = keys.signing_content(params, exclude=("sign", "sign_type"))
        params["sign"] = keys.sign(content, state.platform_private_key)
        return params
