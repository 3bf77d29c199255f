"""Asynchronous notifications (trade_status_sync), delivered by one background thread.

Alipay's documented behaviour: POST form-encoded to notify_url; the merchant must answer the
seven characters ``success``; otherwise Alipay retries, "通知的间隔频率一般是：4m,10m,10m,1h,2h,6h,
15h", then gives up (8 attempts in about 25 hours). Every attempt is re-signed with a fresh
notify_time; the notify_id stays the same across retries of one notification.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import logging
import random
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from adapter.wallet.sandbox import keys

logger = logging.getLogger(__name__)

RETRY_SCHEDULE_SECONDS = (240, 600, 600, 3600, 7200, 21600, 54000)
OUT_OF_ORDER_MAX_DELAY_SECONDS = 60.0  # scaled: how long a first attempt may be held back
_BEIJING = dt.timezone(dt.timedelta(hours=8))


@dataclass
class Delivery:
    """One notification to one notify_url and its attempts (a duplicate copy is its own)."""

    notify_id: str
    notify_url: str
    fields: dict[str, str]
    copy: int = 1
    state: str = "pending"  # pending | delivered | failed
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The delivery log entry served at /_sandbox/notifications."""
        return {
            "notify_id": self.notify_id,
            "notify_url": self.notify_url,
            "copy": self.copy,
            "out_trade_no": self.fields.get("out_trade_no", ""),
            "trade_status": self.fields.get("trade_status", ""),
            "refund": "out_biz_no" in self.fields,
            "state": self.state,
            "attempts": list(self.attempts),
        }


class Platform(Protocol):
    """What the notifier reads of the sandbox (SandboxState): who signs, its knobs and clock."""

    app_id: str
    platform_private_key: rsa.RSAPrivateKey
    duplicate_notifications: bool
    out_of_order_notifications: bool
    notify_http_timeout: float
    rng: random.Random

    def scaled(self, seconds: float) -> float:
        """A documented platform delay, compressed by the time scale."""
        ...

    def now(self) -> dt.datetime:
        """Beijing time, to the second."""
        ...


# Alipay's servers post many notifications at once; one at a time would make the sandbox the
# bottleneck of a morning rush (each post waits for the merchant's answer).
NOTIFY_CONCURRENCY = 8


class Notifier:
    """A due-time queue of deliveries, the thread that works it and the pool that posts them."""

    def __init__(self, state: Platform) -> None:
        self._state = state
        self._pool = ThreadPoolExecutor(NOTIFY_CONCURRENCY, thread_name_prefix="sandbox-post")
        self._local = threading.local()
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Delivery]] = []
        self._seq = itertools.count()
        self._log: list[Delivery] = []
        self._thread: threading.Thread | None = None
        self._stopping = False

    def enqueue(self, notify_url: str, fields: dict[str, str]) -> str:
        """Schedule a new notification now; returns its notify_id."""
        notify_id = secrets.token_hex(16)
        copies = 2 if self._state.duplicate_notifications else 1
        with self._cond:
            for copy in range(1, copies + 1):
                delay = 0.0
                if self._state.out_of_order_notifications:
                    # Hold first attempts back a random while: later events may overtake.
                    delay = self._state.scaled(
                        self._state.rng.uniform(0, OUT_OF_ORDER_MAX_DELAY_SECONDS))
                delivery = Delivery(notify_id, notify_url, dict(fields), copy=copy)
                self._log.append(delivery)
                self._push(time.monotonic() + delay, delivery)
            self._ensure_thread()
            self._cond.notify_all()
        return notify_id

    def log(self) -> list[dict[str, Any]]:
        """All deliveries so far, oldest first."""
        with self._cond:
            return [d.as_json() for d in self._log]

    def stop(self) -> None:
        """Stop the thread (pending deliveries are dropped)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the thread ------------------------------------------------------------------------

    def _push(self, due: float, delivery: Delivery) -> None:
        heapq.heappush(self._queue, (due, next(self._seq), delivery))

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._stopping:
            self._thread = threading.Thread(target=self._run, name="wallet-sandbox-notify",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    now = time.monotonic()
                    if self._queue and self._queue[0][0] <= now:
                        break
                    timeout = self._queue[0][0] - now if self._queue else None
                    self._cond.wait(timeout)
                if self._stopping:
                    return
                due = []
                while self._queue and self._queue[0][0] <= time.monotonic():
                    due.append(heapq.heappop(self._queue)[2])
            if self._state.out_of_order_notifications:
                self._state.rng.shuffle(due)
            for delivery in due:
                self._pool.submit(self._attempt, delivery)

    def _attempt(self, delivery: Delivery) -> None:
        params = self._signed(delivery)
        started = dt.datetime.now(_BEIJING).isoformat(timespec="milliseconds")
        status, answer = 0, ""
        http = getattr(self._local, "http", None)
        if http is None:  # a requests.Session is not shared between threads
            http = self._local.http = requests.Session()
        try:
            response = http.post(
                delivery.notify_url, data=params, timeout=self._state.notify_http_timeout,
                allow_redirects=False,
                headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            )
            status, answer = response.status_code, response.text[:200]
        except requests.RequestException as exc:
            answer = f"error: {type(exc).__name__}"
        # Alipay: only the exact body "success" stops the retries.
        ok = status == 200 and answer == "success"
        with self._cond:
            delivery.attempts.append({"at": started, "status": status, "answer": answer,
                                      "notify_time": params["notify_time"]})
            number = len(delivery.attempts)
            if ok:
                delivery.state = "delivered"
            elif number > len(RETRY_SCHEDULE_SECONDS):
                delivery.state = "failed"
            else:
                wait = self._state.scaled(RETRY_SCHEDULE_SECONDS[number - 1])
                self._push(time.monotonic() + wait, delivery)
                self._cond.notify_all()  # the dispatcher may be waiting with nothing due
        logger.info("wallet sandbox: notification %s attempt %d for trade %s: %s",
                    delivery.notify_id, number, delivery.fields.get("trade_no", ""),
                    "success" if ok else f"status {status}")

    def _signed(self, delivery: Delivery) -> dict[str, str]:
        state = self._state
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
