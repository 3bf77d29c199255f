"""Waking the outbox runner when work is queued: PostgreSQL's LISTEN on the channel that
adapter.outbox notifies at each commit that queued an item.

Polling stays the floor (the scheduler runs the outbox every second, and a run's threads look
again at least every second): a lost connection or a missed notification costs at most that
delay, never an item. SQLite has no notifications; there the poll is all there is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine

from adapter.outbox import CHANNEL

logger = logging.getLogger(__name__)

RECONNECT_SECONDS = 5.0


class OutboxWakeup:
    """A thread that calls ``wake`` whenever new outbox work has committed."""

    def __init__(self, engine: Engine, wake: Callable[[], None]) -> None:
        self._url = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False)
        self._wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-wakeup", daemon=True)

    def start(self) -> None:
        """Listen from now on (returns at once)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop listening (within the notifications' timeout)."""
        self._stop.set()

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        for _ in connection.notifies(timeout=1.0, stop_after=1):
                            self._wake()
            except Exception as exc:  # noqa: BLE001 - the poll still delivers meanwhile
                logger.warning("outbox wake-up: not listening (%s); retrying in %.0f s",
                               type(exc).__name__, RECONNECT_SECONDS)
                self._stop.wait(RECONNECT_SECONDS)
