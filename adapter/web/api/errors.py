"""The one error shape of /api/v1, the patient's language, and the patient session guard.

A refusal comes back as ``{"error": code, "message": text}`` in the patient's language (zh-CN
unless they ask for en), translated through the same catalogues as the pages (adapter.i18n).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, jsonify, request, session
from flask.typing import ResponseReturnValue

from adapter.i18n import N_, translate
from adapter.identity.sessions import SessionPolicy, key_id, resolve_session
from adapter.ports import WalletGateway
from adapter.refusals import Refusal


def runtime() -> Any:  # noqa: ANN401 - the adapter.runtime.Runtime of this app
    """The runtime this app was built with."""
    return current_app.extensions["adapter"]


def now() -> dt.datetime:
    """The runtime clock's time."""
    return runtime().clock.now()


def today() -> dt.date:
    """Today in the hospital's zone."""
    return now().astimezone(runtime().config.tz).date()


def locale() -> str:
    """zh-CN by default; en when the patient's browser or ?lang= asks for it."""
    asked = request.args.get("lang") or (request.accept_languages.best_match(["zh", "en"]) or "")
    return "en" if asked.startswith("en") else "zh-CN"


def say(text: str, **params: Any) -> str:  # noqa: ANN401
    """A Chinese source string in the patient's language."""
    return translate(text, locale()).format(**params)


def error(code: str, message: str, status: int) -> ResponseReturnValue:
    """The one error shape of the API."""
    return jsonify(error=code, message=message), status


def refused(refusal: Refusal, status: int = 422) -> ResponseReturnValue:
    """A rule said no: its code and the sentence a patient understands."""
    return error(refusal.code, refusal.message(locale()), status)


def wallet_unavailable(wallet: WalletGateway) -> ResponseReturnValue:
    """The wallet could not say (outcome unknown): try again shortly."""
    return error("wallet.unavailable",
                 say(N_("{wallet}暂时无法访问，请稍后再试"), wallet=wallet.display_name(locale())),
                 503)


def account_wallet(rt: Any, account_id: int) -> WalletGateway:  # noqa: ANN401 - a Runtime
    """The wallet the account signed in with (never the default: a WeChat account's trades,
    pushes and refusals are WeChat Pay's)."""
    from adapter.models import WalletAccount

    with rt.session_factory() as db:
        return rt.wallet_for(db.get(WalletAccount, account_id).platform)


# The key of the patient session token in Flask's signed cookie (adapter.identity.sessions).
SESSION_FIELD = "sid"


def session_key_id() -> str:
    """The fingerprint of this app's secret key that sessions are bound to."""
    return key_id(str(current_app.secret_key or ""))


def patient_account_id() -> int | None:
    """The wallet account of this request's live patient session, resolved once per request."""
    if "patient_account_id" not in g:
        token = session.get(SESSION_FIELD)
        account_id = None
        if isinstance(token, str) and token:
            rt = runtime()
            with rt.session_factory.begin() as db:
                account_id = resolve_session(db, token, key=session_key_id(),
                                             policy=SessionPolicy.of(rt.config), now=now())
        g.patient_account_id = account_id
    return g.patient_account_id


def signed_in(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """Require a patient session; the view gets the wallet account id."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:  # noqa: ANN401
        account_id = patient_account_id()
        if account_id is None:
            return error("session.required", say(N_("请先登录")), 401)
        return view(account_id, *args, **kwargs)

    return wrapper
