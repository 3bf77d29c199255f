"""Session: a wallet auth_code in, a patient session out; signing out; the wallet's login URL."""

from __future__ import annotations

import logging
import secrets

from flask import Blueprint, jsonify, session
from flask.typing import ResponseReturnValue

from adapter.i18n import N_
from adapter.identity.patients import list_patients, sign_in_with_wallet
from adapter.identity.sessions import end_session, start_session
from adapter.ports import WalletRefused, WalletUnavailable
from adapter.refusals import Refusal
from adapter.web.api.errors import (
    SESSION_FIELD,
    error,
    now,
    refused,
    runtime,
    say,
    session_key_id,
    today,
    wallet_unavailable,
)
from adapter.web.api.patients import patient_json
from adapter.web.api.schemas import LoginUrlQuery, SessionBody
from adapter.web.api.validation import body, query

logger = logging.getLogger(__name__)

bp = Blueprint("session", __name__)


@bp.post("/session")
def create_session() -> ResponseReturnValue:
    """Wallet auth_code in, patient session out."""
    try:
        asked = body(SessionBody)
    finally:  # a state is used once, even by a malformed request
        expected = session.pop("login_state", None)
        platform = session.pop("login_platform", None)
    auth_code = asked.auth_code
    if (not expected or not secrets.compare_digest(asked.state, expected)
            or asked.platform not in ("", platform)):
        return error("login.state_mismatch", say(N_("登录已失效，请重新登录")), 400)
    rt = runtime()
    # The wallet whose sign-in page /session/login-url handed out with this state: the
    # account is that wallet's, and so are its trades and messages.
    wallet = rt.wallets.get(platform) or rt.wallet
    try:
        with rt.session_factory.begin() as db:
            signed = sign_in_with_wallet(db, wallet, rt.protector, auth_code, today(),
                                         now=now())
            patients = [patient_json(p) for p in list_patients(db, signed.account_id)]
            previous = session.get(SESSION_FIELD)
            if isinstance(previous, str):  # signing in again: the old session ends
                end_session(db, previous, now=now())
            # A server-side session: the cookie carries only its random token.
            token = start_session(db, signed.account_id, key=session_key_id(), now=now())
    except Refusal as refusal:
        return refused(refusal)
    except WalletRefused as exc:
        logger.info("sign-in refused by the wallet: %s %s", exc.code, exc.sub_code)
        return error("auth_code.invalid", say(N_("授权已失效，请重新登录")), 401)
    except WalletUnavailable:
        return wallet_unavailable(wallet)
    session.clear()
    session[SESSION_FIELD] = token
    session.permanent = True
    return jsonify(certified=signed.is_certified, patients=patients), 201


@bp.delete("/session")
def delete_session() -> ResponseReturnValue:
    """Sign out: the session ends on the server, so a copied cookie is dead too."""
    token = session.get(SESSION_FIELD)
    if isinstance(token, str):
        with runtime().session_factory.begin() as db:
            end_session(db, token, now=now())
    session.clear()
    return "", 204


@bp.get("/session/login-url")
def login_url() -> ResponseReturnValue:
    """The wallet's authorize URL that redirects back to redirect_uri with an auth_code."""
    rt = runtime()
    asked = query(LoginUrlQuery)
    redirect_uri, platform = asked.redirect_uri, asked.platform
    if platform and platform not in rt.wallets:
        return error("platform.unknown", say(N_("没有这个钱包")), 400)
    wallet = rt.wallet_for(platform) if platform else rt.wallet
    # OAuth 2.0 state (RFC 6749 section 10.12): POST /session accepts an auth_code only with
    # the state this browser was given, so nobody can sign a victim into the attacker's
    # account (whose dependants the victim would then add, handing over their data).
    state = secrets.token_urlsafe(16)
    session["login_state"], session["login_platform"] = state, wallet.platform
    return jsonify(url=wallet.sign_in_url(redirect_uri, state), state=state,
                   platform=wallet.platform)
