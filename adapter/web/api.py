"""The JSON API for the patient pages: /api/v1 (described by /api/v1/openapi.json).

Views only parse, call one use case and translate the result; a refusal comes back as
``{"error": code, "message": text}`` in the patient's language (zh-CN unless they ask for en).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request, session
from flask.typing import ResponseReturnValue

from adapter.identity import Dependant, Refusal
from adapter.models import Patient
from adapter.patients import add_dependant, list_patients, sign_in_with_wallet
from adapter.ports import WalletRefused, WalletUnavailable
from adapter.web.openapi import OPENAPI

logger = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def locale() -> str:
    """zh-CN by default; en when the patient's browser or ?lang= asks for it."""
    asked = request.args.get("lang") or (request.accept_languages.best_match(["zh", "en"]) or "")
    return "en" if asked.startswith("en") else "zh-CN"


def error(code: str, message: str, status: int) -> ResponseReturnValue:
    """The one error shape of the API."""
    return jsonify(error=code, message=message), status


def refused(refusal: Refusal, status: int = 422) -> ResponseReturnValue:
    """A rule said no: its code and the sentence a patient understands."""
    return error(refusal.code, refusal.message(locale()), status)


def _runtime() -> Any:  # noqa: ANN401
    return current_app.extensions["adapter"]


def _today() -> dt.date:
    return dt.datetime.now(_runtime().config.tz).date()


def signed_in(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """Require a patient session; the view gets the wallet account id."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:  # noqa: ANN401
        account_id = session.get("account_id")
        if not isinstance(account_id, int):
            message = "请先登录" if locale() == "zh-CN" else "Please sign in first"
            return error("session.required", message, 401)
        return view(account_id, *args, **kwargs)

    return wrapper


def patient_json(patient: Patient) -> dict[str, Any]:
    """A patient as the pages show them: masked document and phone, never the full number."""
    return {
        "id": patient.id,
        "relation": patient.relation,
        "name": patient.name,
        "document_type": patient.document_type,
        "document_number": patient.document_masked,
        "birth_date": patient.birth_date.isoformat() if patient.birth_date else None,
        "sex": patient.sex,
        "phone": patient.phone_masked,
    }


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI description of /api/v1."""
    return jsonify(OPENAPI)


@bp.post("/session")
def create_session() -> ResponseReturnValue:
    """Wallet auth_code in, patient session out."""
    body = request.get_json(silent=True) or {}
    auth_code = body.get("auth_code")
    if not isinstance(auth_code, str) or not auth_code:
        return error("auth_code.required", "auth_code is required", 400)
    runtime = _runtime()
    try:
        with runtime.session_factory.begin() as db:
            signed = sign_in_with_wallet(db, runtime.wallet, runtime.protector, auth_code,
                                         _today())
            patients = [patient_json(p) for p in list_patients(db, signed.account_id)]
    except Refusal as refusal:
        return refused(refusal)
    except WalletRefused as exc:
        logger.info("sign-in refused by the wallet: %s %s", exc.code, exc.sub_code)
        message = ("授权已失效，请重新登录" if locale() == "zh-CN"
                   else "The sign-in has expired. Please sign in again.")
        return error("auth_code.invalid", message, 401)
    except WalletUnavailable:
        message = ("支付宝暂时无法访问，请稍后再试" if locale() == "zh-CN"
                   else "The wallet cannot be reached right now. Please try again shortly.")
        return error("wallet.unavailable", message, 503)
    session.clear()
    session["account_id"] = signed.account_id
    session.permanent = True
    return jsonify(certified=signed.is_certified, patients=patients), 201


@bp.delete("/session")
def delete_session() -> ResponseReturnValue:
    """Sign out."""
    session.clear()
    return "", 204


@bp.get("/patients")
@signed_in
def get_patients(account_id: int) -> ResponseReturnValue:
    """The signed-in user's patients (self and dependants)."""
    with _runtime().session_factory() as db:
        return jsonify(patients=[patient_json(p) for p in list_patients(db, account_id)])


@bp.post("/patients")
@signed_in
def post_patient(account_id: int) -> ResponseReturnValue:
    """Add a dependant (a child needs relation "child" and the guardian's consent)."""
    body = request.get_json(silent=True) or {}
    fields = ("name", "document_type", "document_number", "relation")
    if not all(isinstance(body.get(f), str) for f in fields):
        return error("patient.fields", f"{', '.join(fields)} are required strings", 400)
    birth_date = None
    if body.get("birth_date"):
        try:
            birth_date = dt.date.fromisoformat(str(body["birth_date"]))
        except ValueError:
            return error("birth_date.format", "birth_date must be YYYY-MM-DD", 400)
    dependant = Dependant(
        name=body["name"], document_type=body["document_type"],
        document_number=body["document_number"], relation=body["relation"],
        guardian_consent=body.get("guardian_consent") is True, birth_date=birth_date,
    )
    phone = body.get("phone") if isinstance(body.get("phone"), str) else ""
    runtime = _runtime()
    try:
        with runtime.session_factory.begin() as db:
            patient = add_dependant(db, runtime.protector, account_id, dependant, _today(),
                                    phone=phone)
            result = patient_json(patient)
    except Refusal as refusal:
        return refused(refusal)
    return jsonify(result), 201


def init_app(app: Flask) -> None:
    """Register the API."""
    app.register_blueprint(bp)
