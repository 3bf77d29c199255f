"""Staff accounts for admins: the list, adding one (a doctor with their HIS code), disabling."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from adapter.refusals import Refusal
from adapter.staff.accounts import Permission, StaffRole, create_account, list_accounts
from adapter.staff.sessions import disable_staff_account
from adapter.web.admin.guard import ID, bp, remote, requires, runtime, staff
from adapter.web.h5 import html_lang

MAX_FIELD = 256  # the longest field of the form (a password)


def _page(error: str = "", status: int = 200) -> ResponseReturnValue:
    rt = runtime()
    with rt.session_factory() as db:
        accounts = list_accounts(db)
    return render_template("admin/staff.html", title=gettext("员工账户"), accounts=accounts,
                           roles=StaffRole.ALL, doctors=rt.mappings.doctors.values(),
                           error=error), status


@bp.get("/staff")
@requires(Permission.STAFF)
def staff_accounts() -> ResponseReturnValue:
    """Every staff account."""
    return _page()


@bp.post("/staff")
@requires(Permission.STAFF)
def staff_add() -> ResponseReturnValue:
    """Add a staff account; the password is typed by the admin (and never shown again)."""
    fields = {name: request.form.get(name, "") for name in
              ("username", "role", "doctor_code", "password")}
    if any(len(value) > MAX_FIELD for value in fields.values()):
        return _page(Refusal("staff.password_too_long", maximum=MAX_FIELD).message(html_lang()),
                     400)
    rt = runtime()
    try:
        with rt.session_factory.begin() as db:
            create_account(db, fields["username"].strip(), fields["password"], fields["role"],
                           now=rt.clock.now(), doctor_code=fields["doctor_code"] or None,
                           doctor_codes=rt.mappings.doctors.keys(), actor=staff().username,
                           remote=remote())
    except Refusal as exc:
        return _page(exc.message(html_lang()), 400)
    flash(gettext("已添加员工账户 {username}。").format(username=fields["username"].strip()))
    return redirect(url_for("admin.staff_accounts"), code=303)


@bp.post(f"/staff/<{ID}:account_id>/disable")
@requires(Permission.STAFF)
def staff_disable(account_id: int) -> ResponseReturnValue:
    """Disable an account: its sessions end now. Admins cannot disable themselves."""
    if account_id == staff().id:
        return _page(gettext("不能停用自己的账户。"), 409)
    rt = runtime()
    try:
        with rt.session_factory.begin() as db:
            disable_staff_account(db, account_id, now=rt.clock.now(), actor=staff().username,
                                  remote=remote())
    except LookupError:
        return _page(gettext("找不到这个员工账户。"), 404)
    flash(gettext("账户已停用，其登录已全部结束。"))
    return redirect(url_for("admin.staff_accounts"), code=303)
