"""Liveness and readiness: /healthz (the process answers) and /readyz (it can do its work)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from adapter.config import Address

logger = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

_HIS_CHECK_TTL = 5.0  # seconds; a readiness probe every second must not hammer the HIS
_his_cache: dict[str, tuple[float, Check]] = {}
_his_lock = threading.Lock()


@dataclass(frozen=True)
class Check:
    """One dependency's state: up or down, and for the metrics (never the public) what was
    seen and how long the check took. ``detail`` never names an address."""

    up: bool
    detail: str
    seconds: float


def his_link_up(address: Address, timeout: float = 1.0) -> Check:
    """Whether the HIS accepts a TCP connection on its MLLP port (cached a few seconds)."""
    key = str(address)
    now = time.monotonic()
    with _his_lock:
        cached = _his_cache.get(key)
        if cached and now - cached[0] < _HIS_CHECK_TTL:
            return cached[1]
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout):
            up, detail = True, "connected"
    except OSError as exc:
        up, detail = False, exc.strerror or type(exc).__name__
    result = Check(up, detail, time.monotonic() - now)
    with _his_lock:
        _his_cache[key] = (now, result)
    return result


def check_database(runtime: Any) -> Check:  # noqa: ANN401 - adapter.runtime.Runtime
    """The database answers a query."""
    started = time.monotonic()
    try:
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        # The exception's type only: its text may carry the database's host and user.
        return Check(False, type(exc).__name__, time.monotonic() - started)
    return Check(True, "ok", time.monotonic() - started)


def check_his(runtime: Any) -> Check:  # noqa: ANN401 - adapter.runtime.Runtime
    """The HIS accepts connections on its MLLP port."""
    return his_link_up(runtime.config.his_mllp)


# What /readyz checks, by the name it reports; another dependency is one more entry.
CHECKS: dict[str, Callable[[Any], Check]] = {
    "database": check_database,
    "his": check_his,
}


def run_checks(runtime: Any) -> dict[str, Check]:  # noqa: ANN401 - adapter.runtime.Runtime
    """Every readiness check, by name."""
    results = {}
    for name, check in CHECKS.items():
        result = results[name] = check(runtime)
        logger.debug("readiness: %s %s in %.1f ms (%s)", name, "up" if result.up else "down",
                     result.seconds * 1000, result.detail)
    return results


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """The process is alive."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Up or down per dependency; 503 when one is down. What was seen, and where, goes to the
    metrics (adapter_dependency_*) and the log, not to whoever asks."""
    results = run_checks(current_app.extensions["adapter"])
    ready = all(result.up for result in results.values())
    return jsonify(status="ready" if ready else "not ready",
                   checks={name: {"up": result.up} for name, result in results.items()}), \
        200 if ready else 503


def init_app(app: Flask) -> None:
    """Register the health endpoints."""
    app.register_blueprint(bp)
