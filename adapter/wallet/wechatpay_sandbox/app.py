"""The sandbox's APIv3 face: each merchant request's Authorization verified, each answer signed.

Every /v3/ request must carry ``Authorization: WECHATPAY2-SHA256-RSA2048 ...`` signed by the
merchant's API key over ``METHOD\\nURL\\ntimestamp\\nnonce\\nbody\\n`` (the URL as sent, query
included); a missing, malformed or wrong signature, a serial that is not the merchant's, or a
timestamp more than 5 minutes off is answered 401 SIGN_ERROR. Every answer (errors too) carries
the Wechatpay-* signature headers, but the bill file itself, which the documents verify by its
hash instead. Errors are ``{"code": ..., "message": ...}`` with the documented HTTP status.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request

from adapter.wallet.sandbox.common import register_fault_routes
from adapter.wallet.wechatpay_sandbox import crypto
from adapter.wallet.wechatpay_sandbox.bill import bill_file, bill_url
from adapter.wallet.wechatpay_sandbox.official import register_official_routes
from adapter.wallet.wechatpay_sandbox.protocol import (
    MAX_REQUEST_SKEW_SECONDS,
    ApiError,
    param_error,
    sign_error,
    system_error,
)
from adapter.wallet.wechatpay_sandbox.state import WechatSandboxState

logger = logging.getLogger(__name__)

Answer = tuple[int, dict[str, Any] | None]


def _signed(state: WechatSandboxState, status: int, payload: dict[str, Any] | None) -> Response:
    body = "" if payload is None else json.dumps(payload, ensure_ascii=False,
                                                 separators=(",", ":"))
    headers = state.signature_headers(body, request.headers.get("Wechatpay-Serial", ""))
    headers["Request-ID"] = crypto.nonce(24)
    return Response(body.encode("utf-8"), status=status, headers=headers,
                    content_type="application/json; charset=utf-8" if body else None)


def _authenticate(state: WechatSandboxState) -> None:
    params = crypto.parse_authorization(request.headers.get("Authorization", ""))
    if params is None:
        raise sign_error("Authorization 缺失或认证类型不是 WECHATPAY2-SHA256-RSA2048")
    for name in ("mchid", "nonce_str", "signature", "timestamp", "serial_no"):
        if not params.get(name):
            raise sign_error(f"Authorization 缺少 {name}")
    if params["mchid"] != state.mchid:
        raise ApiError(400, "MCH_NOT_EXISTS", "商户号不存在")
    if params["serial_no"].upper() != state.merchant_serial.upper():
        raise sign_error("商户证书序列号有误。请使用签名私钥匹配的证书序列号")
    try:
        skew = abs(time.time() - int(params["timestamp"]))
    except ValueError:
        raise sign_error("timestamp 不是整数秒") from None
    if skew > MAX_REQUEST_SKEW_SECONDS:
        raise sign_error("请求的时间戳与当前时间相差超过5分钟")
    # The URL as sent (werkzeug's RAW_URI keeps the client's own percent-encoding).
    url = request.environ.get("RAW_URI") or request.full_path.rstrip("?")
    message = crypto.request_message(request.method, url, params["timestamp"],
                                     params["nonce_str"], request.get_data(as_text=True))
    if not crypto.verify(message, params["signature"], state.merchant_public_key):
        raise sign_error("签名错误，请检查后再试")


def _json_body() -> dict[str, Any]:
    try:
        body = json.loads(request.get_data(as_text=True) or "null")
    except ValueError:
        raise param_error("请求体不是合法的JSON") from None
    if not isinstance(body, dict):
        raise param_error("请求体应为JSON对象")
    return body


def _check_mchid(state: WechatSandboxState, mchid: object) -> None:
    if not mchid:
        raise param_error("输入源“/query/mchid”映射到字段“mchid”必填性规则校验失败，此字段为必填项")
    if mchid != state.mchid:
        raise ApiError(403, "NO_AUTH", "商户号与请求的商户不一致")


def create_wechatpay_sandbox_app(state: WechatSandboxState) -> Flask:
    """The WeChat Pay sandbox as a Flask app over ``state``."""
    app = Flask(__name__)
    app.config["SANDBOX_STATE"] = state

    def api(rule: str, method: str) -> Callable[[Callable[..., Answer]], Callable[..., Response]]:
        def decorate(handler: Callable[..., Answer]) -> Callable[..., Response]:
            @functools.wraps(handler)
            def view(**kwargs: str) -> Response:
                try:
                    _authenticate(state)
                except ApiError as exc:
                    logger.info("wechatpay sandbox: %s refused: %s", request.path, exc.code)
                    return _signed(state, exc.status, exc.body())
                return _faulted(state, lambda: handler(**kwargs))

            app.add_url_rule(rule, endpoint=handler.__name__, view_func=view, methods=[method])
            return view
        return decorate

    @api("/v3/certificates", "GET")
    def certificates() -> Answer:
        return 200, state.certificates()

    @api("/v3/pay/transactions/jsapi", "POST")
    def jsapi() -> Answer:
        return 200, state.create_jsapi(_json_body())

    @api("/v3/pay/transactions/out-trade-no/<out_trade_no>", "GET")
    def query_by_out_trade_no(out_trade_no: str) -> Answer:
        _check_mchid(state, request.args.get("mchid"))
        return 200, state.query_order(out_trade_no=out_trade_no)

    @api("/v3/pay/transactions/id/<transaction_id>", "GET")
    def query_by_transaction_id(transaction_id: str) -> Answer:
        _check_mchid(state, request.args.get("mchid"))
        return 200, state.query_order(transaction_id=transaction_id)

    @api("/v3/pay/transactions/out-trade-no/<out_trade_no>/close", "POST")
    def close(out_trade_no: str) -> Answer:
        _check_mchid(state, _json_body().get("mchid"))
        state.close_order(out_trade_no)
        return 204, None

    @api("/v3/refund/domestic/refunds", "POST")
    def refund() -> Answer:
        return 200, state.refund(_json_body())

    @api("/v3/refund/domestic/refunds/<out_refund_no>", "GET")
    def query_refund(out_refund_no: str) -> Answer:
        return 200, state.query_refund(out_refund_no)

    @api("/v3/bill/tradebill", "GET")
    def tradebill() -> Answer:
        return 200, bill_url(state, request.args.to_dict())

    @app.get("/v3/billdownload/file")
    def bill_download() -> Response:
        try:
            _authenticate(state)
            data = bill_file(state, request.args.get("token", ""))
        except ApiError as exc:
            return _signed(state, exc.status, exc.body())
        return Response(data, content_type="application/octet-stream")

    register_official_routes(app, state)
    register_fault_routes(app, state)
    return app


def _faulted(state: WechatSandboxState, call: Callable[[], Answer]) -> Response:
    """Run an authenticated call with the fault knobs: latency, 429, late answers, 500."""
    if state.latency_ms:
        time.sleep(state.latency_ms / 1000)
    if state.roll(state.frequency_limit_rate):
        logger.info("wechatpay sandbox: injected FREQUENCY_LIMITED for %s", request.path)
        return _signed(state, 429, {"code": "FREQUENCY_LIMITED", "message": "频率超限"})
    timeout = state.roll(state.timeout_rate)
    failed = state.roll(state.system_error_rate)
    if failed and not state.system_error_applies:
        logger.info("wechatpay sandbox: injected SYSTEM_ERROR (not applied) for %s", request.path)
        return _signed(state, 500, system_error().body())
    try:
        status, payload = call()
    except ApiError as exc:
        logger.info("wechatpay sandbox: %s answered %s", request.path, exc.code)
        status, payload = exc.status, exc.body()
    if timeout:
        # Applied, then the answer is late: the client has given up and must query.
        logger.info("wechatpay sandbox: injected timeout for %s", request.path)
        time.sleep(state.timeout_seconds)
    if failed:
        logger.info("wechatpay sandbox: injected SYSTEM_ERROR (applied) for %s", request.path)
        return _signed(state, 500, system_error().body())
    return _signed(state, status, payload)
