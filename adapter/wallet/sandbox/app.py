"""The sandbox's HTTP face: /gateway.do, the wallet's login and cashier pages, bills, inboxes,
and the /_sandbox/ helpers for tests and demos.

Responses follow Alipay's shape: ``{"<method_with_underscores>_response": {...}, "sign": "..."}``
where ``sign`` is SHA256withRSA by the platform key over the exact inner JSON text emitted.
Errors found before the request is authenticated (missing or bad app_id, signature, method)
are answered unsigned, as the gateway does; every answer after that is signed. An oauth.token
failure comes under ``error_response``, as Alipay's does.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, abort, jsonify, redirect, render_template_string, request

from adapter.registry.sandbox import registry_blueprint
from adapter.wallet.sandbox import keys
from adapter.wallet.sandbox.bill import bill_zip
from adapter.wallet.sandbox.common import append_query, register_fault_routes, safe_redirect
from adapter.wallet.sandbox.money import parse_yuan, yuan
from adapter.wallet.sandbox.protocol import GatewayError
from adapter.wallet.sandbox.state import SandboxState
from adapter.wallet.sandbox.templates import AUTHORIZE_PAGE, CASHIER_PAGE, PAID_PAGE
from adapter.wallet.sandbox.trades import Trade
from adapter.wallet.sandbox.users import DEFAULT_TEST_USER_PREFIX

logger = logging.getLogger(__name__)

Handler = Callable[[SandboxState, dict[str, str], dict[str, Any]], dict[str, Any]]


def _oauth_token(state: SandboxState, params: dict[str, str], biz: dict[str, Any]) -> dict:
    # alipay.system.oauth.token takes grant_type/code as request parameters, not biz_content.
    grant = params.get("grant_type", "")
    if grant == "authorization_code":
        return state.exchange_auth_code(params.get("code", ""))
    if grant == "refresh_token":
        return state.refresh(params.get("refresh_token", ""))
    raise GatewayError("isv.grant-type-invalid", "grant_type无效", code="40002",
                       msg="Invalid Arguments")


def _user_info(state: SandboxState, params: dict[str, str], biz: dict[str, Any]) -> dict:
    return state.user_info(params.get("auth_token", ""))


def _create(state: SandboxState, params: dict[str, str], biz: dict[str, Any]) -> dict:
    return state.create_trade(biz, notify_url=params.get("notify_url", ""))


METHODS: dict[str, Handler] = {
    "alipay.system.oauth.token": _oauth_token,
    "alipay.user.info.share": _user_info,
    "alipay.trade.create": _create,
    "alipay.trade.query": lambda s, p, b: s.query_trade(b),
    "alipay.trade.close": lambda s, p, b: s.close_trade(b),
    "alipay.trade.refund": lambda s, p, b: s.refund(b),
    "alipay.trade.fastpay.refund.query": lambda s, p, b: s.query_refund(b),
    "alipay.open.public.message.single.send": lambda s, p, b: s.send_message(b),
    "alipay.data.dataservice.bill.downloadurl.query": lambda s, p, b: s.bill_url(b),
}


def _system_error(method: str) -> GatewayError:
    # Alipay: 20000 "Service Currently Unavailable"; the trade APIs name it ACQ.SYSTEM_ERROR.
    if method.startswith("alipay.trade."):
        return GatewayError("ACQ.SYSTEM_ERROR", "系统错误", code="20000",
                            msg="Service Currently Unavailable")
    return GatewayError("isp.unknow-error", "系统繁忙", code="20000",
                        msg="Service Currently Unavailable")


def _answer(state: SandboxState, key: str, inner: dict[str, Any], signed: bool) -> Response:
    # The inner object is serialised once; the signature covers exactly that text.
    text = json.dumps(inner, ensure_ascii=False, separators=(",", ":"))
    body = f'{{"{key}":{text}'
    if signed:
        body += f',"sign":"{keys.sign(text, state.platform_private_key)}"'
    body += "}"
    return Response(body, content_type="application/json; charset=utf-8")


def _error(state: SandboxState, key: str, error: GatewayError) -> Response:
    return _answer(state, key, error.body(), signed=error.signed)


def create_sandbox_app(state: SandboxState) -> Flask:
    """The wallet sandbox as a Flask app over ``state``."""
    app = Flask(__name__)
    app.config["SANDBOX_STATE"] = state
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    # The SMS inbox and health card registry real-name binding reaches (adapter/registry/).
    app.register_blueprint(registry_blueprint())

    @app.post("/gateway.do")
    def gateway() -> Response:
        # Alipay accepts the common parameters in the query string and the rest in the form.
        params = {**request.args.to_dict(), **request.form.to_dict()}
        method = params.get("method", "")
        key = (method.replace(".", "_") + "_response") if method in METHODS else "error_response"
        try:
            biz = _authenticate(state, params)
        except GatewayError as exc:
            logger.info("wallet sandbox: %s refused: %s", method or "request", exc.sub_code)
            return _error(state, key, exc)
        if state.latency_ms:
            time.sleep(state.latency_ms / 1000)
        timeout = state.roll(state.timeout_rate)
        system_error = state.roll(state.system_error_rate)
        if system_error and not state.system_error_applies:
            logger.info("wallet sandbox: injected SYSTEM_ERROR (not applied) for %s", method)
            return _error(state, key, _system_error(method))
        try:
            result = METHODS[method](state, params, biz)
            inner: dict[str, Any] = {"code": "10000", "msg": "Success", **result}
            if method == "alipay.system.oauth.token":
                # oauth.token's success has no code/msg in Alipay's answers; its errors do.
                inner = result
            response = _answer(state, key, inner, signed=True)
        except GatewayError as exc:
            if method == "alipay.system.oauth.token":
                key = "error_response"
            logger.info("wallet sandbox: %s answered %s %s", method, exc.code, exc.sub_code)
            response = _error(state, key, exc)
        if timeout:
            # Applied, then the answer is late: the client has given up and must query.
            logger.info("wallet sandbox: injected timeout for %s", method)
            time.sleep(state.timeout_seconds)
        if system_error:
            logger.info("wallet sandbox: injected SYSTEM_ERROR (applied) for %s", method)
            return _error(state, key, _system_error(method))
        return response

    # Alipay's user-authorisation page is /oauth2/publicAppAuthorize.htm; /oauth/authorize is
    # the sandbox's older name for it, kept as an alias.
    @app.get("/oauth2/publicAppAuthorize.htm")
    @app.get("/oauth/authorize")
    def authorize_page() -> str:
        app_id, redirect_uri = request.args.get("app_id", ""), request.args.get("redirect_uri", "")
        _check_authorize(state, app_id, redirect_uri)
        with state.lock:
            users = list(state.users.values())
        return render_template_string(
            AUTHORIZE_PAGE, users=users, app_id=app_id, redirect_uri=redirect_uri,
            scope=request.args.get("scope", "auth_user"), state=request.args.get("state", ""),
        )

    @app.post("/oauth2/publicAppAuthorize.htm")
    @app.post("/oauth/authorize")
    def authorize() -> Response:
        form = request.form
        app_id, redirect_uri = form.get("app_id", ""), form.get("redirect_uri", "")
        _check_authorize(state, app_id, redirect_uri)
        try:
            code = state.issue_auth_code(form.get("user_id", ""))
        except KeyError:
            abort(400, "unknown user")
        # The wallet appends these to redirect_uri (publicAppAuthorize.htm behaviour).
        target = append_query(redirect_uri, {
            "app_id": app_id, "source": "alipay_wallet", "scope": form.get("scope", "auth_user"),
            "auth_code": code, "state": form.get("state", ""),
        })
        return redirect(target, code=302)

    @app.get("/cashier/<trade_no>")
    def cashier_page(trade_no: str) -> str:
        return_url = request.args.get("return_url", "")
        with state.lock:
            trade = _trade_or_404(state, trade_no=trade_no)
            view = trade.as_json()
        return render_template_string(CASHIER_PAGE, trade=view, return_url=return_url,
                                      payable=view["trade_status"] == "WAIT_BUYER_PAY")

    @app.post("/cashier/<trade_no>")
    def cashier_pay(trade_no: str) -> tuple[str, int] | str:
        return_url = request.form.get("return_url", "")
        if return_url and not safe_redirect(return_url):
            return_url = ""
        try:
            trade = state.pay(trade_no=trade_no)
        except GatewayError as exc:
            if exc.sub_code == "ACQ.TRADE_NOT_EXIST":
                abort(404)
            return render_template_string(PAID_PAGE, ok=False, message=exc.sub_msg,
                                          return_url=return_url, trade=None), 409
        return render_template_string(PAID_PAGE, ok=True, message="支付成功 / Paid",
                                      return_url=return_url, trade=trade.as_json())

    @app.get("/bill/<token>.csv.zip")
    def bill(token: str) -> Response:
        bill_date = state.bill_for_token(token)
        if bill_date is None:
            abort(404)
        name, data = bill_zip(state, bill_date)
        return Response(data, content_type="application/zip", headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
        })

    @app.get("/inbox/<user_id>")
    def inbox(user_id: str) -> Response:
        with state.lock:
            messages = list(state.inboxes.get(user_id, []))
        return jsonify(messages)

    _register_helpers(app, state)
    return app


def _authenticate(state: SandboxState, params: dict[str, str]) -> dict[str, Any]:
    """Check app_id, sign_type, signature and method; returns the parsed biz_content."""
    def refuse(code: str, msg: str, sub_code: str, sub_msg: str) -> GatewayError:
        return GatewayError(sub_code, sub_msg, code=code, msg=msg, signed=False)

    missing = "Missing Required Arguments"
    if not params.get("app_id"):
        raise refuse("40001", missing, "isv.missing-app-id", "缺少AppID参数")
    if not params.get("method"):
        raise refuse("40001", missing, "isv.missing-method", "缺少方法名参数")
    if not params.get("sign"):
        raise refuse("40001", missing, "isv.missing-signature", "缺少签名参数")
    invalid = "Invalid Arguments"
    if params["app_id"] != state.app_id:
        raise refuse("40002", invalid, "isv.invalid-app-id", "无效的AppID参数")
    if params.get("sign_type", "RSA2") != "RSA2":
        raise refuse("40002", invalid, "isv.invalid-signature-type", "无效的签名类型")
    if not keys.verify(keys.signing_content(params), params["sign"], state.app_public_key):
        raise refuse("40002", invalid, "isv.invalid-signature", "验签出错")
    if params["method"] not in METHODS:
        raise refuse("40002", invalid, "isv.invalid-method", "不存在的方法名")
    raw = params.get("biz_content", "")
    if not raw:
        return {}
    try:
        biz = json.loads(raw, parse_float=Decimal)
    except ValueError:
        raise refuse("40002", invalid, "isv.invalid-parameter", "biz_content 不是 JSON") from None
    if not isinstance(biz, dict):
        raise refuse("40002", invalid, "isv.invalid-parameter", "biz_content 不是 JSON 对象")
    return biz


def _check_authorize(state: SandboxState, app_id: str, redirect_uri: str) -> None:
    if app_id != state.app_id:
        abort(400, "unknown app_id")
    if not safe_redirect(redirect_uri):
        abort(400, "redirect_uri must be an http(s) URL")


def _trade_or_404(state: SandboxState, *, out_trade_no: str = "", trade_no: str = "") -> Trade:
    try:
        return state.find_trade(out_trade_no=out_trade_no, trade_no=trade_no)
    except GatewayError:
        abort(404)


def _register_helpers(app: Flask, state: SandboxState) -> None:
    """/_sandbox/: for tests and demos only; nothing here exists on the real platform."""

    @app.get("/_sandbox/users")
    def users() -> Response:
        with state.lock:
            return jsonify([u.as_json() for u in state.users.values()])

    @app.post("/_sandbox/users")
    def add_users() -> tuple[Response, int]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify({"error": "a JSON object {\"count\": N} is expected"}), 400
        try:
            made = state.add_test_users(body.get("count"),  # type: ignore[arg-type]
                                        body.get("prefix") or DEFAULT_TEST_USER_PREFIX)
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify({"user_ids": made}), 201

    @app.post("/_sandbox/auth_code")
    def auth_code() -> tuple[Response, int] | Response:
        user_id = str((request.get_json(silent=True) or {}).get("user_id", ""))
        try:
            return jsonify({"auth_code": state.issue_auth_code(user_id)})
        except KeyError:
            return jsonify({"error": "unknown user"}), 404

    register_fault_routes(app, state)

    @app.post("/_sandbox/pay/<out_trade_no>")
    def pay(out_trade_no: str) -> tuple[Response, int] | Response:
        try:
            trade = state.pay(out_trade_no=out_trade_no)
        except GatewayError as exc:
            status = 404 if exc.sub_code == "ACQ.TRADE_NOT_EXIST" else 409
            return jsonify({"error": exc.sub_code, "message": exc.sub_msg}), status
        return jsonify(trade.as_json())

    @app.post("/_sandbox/foreign_payment")
    def foreign_payment() -> tuple[Response, int]:
        body = request.get_json(silent=True) or {}
        try:
            trade = state.foreign_payment(str(body.get("out_trade_no") or ""),
                                          parse_yuan(body.get("total_amount")),
                                          str(body.get("buyer_id") or ""))
        except ValueError as exc:
            return jsonify({"error": "invalid", "message": str(exc)}), 400
        except GatewayError as exc:
            return jsonify({"error": exc.sub_code, "message": exc.sub_msg}), 409
        return jsonify(trade.as_json()), 201

    @app.post("/_sandbox/console_refund/<out_trade_no>")
    def console_refund(out_trade_no: str) -> tuple[Response, int]:
        body = request.get_json(silent=True) or {}
        try:
            trade = state.console_refund(out_trade_no, parse_yuan(body.get("refund_amount")),
                                         str(body.get("out_request_no") or ""))
        except ValueError as exc:
            return jsonify({"error": "invalid", "message": str(exc)}), 400
        except GatewayError as exc:
            status = 404 if exc.sub_code == "ACQ.TRADE_NOT_EXIST" else 409
            return jsonify({"error": exc.sub_code, "message": exc.sub_msg}), status
        return jsonify(trade.as_json()), 201

    @app.post("/_sandbox/finish/<out_trade_no>")
    def finish(out_trade_no: str) -> tuple[Response, int] | Response:
        try:
            trade = state.finish(out_trade_no)
        except GatewayError as exc:
            status = 404 if exc.sub_code == "ACQ.TRADE_NOT_EXIST" else 409
            return jsonify({"error": exc.sub_code, "message": exc.sub_msg}), status
        return jsonify(trade.as_json())

    @app.get("/_sandbox/trades/<out_trade_no>")
    def trade(out_trade_no: str) -> Response:
        with state.lock:
            return jsonify(_trade_or_404(state, out_trade_no=out_trade_no).as_json())

    @app.get("/_sandbox/notifications")
    def notifications() -> Response:
        return jsonify(state.notifier.log())

    @app.get("/_sandbox/platform_public_key")
    def platform_public_key() -> Response:
        return Response(state.platform_public_pem, content_type="text/plain; charset=ascii")

    app.jinja_env.filters["yuan"] = yuan
