"""Wallet notifications: /notify/<platform>, one view for every configured wallet.

Read the body within a bound (413 past ADAPTER_NOTIFY_MAX_BYTES, unread), verify the platform's
signature, keep the signed notice raw (it is the evidence if anything fails after), then apply
it inside one transaction with the trade row locked; ``success`` is answered only after that
commit (DESIGN invariant 4). A failure is recorded and answered so the platform retries. A
notice that is not signed is refused and recorded without its body, and only the latest
ADAPTER_NOTIFY_REFUSED_KEPT of those are kept: anyone can post them, and a flood of them must
not fill the disk. How a platform wants to be answered is the wallet's business.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, abort, current_app, request
from sqlalchemy import delete, select

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


def _read_body(limit: int) -> bytes | None:
    """The request body, or None when it is longer than ``limit`` (read no further)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    # A chunked body announces no length: read at most one byte past the bound.
    while size <= limit:
        chunk = request.stream.read(min(16 * 1024, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks) if size <= limit else None


def _keep_unsigned(wallet: WalletGateway, size: int, reason: str) -> None:
    """Record a notice nobody signed, without its body, and drop the oldest such records past
    ADAPTER_NOTIFY_REFUSED_KEPT (signed notices are never dropped here)."""
    runtime = current_app.extensions["adapter"]
    unsigned = (WalletNotification.outcome == "refused") & WalletNotification.raw.is_(None)
    with runtime.session_factory.begin() as session:
        row = WalletNotification(platform=wallet.platform, raw=None, size=size,
                                 peer=request.remote_addr or "", received_at=utcnow(),
                                 outcome="refused", reason=reason[:200])
        session.add(row)
        session.flush()
        oldest_kept = session.scalar(
            select(WalletNotification.id).where(unsigned)
            .order_by(WalletNotification.id.desc())
            .offset(runtime.config.notify_refused_kept - 1).limit(1))
        if oldest_kept is not None:
            session.execute(delete(WalletNotification).where(
                unsigned, WalletNotification.id < oldest_kept))
        notification_id = row.id
    logger.warning("notification %s from %s refused, body not kept: %s", notification_id,
                   row.peer, reason)


def _keep_signed(wallet: WalletGateway, raw: bytes, outcome: str = "received",
                 reason: str = "") -> int:
    runtime = current_app.extensions["adapter"]
    with runtime.session_factory.begin() as session:
        row = WalletNotification(platform=wallet.platform, raw=raw, size=len(raw),
                                 peer=request.remote_addr or "", received_at=utcnow(),
                                 outcome=outcome, reason=reason[:200])
        session.add(row)
        session.flush()
        return row.id


@bp.post("/<platform>")
def receive(platform: str) -> Response:
    """Receive a wallet's trade notification (an unknown platform is 404, nothing stored)."""
    runtime = current_app.extensions["adapter"]
    try:
        wallet = runtime.wallet_for(platform)
    except KeyError:
        abort(404)
    limit = runtime.config.notify_max_bytes
    raw = _read_body(limit)
    if raw is None:
        _keep_unsigned(wallet, request.content_length or limit + 1,
                       f"body larger than {limit} bytes")
        answer = _answer(wallet, "refused")
        answer.status_code = 413
        return answer
    try:
        notice = wallet.read_notification(raw, request.headers)
    except InvalidNotification as exc:
        if not exc.signed:
            _keep_unsigned(wallet, len(raw), exc.reason)
            return _answer(wallet, "refused")
        notification_id = _keep_signed(wallet, raw, "refused", exc.reason)
        logger.warning("notification %s refused: %s", notification_id, exc.reason)
        return _answer(wallet, "refused")
    # Signed: kept raw before it is applied, so a crash in between leaves the evidence.
    notification_id = _keep_signed(wallet, raw)
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
