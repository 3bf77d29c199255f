"""Signing staff in and out of /admin/."""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from adapter.identity.sessions import key_id
from adapter.refusals import Refusal
from adapter.staff.accounts import LockoutPolicy, StaffRole, sign_in
from adapter.staff.audit import Action, record
from adapter.staff.sessions import end_staff_session, start_staff_session
from adapter.web.admin.guard import (
    SIGNED_IN,
    STAFF_COOKIE,
    bp,
    clear_staff_cookie,
    current_staff,
    public,
    remote,
    requires,
    runtime,
    set_staff_cookie,
    staff,
)
from adapter.web.h5 import html_lang

# Bounds of the form's fields (what a browser sends is untrusted): longer is refused unread.
MAX_USERNAME, MAX_PASSWORD = 64, 256


def _next_page(default: str) -> str:
    # Only a path of this blueprint: an absolute or protocol-relative URL would make the
    # sign-in page an open redirect.
    wanted = request.values.get("next", "")
    if wanted.startswith("/admin/") and not wanted.startswith("//") and "\\" not in wanted:
        return wanted
    return default


def _home(role: str) -> str:
    return url_for("admin.doctor_results_page" if role == StaffRole.DOCTOR else "admin.dashboard")


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> ResponseReturnValue:
    """The sign-in form; a good password opens a staff session."""
    if request.method == "GET":
        user = current_staff()
        if user is not None:
            return redirect(_home(user.role))
        return render_template("admin/login.html", error="", next=_next_page(""))
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    rt = runtime()
    now = rt.clock.now()
    refusal: Refusal | None = None
    if not username or not password or len(username) > MAX_USERNAME \
            or len(password) > MAX_PASSWORD:
        refusal = Refusal("staff.bad_credentials")
    else:
        with rt.session_factory.begin() as db:
            try:
                user = sign_in(db, username, password, lockout=LockoutPolicy.of(rt.config),
                               now=now, remote=remote())
                # A session this browser had before ends: no cookie of it outlives a sign-in.
                end_staff_session(db, request.cookies.get(STAFF_COOKIE, "")[:100], now=now)
                token = start_staff_session(db, user, key=key_id(current_app.secret_key or ""),
                                            now=now)
            except Refusal as exc:  # the failure and its audit row are committed
                refusal = exc
    if refusal is not None:
        status = 429 if refusal.code == "staff.locked" else 401
        return render_template("admin/login.html", error=refusal.message(html_lang()),
                               username=username[:MAX_USERNAME], next=_next_page("")), status
    response = redirect(_next_page(_home(user.role)), code=303)
    set_staff_cookie(response, token)
    return response


@bp.post("/logout")
@requires(SIGNED_IN)
def logout() -> ResponseReturnValue:
    """End this staff session everywhere its cookie was copied."""
    rt = runtime()
    now = rt.clock.now()
    with rt.session_factory.begin() as db:
        end_staff_session(db, request.cookies.get(STAFF_COOKIE, ""), now=now)
        record(db, staff().username, Action.SIGN_OUT, f"staff:{staff().id}", remote(), now)
    response = redirect(url_for("admin.login"), code=303)
    clear_staff_cookie(response)
    return response

