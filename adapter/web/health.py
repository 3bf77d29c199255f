"""Liveness and readiness: /healthz (the process answers) and /readyz (it can do its work)."""

from __future__ import annotations

import logging
import socket
import threading
import time

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from adapter.config import Address

logger = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

_HIS_CHECK_TTL = 5.0  # seconds; a readiness probe every second must not hammer the HIS
_his_cache: dict[str, tuple[float, bool, str]] = {}
_his_lock = threading.Lock()


def his_link_up(address: Address, timeout: float = 1.0) -> tuple[bool, str]:
    """Whether the HIS accepts a TCP connection on its MLLP port (cached a few seconds)."""
    key = str(address)
    now = time.monotonic()
    with _his_lock:
        cached = _his_cache.get(key)
        if cached and now - cached[0] < _HIS_CHECK_TTL:
            return cached[1], cached[2]
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout):
            result = (True, "connected")
    except OSError as exc:
        result = (False, exc.strerror or type(exc).__name__)
    with _his_lock:
        _his_cache[key] = (now, *result)
    return result


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """The process is alive."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """The database answers and the HIS link is up; 503 otherwise, naming what is down."""
    runtime = current_app.extensions["adapter"]
    checks: dict[str, dict[str, object]] = {}
    try:
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = {"up": True}
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        logger.warning("readiness: database check failed: %s", type(exc).__name__)
        checks["database"] = {"up": False, "detail": type(exc).__name__}
    up, detail = his_link_up(runtime.config.his_mllp)
    checks["his"] = {"up": up, "detail": detail, "address": str(runtime.config.his_mllp)}
    ready = all(c["up"] for c in checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503


def init_app(app: Flask) -> None:
    """Register the health endpoints."""
    app.register_blueprint(bp)
