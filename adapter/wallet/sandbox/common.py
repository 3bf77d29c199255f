"""What both wallet sandboxes (Alipay's and WeChat Pay's) share that is no platform's protocol:
fault knobs set from JSON, the compressed clock, seeded dice, redirect checks, and serving."""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer

logger = logging.getLogger(__name__)

# China has no daylight saving time: a fixed +08:00 is exact for Beijing time.
BEIJING = dt.timezone(dt.timedelta(hours=8), "CST")


class KnobbedState:
    """Fault knobs (plain attributes named in ``KNOBS``), the time scale, the dice, one lock.

    A subclass sets ``lock``, ``rng`` and ``notify_time_scale`` and names its knobs with their
    types; tests change them while the sandbox runs, or POST /_sandbox/faults.
    """

    KNOBS: dict[str, type] = {}
    lock: threading.RLock
    rng: random.Random
    notify_time_scale: float

    def set_knobs(self, values: dict[str, Any]) -> dict[str, Any]:
        """Set fault knobs from JSON; ValueError on an unknown knob or a wrong type."""
        parsed: dict[str, Any] = {}
        for name, value in values.items():
            kind = self.KNOBS.get(name)
            if kind is None:
                raise ValueError(f"unknown knob {name}")
            if kind is bool:
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be true or false")
                parsed[name] = value
            else:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{name} must be a number")
                if value < 0 or (name.endswith("_rate") and value > 1):
                    raise ValueError(f"{name} out of range")
                parsed[name] = kind(value)
        with self.lock:
            for name, value in parsed.items():
                setattr(self, name, value)
        logger.info("wallet sandbox: knobs set: %s", ", ".join(sorted(parsed)))
        return self.knobs()

    def knobs(self) -> dict[str, Any]:
        """The current fault knobs."""
        return {name: getattr(self, name) for name in self.KNOBS}

    def scaled(self, seconds: float) -> float:
        """A documented platform delay, compressed by ``notify_time_scale``."""
        return seconds * self.notify_time_scale

    def now(self) -> dt.datetime:
        """Beijing time, to the second, as the platforms report it."""
        return dt.datetime.now(BEIJING).replace(microsecond=0)

    def roll(self, rate: float) -> bool:
        """A seeded coin flip that lands True with probability ``rate``."""
        with self.lock:
            return rate > 0 and self.rng.random() < rate


def register_fault_routes(app: Flask, state: KnobbedState) -> None:
    """GET and POST /_sandbox/faults: read and set the knobs."""

    @app.get("/_sandbox/faults")
    def get_faults() -> Response:
        return jsonify(state.knobs())

    @app.post("/_sandbox/faults")
    def set_faults() -> tuple[Response, int] | Response:
        values = request.get_json(silent=True)
        if not isinstance(values, dict):
            return jsonify({"error": "a JSON object of knobs is expected"}), 400
        try:
            return jsonify(state.set_knobs(values))
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400


def safe_redirect(url: str) -> bool:
    """An absolute http(s) URL (where a sandbox page may send the browser back to)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def append_query(url: str, extra: dict[str, str]) -> str:
    """``url`` with ``extra`` appended to its query string."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(extra.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def serve_until_interrupted(server: BaseWSGIServer, close: Callable[[], None]) -> None:
    """Serve until Ctrl+C (or the process is stopped), then close the socket and ``close``."""
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        close()
