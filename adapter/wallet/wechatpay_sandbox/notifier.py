"""Callbacks (支付通知, 退款结果通知) on the shared delivery queue.

WeChat Pay's documented behaviour: POST JSON to notify_url, ``{id, create_time, event_type,
resource_type: "encrypt-resource", resource: {algorithm AEAD_AES_256_GCM, ciphertext, nonce,
associated_data, original_type}, summary}``, signed like a response (Wechatpay-* headers); any
2xx answer (200 or 204, the body is not read) stops the retries, anything else (or no answer in 5
seconds) is retried "15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h", 16 attempts in
24h4m in all. The body, and so the notification id, is the same on every attempt; the signature
(timestamp and nonce) is made afresh for each.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Any, Protocol

import requests

from adapter.wallet.sandbox.delivery import Delivery, DeliveryQueue, Knobs, PostResult
from adapter.wallet.wechatpay_sandbox import crypto
from adapter.wallet.wechatpay_sandbox.protocol import rfc3339

logger = logging.getLogger(__name__)

RETRY_SCHEDULE_SECONDS = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600,
                          10800, 10800, 10800, 21600, 21600)


class Platform(Knobs, Protocol):
    """What the notifier reads of the sandbox state: the APIv3 key, the signer, the clock."""

    apiv3_key: bytes

    def now(self) -> dt.datetime:
        """Beijing time, to the second."""
        ...

    def signature_headers(self, body: str) -> dict[str, str]:
        """Wechatpay-Timestamp/-Nonce/-Signature/-Serial/-Signature-Type for ``body``."""
        ...


class WechatNotifier(DeliveryQueue):
    """Encrypted, signed callbacks to the notify_url of an order or a refund."""

    RETRY_SCHEDULE_SECONDS = RETRY_SCHEDULE_SECONDS
    THREAD_NAME = "wechatpay-sandbox-notify"

    def __init__(self, state: Platform) -> None:
        super().__init__(state)
        self._platform = state

    def new_id(self) -> str:
        """A notification id: a UUID, as WeChat Pay's callbacks carry."""
        return str(uuid.uuid4())

    def notify(self, notify_url: str, event_type: str, original_type: str, summary: str,
               resource: dict[str, Any], label: dict[str, Any], delay: float = 0.0) -> str:
        """Encrypt ``resource`` under the APIv3 key and schedule the callback; its id."""
        state = self._platform
        plaintext = json.dumps(resource, ensure_ascii=False, separators=(",", ":"))
        sealed = crypto.aead_encrypt(state.apiv3_key, plaintext, original_type)
        fields = {"create_time": rfc3339(state.now()), "event_type": event_type,
                  "resource_type": "encrypt-resource",
                  "resource": {**sealed, "original_type": original_type}, "summary": summary}
        return self.enqueue(notify_url, fields, {"event_type": event_type, **label}, delay)

    def _post(self, delivery: Delivery, http: requests.Session) -> PostResult:
        # The id is the delivery's (copies of a duplicated notification share it).
        body = json.dumps({"id": delivery.notify_id, **delivery.fields}, ensure_ascii=False,
                          separators=(",", ":"))
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "User-Agent": "Mozilla/4.0 (WeChat Pay sandbox)",
                   **self._platform.signature_headers(body)}
        response = http.post(delivery.notify_url, data=body.encode("utf-8"), headers=headers,
                             timeout=self._platform.notify_http_timeout, allow_redirects=False)
        return PostResult(200 <= response.status_code < 300, response.status_code,
                          response.text[:200],
                          {"timestamp": headers["Wechatpay-Timestamp"]})
