"""What both wallet sandboxes' notifiers share: a due-time queue of deliveries to notify URLs,
one thread that works it, a pool that posts, and retries on the platform's schedule.

A platform's notifier subclasses :class:`DeliveryQueue`, names its schedule and implements
:meth:`DeliveryQueue._post` (build, sign and send one attempt; say whether it was accepted).
Attempts of one notification keep its id; each attempt is built afresh (a new signature time).
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

logger = logging.getLogger(__name__)

OUT_OF_ORDER_MAX_DELAY_SECONDS = 60.0  # scaled: how long a first attempt may be held back
# Wallet platforms post many notifications at once; one at a time would make a sandbox the
# bottleneck of a morning rush (each post waits for the merchant's answer, and at 7:30 the
# merchant answers slowly: 8 at a time held each notification back by seconds).
NOTIFY_CONCURRENCY = 32
_BEIJING = dt.timezone(dt.timedelta(hours=8))


@dataclass
class Delivery:
    """One notification to one notify_url and its attempts (a duplicate copy is its own)."""

    notify_id: str
    notify_url: str
    fields: dict[str, Any]
    label: dict[str, Any] = field(default_factory=dict)  # what the log shows of the fields
    copy: int = 1
    state: str = "pending"  # pending | delivered | failed
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The delivery log entry served at /_sandbox/notifications."""
        return {
            "notify_id": self.notify_id,
            "notify_url": self.notify_url,
            "copy": self.copy,
            **self.label,
            "state": self.state,
            "attempts": list(self.attempts),
        }


@dataclass
class PostResult:
    """One attempt's outcome: accepted (retries stop), HTTP status, answer text, log extras."""

    accepted: bool
    status: int
    answer: str
    extra: dict[str, Any] = field(default_factory=dict)


class Knobs(Protocol):
    """What the queue reads of a sandbox's state: its fault knobs, dice and clock scale."""

    duplicate_notifications: bool
    out_of_order_notifications: bool
    notify_http_timeout: float
    rng: random.Random

    def scaled(self, seconds: float) -> float:
        """A documented platform delay, compressed by the time scale."""
        ...


class DeliveryQueue:
    """A due-time queue of deliveries, the thread that works it and the pool that posts them."""

    RETRY_SCHEDULE_SECONDS: tuple[float, ...] = ()  # waits after attempt 1, 2, ...
    THREAD_NAME = "sandbox-notify"

    def __init__(self, state: Knobs) -> None:
        self._state = state
        self._pool = ThreadPoolExecutor(NOTIFY_CONCURRENCY, thread_name_prefix="sandbox-post")
        self._local = threading.local()
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Delivery]] = []
        self._seq = itertools.count()
        self._log: list[Delivery] = []
        self._thread: threading.Thread | None = None
        self._stopping = False

    def new_id(self) -> str:
        """A fresh notification id (the platform's own format where it has one)."""
        return secrets.token_hex(16)

    def enqueue(self, notify_url: str, fields: dict[str, Any],
                label: dict[str, Any] | None = None, delay: float = 0.0) -> str:
        """Schedule a new notification ``delay`` seconds from now; returns its id."""
        notify_id = self.new_id()
        copies = 2 if self._state.duplicate_notifications else 1
        with self._cond:
            for copy in range(1, copies + 1):
                wait = delay
                if self._state.out_of_order_notifications:
                    # Hold first attempts back a random while: later events may overtake.
                    wait += self._state.scaled(
                        self._state.rng.uniform(0, OUT_OF_ORDER_MAX_DELAY_SECONDS))
                delivery = Delivery(notify_id, notify_url, dict(fields), dict(label or {}),
                                    copy=copy)
                self._log.append(delivery)
                self._push(time.monotonic() + wait, delivery)
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

    def _post(self, delivery: Delivery, http: requests.Session) -> PostResult:
        """Build, sign and send one attempt of ``delivery``."""
        raise NotImplementedError

    # -- the thread ------------------------------------------------------------------------

    def _push(self, due: float, delivery: Delivery) -> None:
        heapq.heappush(self._queue, (due, next(self._seq), delivery))

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._stopping:
            self._thread = threading.Thread(target=self._run, name=self.THREAD_NAME,
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
        started = dt.datetime.now(_BEIJING).isoformat(timespec="milliseconds")
        http = getattr(self._local, "http", None)
        if http is None:  # a requests.Session is not shared between threads
            http = self._local.http = requests.Session()
        try:
            result = self._post(delivery, http)
        except requests.RequestException as exc:
            result = PostResult(False, 0, f"error: {type(exc).__name__}")
        with self._cond:
            delivery.attempts.append({"at": started, "status": result.status,
                                      "answer": result.answer, **result.extra})
            number = len(delivery.attempts)
            if result.accepted:
                delivery.state = "delivered"
            elif number > len(self.RETRY_SCHEDULE_SECONDS):
                delivery.state = "failed"
            else:
                wait = self._state.scaled(self.RETRY_SCHEDULE_SECONDS[number - 1])
                self._push(time.monotonic() + wait, delivery)
                self._cond.notify_all()  # the dispatcher may be waiting with nothing due
        logger.info("wallet sandbox: notification %s attempt %d: %s", delivery.notify_id,
                    number, "accepted" if result.accepted else f"status {result.status}")
