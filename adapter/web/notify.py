"""Wallet notifications: /notify/<platform>, one view for every configured wallet.

Keep the raw request first (it is untrusted), verify, then apply inside one transaction with the
trade row locked; ``success`` is answered only after that commit (DESIGN invariant 4). A failure
is recorded and answered so the platform retries; a forged or foreign notice is refused and left
for admins on the status page. How a platform wants to be answered is the wallet's business.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, abort, current_app, request

from adapter.db import utcnow
from adapter.models import WalletNotification
from adapter.payments.notices import NoticeRefused, apply_payment_notification
from adapter.ports import InvalidNotification, WalletGateway

logger = logging.getLogger(__name__)

bp = Blueprint("notify", __name__, url_prefix="/notify")


def _answer(wallet: WalletGateway, outcome: str) -> Response:
    body, status, mimetype = wallet.notification_answer(outcome)
    return Response(body, status=status, mimetype=mimetype)


def _record(notification_id: int, outcome: str, reason: str = "") -> None:
    runtime = current_app.extensions["adapter"]
    with runtime.session_factory.begin() as session:
        row = session.get(WalletNotification, notification_id)
        row.outcome, row.reason = outcome, reason[:200]


@bp.post("/<platform>")
def receive(platform: str) -> Response:
    """Receive a wallet's trade notification (an unknown platform is 404, nothing stored)."""
    runtime = current_app.extensions["adapter"]
    try:
        wallet = runtime.wallet_for(platform)
    except KeyError:
        abort(404)
    raw = request.get_data(cache=False)
    with runtime.session_factory.begin() as session:
        row = WalletNotification(platform=wallet.platform, raw=raw,
                                 peer=request.remote_addr or "", received_at=utcnow())
        session.add(row)
        session.flush()
        notification_id = row.id
    try:
        notice = wallet.read_notification(raw)
    except InvalidNotification as exc:
        logger.warning("notification %s refused: %s", notification_id, exc.reason)
        _record(notification_id, "refused", exc.reason)
        return _answer(wallet, "refused")
    try:
        with runtime.session_factory.begin() as session:
            outcome = apply_payment_notification(
                session, notice,
                app_id=wallet.app_id,
                merchant_id=wallet.merchant_id,
                on_paid=runtime.paid_handlers,
                now=runtime.clock.now(),
            )
            row = session.get(WalletNotification, notification_id)
            row.notify_id, row.out_trade_no, row.outcome = (
                notice.notice_id, notice.out_trade_no, outcome)
    except NoticeRefused as exc:
        logger.warning("notification %s for trade %s refused: %s", notification_id,
                       notice.out_trade_no, exc.reason)
        _record(notification_id, "refused", exc.reason)
        return _answer(wallet, "refused")
    except Exception as exc:  # noqa: BLE001 - recorded and answered; the platform retries
        # The type only: a database error's text carries the statement's parameters.
        logger.error("notification %s failed (%s); the platform will retry", notification_id,
                     type(exc).__name__)
        _record(notification_id, "error", "internal error")
        return _answer(wallet, "error")
    return _answer(wallet, "success")


def init_app(app: Flask) -> None:
    """Register the notification endpoints."""
    app.register_blueprint(bp)
