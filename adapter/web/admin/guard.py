"""The admin blueprint's guard: every view under /admin/ declares what it needs (``requires``
or ``public``); a view that declares nothing is refused to everyone, so a route added without
thought is closed, not open.

Without a live staff session a page (GET) sends the browser to the sign-in page and an action
or a JSON endpoint answers 401; a signed-in user whose role lacks the permission gets 403. Every
form carries a CSRF token (Flask-WTF's CSRFProtect, checked here for this blueprint only: the
patient API has its own Origin guard). Responses are never cached and carry the H5 pages'
security headers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from flask_wtf.csrf import CSRFError, CSRFProtect

from adapter.identity.sessions import key_id
from adapter.refusals import Refusal
from adapter.staff.accounts import Permission, StaffUser
from adapter.staff.sessions import resolve_staff_session, staff_policy
from adapter.web.h5 import CONTENT_SECURITY_POLICY, html_lang

logger = logging.getLogger(__name__)

bp = Blueprint("admin", __name__, url_prefix="/admin")
csrf = CSRFProtect()

STAFF_COOKIE = "staff_session"
# The converter of every id in a route: a row id is a signed 64-bit integer (BIGINT), so a
# larger number is no row (404) rather than a database error.
ID = "int(max=9223372036854775807)"
SIGNED_IN = "signed_in"  # requires(SIGNED_IN): any staff role
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Refusal codes and the status each answers with (others: 400).
REFUSAL_STATUS = {"result.unknown": 404, "alert.unknown": 404, "staff.not_your_patient": 403,
                  "result.not_held": 409, "reconciliation.unknown": 404}

View = TypeVar("View", bound=Callable[..., Any])


def requires(permission: Permission | str, *, json: bool = False) -> Callable[[View], View]:
    """Declare what a view needs; ``json`` views answer 401 instead of redirecting."""
    def mark(view: View) -> View:
        view.staff_permission = permission  # type: ignore[attr-defined]
        view.staff_json = json  # type: ignore[attr-defined]
        return view
    return mark


def public(view: View) -> View:
    """The sign-in page: the only view answered without a session."""
    view.staff_public = True  # type: ignore[attr-defined]
    return view


def staff() -> StaffUser:
    """The signed-in staff user of this request (the guard resolved it)."""
    return g.staff


def remote() -> str:
    """The client's address, as the audit trail keeps it."""
    return request.remote_addr or ""


def runtime() -> Any:  # noqa: ANN401 - the adapter.runtime.Runtime
    """The runtime of this app."""
    return current_app.extensions["adapter"]


def current_staff() -> StaffUser | None:
    """The staff user of the request's cookie, if its session is live."""
    token = request.cookies.get(STAFF_COOKIE, "")
    if not token or len(token) > 100:
        return None
    rt = runtime()
    with rt.session_factory.begin() as db:
        return resolve_staff_session(db, token, key=key_id(current_app.secret_key or ""),
                                     policy=staff_policy(rt.config), now=rt.clock.now())


def refused(exc: Refusal, status: int | None = None) -> ResponseReturnValue:
    """A rule said no: the page says why, in the reader's language."""
    status = status or REFUSAL_STATUS.get(exc.code, 400)
    return render_template("admin/refused.html", message=exc.message(html_lang()),
                           title=gettext("无法办理")), status


@bp.before_request
def _guard() -> ResponseReturnValue | None:
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None:
        return None  # 404 / 405 as Flask decides
    if getattr(view, "staff_public", False):
        if request.method not in SAFE_METHODS:
            csrf.protect()
        return None
    user = current_staff()
    if user is None:
        if request.method in SAFE_METHODS and not getattr(view, "staff_json", False):
            return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
        return _answer(401, gettext("请先登录。"))
    g.staff = user  # a refusal page still offers the pages the role may open
    permission = getattr(view, "staff_permission", None)
    if permission is None or (permission != SIGNED_IN and not user.may(permission)):
        logger.info("staff account %s refused %s", user.id, request.endpoint)
        return _answer(403, gettext("您的角色无权访问此页面或执行此操作。"))
    if request.method not in SAFE_METHODS:
        csrf.protect()
    return None


def _answer(status: int, message: str) -> ResponseReturnValue:
    if request.accept_mimetypes.best == "application/json" or request.path.endswith(".json"):
        return {"error": status, "message": message}, status
    return render_template("admin/refused.html", message=message,
                           title=gettext("无法办理")), status


@bp.errorhandler(CSRFError)
def _csrf_refused(exc: CSRFError) -> ResponseReturnValue:
    logger.info("admin: CSRF check failed on %s (%s)", request.endpoint, exc.description)
    return _answer(400, gettext("页面已过期或请求不是从本站页面发出的，请刷新页面后重试。"))


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def set_staff_cookie(response: Response, token: str) -> None:
    """The staff session's cookie: only sent to /admin, never to scripts or other sites."""
    rt = runtime()
    response.set_cookie(STAFF_COOKIE, token, max_age=int(rt.config.staff_session_max_hours * 3600),
                        path="/admin", httponly=True, samesite="Strict",
                        secure=current_app.config["SESSION_COOKIE_SECURE"])


def clear_staff_cookie(response: Response) -> None:
    """Forget the staff session's cookie in this browser."""
    response.delete_cookie(STAFF_COOKIE, path="/admin", httponly=True, samesite="Strict",
                           secure=current_app.config["SESSION_COOKIE_SECURE"])
