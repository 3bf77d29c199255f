"""Results: the released results of the account's verified patients, one report, its file.

Every request is written to the audit trail (adapter.results.reading.record_view) in the
transaction that reads, refused ones too; whatever the reason a result is not shown, the
answer is the same 404, so a guessed id learns nothing.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.i18n import N_
from adapter.identity.binding import require_certified
from adapter.models import Patient, Result, ResultAttachment, ResultObservation
from adapter.refusals import Refusal
from adapter.results.announcing import report_path
from adapter.results.reading import (
    Access,
    Reason,
    TrendPoint,
    list_results,
    observations_of,
    open_file,
    open_result,
    record_view,
    trends,
)
from adapter.web.api.errors import error, now, patient_account_id, refused, runtime, say
from adapter.web.api.schemas import ResultFilePath, ResultPath
from adapter.web.api.validation import valid

bp = Blueprint("results", __name__)

NORMAL_FLAGS = ("", "N")


def _abnormal(flags: list[str]) -> bool:
    return any(flag.upper() not in NORMAL_FLAGS for flag in flags)


def _flags(row: ResultObservation) -> list[str]:
    return [flag for flag in row.abnormal_flags.split("~") if flag]


def _iso(moment: Any) -> str | None:  # noqa: ANN401 - a datetime or None
    return moment.astimezone(runtime().config.tz).isoformat() if moment else None


def _summary(result: Result, link: Patient, abnormal: int) -> dict[str, Any]:
    return {
        "id": result.id, "title": result.kind_name or result.kind, "kind": result.kind,
        "status": "corrected" if result.corrected else "final", "corrected": result.corrected,
        "critical": result.critical, "abnormal": abnormal,
        "observed_at": _iso(result.observed_at), "released_at": _iso(result.released_at),
        "patient": {"id": link.id, "name": link.name, "relation": link.relation},
        "url": report_path(result.id),
    }


def _point(point: TrendPoint) -> dict[str, Any]:
    return {"result_id": point.result_id, "observed_at": _iso(point.observed_at),
            "value": point.number, "abnormal": _abnormal(list(point.abnormal_flags))}


def result_json(db: Session, access: Access) -> dict[str, Any]:
    """A released result as the report page shows it."""
    result, link = access.result, access.link
    rows = observations_of(db, result.id)
    series = trends(db, result, rows)
    observations = []
    for row in rows:
        flags = _flags(row)
        file = None
        if row.attachment_id is not None:
            attachment = db.get(ResultAttachment, row.attachment_id)
            file = {"id": attachment.id, "content_type": attachment.content_type,
                    "size": attachment.size,
                    "url": f"/api/v1/results/{result.id}/files/{attachment.id}"}
        observations.append({
            "code": row.code, "name": row.name, "value_type": row.value_type,
            "value": row.text, "number": row.number, "comparator": row.comparator,
            "units": row.units, "reference_range": row.reference_range, "flags": flags,
            "abnormal": _abnormal(flags), "critical": row.critical, "file": file,
            "file_problem": row.attachment_problem,
            "trend": [_point(p) for p in series.get(row.code, [])] if row.number else [],
        })
    abnormal = sum(o["abnormal"] for o in observations)
    return {**_summary(result, link, abnormal), "observations": observations}


def _audit(db: Session, action: str, account_id: int | None, **fields: Any) -> None:  # noqa: ANN401
    record_view(db, action=action, now=now(), ip=request.remote_addr or "",
                user_agent=request.user_agent.string or "", account_id=account_id, **fields)


def _not_signed_in() -> ResponseReturnValue:
    return error("session.required", say(N_("请先登录")), 401)


def _uncertified(db: Session, action: str, account_id: int,
                 **fields: Any) -> ResponseReturnValue | None:  # noqa: ANN401
    """The refusal for an account neither certified by its wallet nor bound (audited)."""
    try:
        require_certified(db, account_id)
    except Refusal as refusal:
        _audit(db, action, account_id, reason=Reason.UNCERTIFIED, **fields)
        return refused(refusal)
    return None


def _unknown() -> ResponseReturnValue:
    return refused(Refusal("result.unknown"), 404)


def _asked(model: type, **values: str) -> dict[str, int] | None:
    # Digits only: "+5", " 5" or "1.0" would parse as ids, but no link the pages make has them.
    if not all(v.isascii() and v.isdigit() for v in values.values()) or \
            not valid(model, **values):
        return None
    return {name: int(value) for name, value in values.items()}


@bp.get("/results")
def get_results() -> ResponseReturnValue:
    """The released results of the account's verified patients, newest first."""
    account_id = patient_account_id()
    with runtime().session_factory.begin() as db:
        if account_id is None:
            _audit(db, "list", None, reason=Reason.SESSION)
            return _not_signed_in()
        if (answer := _uncertified(db, "list", account_id)) is not None:
            return answer
        shown = list_results(db, account_id)
        abnormal = _abnormal_counts(db, [result.id for result, _ in shown])
        _audit(db, "list", account_id, shown=len(shown))
        return jsonify(results=[_summary(r, link, abnormal.get(r.id, 0)) for r, link in shown])


