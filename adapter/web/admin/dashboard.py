"""The dashboard: links, today's figures, backlogs and counters, refreshing itself."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from adapter.staff.accounts import Permission
from adapter.web.admin.guard import bp, requires


@bp.get("/")
@requires(Permission.STATUS)
def dashboard() -> ResponseReturnValue:
    """The status page."""
    return render_template("admin/dashboard.html", title=gettext("运行状态"))
