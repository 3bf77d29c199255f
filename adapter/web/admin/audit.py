"""The audit trail page (admins only), searchable by who, what, on what and when."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from adapter.staff.accounts import Permission
from adapter.staff.audit import Action, AuditQuery, search_audit
from adapter.web.admin.guard import bp, requires, runtime
from adapter.web.admin.messages import BadQuery, field, search_time


@bp.get("/audit")
@requires(Permission.AUDIT)
def audit() -> ResponseReturnValue:
    """The newest staff actions matching the search."""
    title = gettext("操作记录")
    actions = [a.value for a in Action]
    try:
        action = field("action")
        if action and action not in actions:
            raise BadQuery("action")
        query = AuditQuery(actor=field("actor"), action=action, target=field("target"),
                           since=search_time("since"), until=search_time("until"))
    except BadQuery as exc:
        return render_template("admin/audit.html", title=title, rows=[], total=0,
                               actions=actions, error=gettext("搜索条件“{field}”无效。").format(
                                   field=exc.args[0])), 400
    with runtime().session_factory() as db:
        rows, total = search_audit(db, query)
    return render_template("admin/audit.html", title=title, rows=rows, total=total,
                           actions=actions, error="")
