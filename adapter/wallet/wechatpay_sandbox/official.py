"""The sandbox's WeChat side beyond APIv3: the official-account APIs (网页授权 OAuth, access
tokens, template messages), the pay confirmation inside WeChat, inboxes, and the /_sandbox/
helpers for tests and demos.

JSAPI payment happens inside WeChat: the merchant's page calls WeixinJSBridge
``getBrandWCPayRequest`` with appId, timeStamp, nonceStr, package ("prepay_id=..."), signType RSA
and paySign (the merchant's SHA256withRSA over "appId\\ntimeStamp\\nnonceStr\\npackage\\n"). A
browser has no WeixinJSBridge, so the sandbox offers GET /sandbox/cashier?prepay_id=...&
return_url=... where the payer confirms; given the bridge's parameters too, it checks paySign as
WeChat does. The official-account APIs answer HTTP 200 with {"errcode", "errmsg"} on errors.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, abort, jsonify, redirect, render_template_string, request

from adapter.wallet.sandbox import keys
from adapter.wallet.sandbox.common import append_query, safe_redirect
from adapter.wallet.sandbox.money import yuan
from adapter.wallet.wechatpay_sandbox import crypto
from adapter.wallet.wechatpay_sandbox.protocol import NOTPAY, ApiError
from adapter.wallet.wechatpay_sandbox.state import OfficialAccountError, WechatSandboxState
from adapter.wallet.wechatpay_sandbox.templates import AUTHORIZE_PAGE, CASHIER_PAGE, RESULT_PAGE

logger = logging.getLogger(__name__)

USER_COOKIE = "wechat_sandbox_openid"  # the WeChat user "signed in" on this browser


def _errcode(exc: OfficialAccountError) -> Response:
    return jsonify({"errcode": exc.errcode, "errmsg": exc.errmsg})


def _pay_sign_ok(state: WechatSandboxState, args: dict[str, str], prepay_id: str) -> bool:
    """WeixinJSBridge's check of the merchant's paySign (when the page passed the parameters)."""
    package = f"prepay_id={prepay_id}"
    if args.get("appId") != state.appid or args.get("package") != package:
        return False
    message = f"{args['appId']}\n{args.get('timeStamp', '')}\n{args.get('nonceStr', '')}\n" \
              f"{package}\n"
    return args.get("signType") == "RSA" and crypto.verify(message, args.get("paySign", ""),
                                                           state.merchant_public_key)


def register_official_routes(app: Flask, state: WechatSandboxState) -> None:
    """OAuth, tokens, template messages, the cashier, inboxes and the helpers."""
    app.jinja_env.filters["yuan"] = yuan

    def authorize_args(source: Any) -> tuple[str, str, str, str]:
        appid, redirect_uri = source.get("appid", ""), source.get("redirect_uri", "")
        if appid != state.appid:
            abort(400, "appid 参数错误")
        if not safe_redirect(redirect_uri):
            abort(400, "redirect_uri 参数错误")
        scope = source.get("scope", "snsapi_base")
        if scope not in ("snsapi_base", "snsapi_userinfo"):
            abort(400, "scope 参数错误")
        return appid, redirect_uri, scope, source.get("state", "")

    def back_with_code(openid: str, redirect_uri: str, state_param: str) -> Response:
        try:
            code = state.issue_code(openid)
        except KeyError:
            abort(400, "unknown user")
        response = redirect(append_query(redirect_uri, {"code": code, "state": state_param}),
                            code=302)
        response.set_cookie(USER_COOKIE, openid, httponly=True, samesite="Lax")
        return response

    @app.get("/connect/oauth2/authorize")
    def authorize_page() -> Response | str:
        if request.args.get("response_type", "code") != "code":
            abort(400, "response_type 参数错误")
        appid, redirect_uri, scope, state_param = authorize_args(request.args)
        # snsapi_base is silent in WeChat: the user already signed in to WeChat on this phone
        # (the cookie, or sandbox_openid for tests and demos) is sent back at once.
        chosen = request.args.get("sandbox_openid") or request.cookies.get(USER_COOKIE, "")
        if chosen in state.users and (scope == "snsapi_base"
                                      or "sandbox_openid" in request.args):
            return back_with_code(chosen, redirect_uri, state_param)
        with state.lock:
            users = list(state.users.values())
        return render_template_string(AUTHORIZE_PAGE, users=users, appid=appid,
                                      redirect_uri=redirect_uri, scope=scope,
                                      state=state_param, chosen=chosen)

    @app.post("/connect/oauth2/authorize")
    def authorize() -> Response:
        _, redirect_uri, _, state_param = authorize_args(request.form)
        return back_with_code(request.form.get("openid", ""), redirect_uri, state_param)

    @app.get("/sns/oauth2/access_token")
    def sns_access_token() -> Response:
        a = request.args
        try:
            return jsonify(state.exchange_code(a.get("appid", ""), a.get("secret", ""),
                                               a.get("code", ""), a.get("grant_type", "")))
        except OfficialAccountError as exc:
            return _errcode(exc)

    @app.get("/sns/userinfo")
    def sns_userinfo() -> Response:
        try:
            return jsonify(state.sns_userinfo(request.args.get("access_token", ""),
                                              request.args.get("openid", "")))
        except OfficialAccountError as exc:
            return _errcode(exc)

    @app.get("/cgi-bin/token")
    def cgi_token() -> Response:
        a = request.args
        try:
            return jsonify(state.cgi_token(a.get("grant_type", ""), a.get("appid", ""),
                                           a.get("secret", "")))
        except OfficialAccountError as exc:
            return _errcode(exc)

    @app.post("/cgi-bin/message/template/send")
    def template_send() -> Response:
        try:
            return jsonify(state.send_template(request.args.get("access_token", ""),
                                               request.get_json(silent=True, force=True)))
        except OfficialAccountError as exc:
            return _errcode(exc)

    @app.get("/sandbox/cashier")
    def cashier_page() -> tuple[str, int] | str:
        prepay_id = request.args.get("prepay_id", "")
        return_url = request.args.get("return_url", "")
        try:
            order = state.find_order(prepay_id=prepay_id)
        except ApiError:
            abort(404)
        if "paySign" in request.args and not _pay_sign_ok(state, request.args, prepay_id):
            return render_template_string(RESULT_PAGE, message="支付验证签名失败",
                                          return_url="", order=None), 400
        return render_template_string(CASHIER_PAGE, order=order, return_url=return_url,
                                      payable=order.state == NOTPAY)

    @app.post("/sandbox/cashier")
    def cashier_pay() -> tuple[str, int] | str:
        return_url = request.form.get("return_url", "")
        if return_url and not safe_redirect(return_url):
            return_url = ""
        try:
            order = state.pay(prepay_id=request.form.get("prepay_id", ""))
        except ApiError as exc:
            if exc.status == 404:
                abort(404)
            return render_template_string(RESULT_PAGE, message=exc.message,
                                          return_url=return_url, order=None), 409
        return render_template_string(RESULT_PAGE, message="支付成功 / Paid",
                                      return_url=return_url, order=order)

    @app.get("/inbox/<openid>")
    def inbox(openid: str) -> Response:
        with state.lock:
            return jsonify(list(state.inboxes.get(openid, [])))

    _register_helpers(app, state)


def _register_helpers(app: Flask, state: WechatSandboxState) -> None:
    """/_sandbox/: for tests and demos only; nothing here exists on the real platform."""

    @app.get("/_sandbox/users")
    def users() -> Response:
        with state.lock:
            return jsonify([u.as_json() for u in state.users.values()])

    @app.post("/_sandbox/oauth_code")
    def oauth_code() -> tuple[Response, int] | Response:
        openid = str((request.get_json(silent=True) or {}).get("openid", ""))
        try:
            return jsonify({"code": state.issue_code(openid)})
        except KeyError:
            return jsonify({"error": "unknown user"}), 404

    @app.post("/_sandbox/pay")
    def pay() -> tuple[Response, int] | Response:
        body = request.get_json(silent=True) or {}
        try:
            order = state.pay(out_trade_no=str(body.get("out_trade_no") or ""),
                              prepay_id=str(body.get("prepay_id") or ""))
        except ApiError as exc:
            return jsonify(exc.body()), 404 if exc.status == 404 else 409
        return jsonify(order.transaction())

    @app.get("/_sandbox/orders/<out_trade_no>")
    def order(out_trade_no: str) -> tuple[Response, int] | Response:
        try:
            found = state.find_order(out_trade_no=out_trade_no)
        except ApiError as exc:
            return jsonify(exc.body()), 404
        with state.lock:
            refunds = [found.refund_json(r) for r in found.refunds.values()]
            return jsonify({**found.transaction(), "prepay_id": found.prepay_id,
                            "notify_url": found.notify_url, "refunds": refunds})

    @app.get("/_sandbox/notifications")
    def notifications() -> Response:
        return jsonify(state.notifier.log())

    @app.get("/_sandbox/platform")
    def platform() -> Response:
        return jsonify({
            "mode": state.platform_mode, "public_key_id": state.public_key_id,
            "public_key": keys.public_pem(state.platform_private_key),
            "certificate_serial": state.certificate_serial,
            "certificate": crypto.certificate_pem(state.certificate),
        })
