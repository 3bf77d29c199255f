"""Wallet notifications: /notify/alipay.

Keep the raw request first (it is untrusted), verify, then apply inside one transaction with the
trade row locked; ``success`` is answered only after that commit (DESIGN invariant 4). A failure
is recorded and answered ``fail`` so the platform retries; a forged or foreign notice is refused
and left for admins on the status page.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, current_app, request

from adapter.db import utcnow
from adapter.models import WalletNotification
from adapter.payments import NoticeRefused, apply_payment_notification
from adapter.ports import InvalidNotification
from adapter.wallet.alipay.notify import decode_form, read_notice

logger = logging.getLogger(__name__)

bp = Blueprint("notify", __name__, url_prefix="/notify")


def _answer(text: str, status: int = 200) -> Response:
    # Alipay reads the body: exactly "success" stops its retries, anything else retries.
    return Response(text, status=status, mimetype="text/plain")


def _record(notification_id: int, outcome: str, reason: str = "") -> None:
    runtime = current_app.extensions["adapter"]
    with runtime.session_factory.begin() as session:
        row = session.get(WalletNotification, notification_id)
        row.outcome, row.reason = outcome, reason[:200]


@bp.post("/alipay")
def alipay() -> Response:
    """Receive an Alipay trade notification."""
    runtime = current_app.extensions["adapter"]
    raw = request.get_data(cache=False)
    with runtime.session_factory.begin() as session:
        row = WalletNotification(platform="alipay", raw=raw, peer=request.remote_addr or "",
                                 received_at=utcnow())
        session.add(row)
        session.flush()
        notification_id = row.id
    try:
        params = decode_form(raw)
        notice = read_notice(params, runtime.alipay_public_key)
    except InvalidNotification as exc:
        logger.warning("notification %s refused: %s", notification_id, exc.reason)
        _record(notification_id, "refused", exc.reason)
        return _answer("fail", 400)
    try:
        with runtime.session_factory.begin() as session:
            outcome = apply_payment_notification(
                session, notice,
                app_id=runtime.config.alipay_app_id,
                merchant_id=runtime.config.alipay_seller_id,
                on_paid=runtime.paid_handlers,
            )
            row = session.get(WalletNotification, notification_id)
            row.notify_id, row.out_trade_no, row.outcome = (
                notice.notice_id, notice.out_trade_no, outcome)
    except NoticeRefused as exc:
        logger.warning("notification %s for trade %s refused: %s", notification_id,
                       notice.out_trade_no, exc.reason)
        _record(notification_id, "refused", exc.reason)
        return _answer("fail", 400)
    except Exception:
        logger.exception("notification %s failed; the platform will retry", notification_id)
        _record(notification_id, "error", "internal error")
        return _answer("fail", 500)
    return _answer("success")


def init_app(app: Flask) -> None:
    """Register the notification endpoints."""
    app.register_blueprint(bp)
