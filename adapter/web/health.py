"""Liveness and readiness: /healthz (the process answers) and /readyz (it can do its work).

/readyz tells the public only up or down per dependency: the database (asked now), the HIS and
each wallet (from the worker's recent link checks and the outbox's real exchanges, recorded in
link_state: a HIS that accepts connections and closes them is down). Addresses, error details
and latencies go to /metrics and the status page, never here.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from adapter.links import link_readiness, wallet_link

logger = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

# A link check older than this many check intervals says nothing (its worker may be gone).
STALE_AFTER_CHECKS = 3


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """The process is alive."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Up or down for the database, the HIS and each wallet; 503 unless all are up."""
    runtime = current_app.extensions["adapter"]
    checks: dict[str, dict[str, bool]] = {}
    # A HIS whose profile allows no check query is left out (nothing would ever say it is up).
    his = ["his"] if runtime.profile.link_check != "none" else []
    links = [*his, *(wallet_link(platform) for platform in runtime.wallets)]
    try:
        with runtime.session_factory() as session:
            session.execute(text("SELECT 1"))
            checks["database"] = {"up": True}
            max_age = dt.timedelta(
                seconds=STALE_AFTER_CHECKS * runtime.config.link_check_interval)
            ready = link_readiness(session, runtime.clock.now(), max_age, links)
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        logger.warning("readiness: database check failed: %s", type(exc).__name__)
        checks["database"] = {"up": False}
        ready = dict.fromkeys(links, False)
    checks.update({name: {"up": up} for name, up in ready.items()})
    ok = all(c["up"] for c in checks.values())
    return jsonify(status="ready" if ok else "not ready", checks=checks), 200 if ok else 503


def init_app(app: Flask) -> None:
    """Register the health endpoints."""
    app.register_blueprint(bp)
