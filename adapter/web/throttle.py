"""Throttles (Flask-Limiter): how often one client IP and one signed-in account may sign in,
book, pay and read slots, and how many refused notices one IP may post to /notify/<platform>.

The limits are applied here, from outside the views, to the endpoints they guard (a renamed
endpoint fails the app's start rather than losing its throttle). Rates come from the
configuration (ADAPTER_THROTTLE_*); counts live in memory:// for the embedded setup and in Redis
(ADAPTER_THROTTLE_STORAGE) when several processes serve the web role. An answer past a limit is
429 with Retry-After and, under /api/v1, the API's error shape in the patient's language.
ADAPTER_THROTTLE=off switches it all off (benchmarks that play hundreds of patients from one
address).
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, current_app, jsonify, request
from flask_limiter import Limiter, RateLimitExceeded

from adapter.i18n import N_
from adapter.web.api.errors import patient_account_id, say

logger = logging.getLogger(__name__)

# endpoint -> the group whose rates guard it (the Throttles fields <group>_per_ip/_per_account)
GUARDED = {
    "api.session.create_session": "sign_in",
    "api.bookings.create_booking": "booking",
    "api.payments.create_payment": "payment",
    "api.slots.slots": "slots",
    # Staff sign-in per client IP, besides each account's lockout (adapter/staff/accounts.py):
    # guessing across many user names from one address is slowed too.
    "admin.login": "sign_in",
}
NOTIFY = "notify.receive"

TOO_MANY = N_("操作太频繁，请{seconds}秒后再试。")


def signed_in_account() -> int | None:
    """The signed-in wallet account of this request, resolved as signed_in() resolves it."""
    return patient_account_id()


def _by_ip() -> str:
    return request.remote_addr or "unknown"


def _by_account() -> str:
    return f"account:{signed_in_account()}"


def _anonymous() -> bool:
    return signed_in_account() is None


def _refused(response: Response) -> bool:
    # Refused or too large; a notice the platform signed is answered 200 and never counts.
    return response.status_code in (400, 413)


def _too_many(exc: RateLimitExceeded) -> Response:
    limiter: Limiter = current_app.extensions["adapter_limiter"]
    breached = limiter.current_limit
    seconds = max(1, int(breached.reset_at - time.time())) if breached else 60
    logger.info("throttled %s at %s (%s)", request.endpoint, _by_ip(), exc.description)
    if request.blueprint and request.blueprint.split(".")[0] == "api":
        response = jsonify(error="throttle.too_many", message=say(TOO_MANY, seconds=seconds))
    else:
        response = Response("too many requests\n", mimetype="text/plain")
    response.status_code = 429
    response.headers["Retry-After"] = str(seconds)
    return response


def init_app(app: Flask) -> None:
    """Guard the endpoints (call after every blueprint is registered)."""
    config = app.extensions["adapter"].config
    if not config.throttle:
        logger.warning("throttles are off (ADAPTER_THROTTLE=off)")
        return
    if config.environment == "production" and config.throttle_storage.startswith("memory"):
        logger.warning("throttles count in each process (ADAPTER_THROTTLE_STORAGE is memory://):"
                       " with several workers or instances, give them a shared redis:// store")
    limiter = Limiter(
        key_func=_by_ip, storage_uri=config.throttle_storage,
        key_prefix=config.throttle_key_prefix, strategy="fixed-window", headers_enabled=True,
        # The store being down must not stop patients booking: count in this process meanwhile.
        in_memory_fallback_enabled=True, swallow_errors=True,
    )
    limiter.init_app(app)
    app.extensions["adapter_limiter"] = limiter
    app.register_error_handler(RateLimitExceeded, _too_many)
    rates = config.throttles
    for endpoint, group in GUARDED.items():
        view = app.view_functions[endpoint]
        per_ip = limiter.shared_limit(getattr(rates, f"{group}_per_ip"), scope=f"{group}:ip",
                                      key_func=_by_ip)
        per_account = limiter.shared_limit(
            getattr(rates, f"{group}_per_account"), scope=f"{group}:account",
            key_func=_by_account, exempt_when=_anonymous)
        app.view_functions[endpoint] = per_account(per_ip(view))
    app.view_functions[NOTIFY] = limiter.shared_limit(
        rates.notify_refused_per_ip, scope="notify:ip", key_func=_by_ip,
        deduct_when=_refused)(app.view_functions[NOTIFY])
