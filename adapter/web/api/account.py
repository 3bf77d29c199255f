"""The account's real-name binding: its status, starting a binding, the SMS code, a new code.
An account its wallet did not certify is bound here before it books, pays or reads results."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from adapter.i18n import N_
from adapter.identity.binding import (
    HEALTH_CARD,
    BindingRequest,
    BindingStatus,
    binding_status,
    confirm_binding,
    resend_code,
    start_binding,
)
from adapter.ports import HisUnavailable
from adapter.ports_identity import RegistryUnavailable
from adapter.refusals import Refusal
from adapter.web.api.errors import error, now, refused, runtime, say, signed_in, today
from adapter.web.api.schemas_binding import BindingBody, BindingConfirmBody
from adapter.web.api.validation import body

bp = Blueprint("account", __name__)

REFUSAL_STATUS = {"binding.already_certified": 409, "binding.bound_elsewhere": 409,
                  "binding.nothing_pending": 409}


def binding_json(status: BindingStatus) -> dict[str, Any]:
    """The binding as the page shows it (the phone masked)."""
    tz = runtime().config.tz

    def iso(moment: Any) -> str | None:  # noqa: ANN401 - a datetime or None
        return moment.astimezone(tz).isoformat() if moment else None

    return {"certified": status.certified, "bound_by": status.bound_by,
            "bound_at": iso(status.bound_at), "methods": list(status.methods),
            "confirmation": status.confirmation, "phone": status.phone_masked,
            "code_expires_at": iso(status.code_expires_at), "resend_at": iso(status.resend_at),
            "tries_left": status.tries_left}


def _unavailable(exc: Exception, method: str) -> ResponseReturnValue:
    if isinstance(exc, HisUnavailable):
        return error("his.unavailable", say(N_("医院系统暂时无法访问，请稍后再试")), 503)
    if method == HEALTH_CARD:
        return error("health_card.unavailable",
                     say(N_("电子健康卡服务暂时无法访问，请稍后再试")), 503)
    return error("sms.unavailable", say(N_("短信暂时无法发送，请稍后重新获取验证码")), 503)


@bp.get("/account/binding")
@signed_in
def get_binding(account_id: int) -> ResponseReturnValue:
    """Whether the account is bound, how, and the code a started binding waits for."""
    rt = runtime()
    with rt.session_factory() as db:
        return jsonify(binding_json(binding_status(db, rt.binding, account_id, now())))


@bp.post("/account/binding")
@signed_in
def post_binding(account_id: int) -> ResponseReturnValue:
    """Start a binding: bound at once, or a code sent to the phone the HIS has."""
    asked = body(BindingBody)
    request = BindingRequest(
        method=asked.method, name=asked.name or "", document_type=asked.document_type or "",
        document_number=asked.document_number or "", phone=asked.phone, card=asked.card or "")
    try:
        status = start_binding(runtime(), account_id, request, today(), now=now())
    except Refusal as refusal:
        return refused(refusal, REFUSAL_STATUS.get(refusal.code, 422))
    except (HisUnavailable, RegistryUnavailable) as exc:
        return _unavailable(exc, asked.method)
    return jsonify(binding_json(status))


@bp.post("/account/binding/confirm")
@signed_in
def post_binding_confirm(account_id: int) -> ResponseReturnValue:
    """Confirm a started binding with the SMS code."""
    asked = body(BindingConfirmBody)
    try:
        status = confirm_binding(runtime(), account_id, asked.sms_code, today(), now=now())
    except Refusal as refusal:
        return refused(refusal, REFUSAL_STATUS.get(refusal.code, 422))
    return jsonify(binding_json(status))


@bp.post("/account/binding/resend")
@signed_in
def post_binding_resend(account_id: int) -> ResponseReturnValue:
    """Send a new code for the started binding (not before resend_at)."""
    try:
        status = resend_code(runtime(), account_id, now=now())
    except Refusal as refusal:
        return refused(refusal, REFUSAL_STATUS.get(refusal.code, 422))
    except RegistryUnavailable as exc:
        return _unavailable(exc, "")
    return jsonify(binding_json(status))