def _abnormal_counts(db: Session, ids: list[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    if not ids:
        return counts
    for result_id, flags in db.execute(
            select(ResultObservation.result_id, ResultObservation.abnormal_flags)
            .where(ResultObservation.result_id.in_(ids))):
        if _abnormal(flags.split("~")):
            counts[result_id] = counts.get(result_id, 0) + 1
    return counts


@bp.get("/results/<result_id>")
def get_result(result_id: str) -> ResponseReturnValue:
    """One released result of one of the account's verified patients."""
    account_id = patient_account_id()
    asked = _asked(ResultPath, result_id=result_id)
    with runtime().session_factory.begin() as db:
        if account_id is None:
            _audit(db, "read", None, result_id=asked and asked["result_id"],
                   reason=Reason.SESSION)
            return _not_signed_in()
        if asked is None:
            _audit(db, "read", account_id, reason=Reason.MALFORMED)
            return _unknown()
        if (answer := _uncertified(db, "read", account_id,
                                   result_id=asked["result_id"])) is not None:
            return answer
        access = open_result(db, account_id, asked["result_id"])
        _audit(db, "read", account_id, access=access, result_id=asked["result_id"])
        if not access.shown:
            return _unknown()
        return jsonify(result_json(db, access))


@bp.get("/results/<result_id>/files/<file_id>")
def get_result_file(result_id: str, file_id: str) -> ResponseReturnValue:
    """A report file (a PDF) of one of the account's released results, as an attachment."""
    account_id = patient_account_id()
    asked = _asked(ResultFilePath, result_id=result_id, file_id=file_id)
    ids = asked or {}
    with runtime().session_factory.begin() as db:
        if account_id is None:
            _audit(db, "file", None, result_id=ids.get("result_id"), file_id=ids.get("file_id"),
                   reason=Reason.SESSION)
            return _not_signed_in()
        if asked is None:
            _audit(db, "file", account_id, reason=Reason.MALFORMED)
            return _unknown()
        if (answer := _uncertified(db, "file", account_id, result_id=ids["result_id"],
                                   file_id=ids["file_id"])) is not None:
            return answer
        access, attachment = open_file(db, account_id, ids["result_id"], ids["file_id"])
        _audit(db, "file", account_id, access=access, result_id=ids["result_id"],
               file_id=ids["file_id"])
        if attachment is None:
            return _unknown()
        data, content_type = attachment.data, attachment.content_type
    extension = "pdf" if content_type == "application/pdf" else "bin"
    response = Response(data, mimetype=content_type)
    # RFC 6266: a download with a plain ASCII name; the page opens it in the phone's viewer.
    response.headers["Content-Disposition"] = \
        f'attachment; filename="report-{ids["result_id"]}-{ids["file_id"]}.{extension}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
