"""The staff side under /admin/ (docs/staff.md): sign-in, the dashboard, critical alerts and
the doctor pages, in zh-CN and en like the patient pages.

Views only parse the request, call one use case of adapter/staff/ and render its answer; the
guard (guard.py) decides who may reach each of them.
"""

from __future__ import annotations

from flask import Flask

from adapter.web.admin import (  # noqa: F401 - they register the views
    audit,
    auth,
    dashboard,
    messages,
    reconciliation,
    results,
    staff,
    texts,
)
from adapter.web.admin.guard import bp, csrf


def init_app(app: Flask) -> None:
    """Register /admin/ and its CSRF protection (checked by the guard, for /admin/ only)."""
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    # A token lives as long as the browser's session cookie; the staff session's own timeouts
    # bound how long a form can be used.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf.init_app(app)
    app.register_blueprint(bp)
