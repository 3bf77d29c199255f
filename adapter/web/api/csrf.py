"""Cross-site request forgery: every write to /api/v1 comes from the adapter's own pages.

The patient session is a cookie, which a browser attaches to a request another site makes it
send. A write (POST, PUT, PATCH, DELETE) is therefore refused unless

- its ``Origin`` (or, when a browser sends none, its ``Referer``) names one of the adapter's own
  origins: ADAPTER_PUBLIC_URL's, ADAPTER_ALLOWED_ORIGINS, and in the embedded setup (no
  ADAPTER_PUBLIC_URL) the origin the request was sent to; a request with neither header comes
  from no browser and carries no victim's cookie; and
- its body is declared ``application/json``: an HTML form can only send
  ``application/x-www-form-urlencoded``, ``multipart/form-data`` or ``text/plain``, and a
  cross-site ``fetch`` with a JSON content type needs a CORS preflight, which this app never
  grants.

This is OWASP's defence for JSON APIs (Cross-Site Request Forgery Prevention Cheat Sheet:
"Verifying Origin With Standard Headers" and "Employing Custom Request Headers for AJAX/API");
see docs/security.md. The wallet's server-to-server /notify/* is outside /api/v1 and verified by
signature instead.
"""

from __future__ import annotations

import logging

from flask import current_app, request
from flask.typing import ResponseReturnValue

from adapter.config import origin_of
from adapter.i18n import N_
from adapter.web.api.errors import error, say

logger = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def allowed_origins() -> set[str]:
    """The origins whose pages may write with the patient's cookie."""
    config = current_app.extensions["adapter"].config
    allowed = {config.public_origin, *config.allowed_origins}
    if not config.public_url:  # the embedded default: wherever the newcomer opened the pages
        allowed.add(origin_of(request.host_url))
    return allowed


def request_origin() -> str | None:
    """The origin the browser says the request comes from ("null" for an opaque one)."""
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin.strip().lower()
    referer = request.headers.get("Referer")
    if referer:
        return origin_of(referer) or "null"
    return None


def check_write() -> ResponseReturnValue | None:
    """before_request of /api/v1: refuse a cross-site write or a write that is not JSON."""
    if request.method not in WRITE_METHODS:
        return None
    origin = request_origin()
    if origin is not None and origin not in allowed_origins():
        logger.info("refused a %s to %s from a foreign origin", request.method, request.path)
        return error("origin.forbidden", say(N_("请求来源不被允许")), 403)
    if request.mimetype != "application/json":
        return error("content_type.unsupported",
                     say(N_("请求格式不支持，请以 JSON 发送（Content-Type: application/json）")),
                     415)
    return None
