"""Future Hospital Adapter: HIS (HL7 v2.5 over MLLP) <-> mobile wallet bridge."""

from __future__ import annotations

import logging

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from adapter.config import Config, load_config
from adapter.runtime import Runtime

__version__ = "0.1.0"

logger = logging.getLogger(__name__)


def create_app(config: Config | None = None, runtime: Runtime | None = None) -> Flask:
    """Build the web application; configuration comes from ADAPTER_* unless given."""
    if runtime is None:
        runtime = Runtime.from_config(config or load_config())
    app = Flask(__name__)
    app.config["SECRET_KEY"] = runtime.config.secret_key or None
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = runtime.config.environment == "production"
    # The cookie lives as long as the longest session; the server decides whether the session
    # it names is still live (adapter.identity.sessions), so the cookie is not refreshed.
    app.config["PERMANENT_SESSION_LIFETIME"] = int(runtime.config.session_max_hours * 3600)
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    app.extensions["adapter"] = runtime
    if runtime.config.trusted_proxies:
        # The client's address as the trusted proxies saw it (throttles, notification peers).
        hops = runtime.config.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    from adapter.web import admin, api, h5, health, metrics, notify, throttle

    health.init_app(app)
    metrics.init_app(app)
    notify.init_app(app)
    api.init_app(app)
    h5.init_app(app)
    admin.init_app(app)
    throttle.init_app(app)  # last: it guards endpoints the blueprints above registered
    return app
