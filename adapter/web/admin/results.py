"""The doctor pages (their own patients' results, release, acknowledge) and the list of
critical alerts awaiting acknowledgement for admins and operators."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from adapter.refusals import Refusal
from adapter.staff.accounts import Permission
from adapter.staff.results import (
    acknowledge,
    alerts_awaiting,
    doctor_results,
    release_for_doctor,
    view_result,
)
from adapter.web.admin.guard import ID, bp, refused, remote, requires, runtime, staff


@bp.get("/doctor")
@requires(Permission.DOCTOR)
def doctor_results_page() -> ResponseReturnValue:
    """A doctor's own patients' results, critical ones first."""
    with runtime().session_factory() as db:
        lines = doctor_results(db, staff())
    return render_template("admin/doctor.html", lines=lines, title=gettext("我的患者的报告"))


@bp.get(f"/doctor/results/<{ID}:result_id>")
@requires(Permission.DOCTOR)
def doctor_result(result_id: int) -> ResponseReturnValue:
    """One result's values, for the doctor who ordered it (the view is audited)."""
    rt = runtime()
    try:
        with rt.session_factory.begin() as db:
            result, observations, alert = view_result(db, staff(), result_id, remote=remote(),
                                                      now=rt.clock.now())
    except Refusal as exc:
        return refused(exc)
    return render_template("admin/result.html", result=result, observations=observations,
                           alert=alert, title=gettext("报告详情"))


@bp.post(f"/doctor/results/<{ID}:result_id>/release")
@requires(Permission.DOCTOR)
def release(result_id: int) -> ResponseReturnValue:
    """Release a held result to its patient."""
    rt = runtime()
    try:
        with rt.session_factory.begin() as db:
            release_for_doctor(db, staff(), result_id, remote=remote(), now=rt.clock.now())
    except Refusal as exc:
        return refused(exc)
    flash(gettext("报告已发布给患者。"))
    return redirect(url_for("admin.doctor_result", result_id=result_id), code=303)


def _acknowledge(alert_id: int, back: str) -> ResponseReturnValue:
    rt = runtime()
    try:
        with rt.session_factory.begin() as db:
            acknowledge(db, staff(), alert_id, remote=remote(), now=rt.clock.now())
    except Refusal as exc:
        return refused(exc)
    flash(gettext("危急值已确认。"))
    return redirect(back, code=303)


@bp.post(f"/doctor/alerts/<{ID}:alert_id>/acknowledge")
@requires(Permission.DOCTOR)
def doctor_acknowledge(alert_id: int) -> ResponseReturnValue:
    """A doctor acknowledges a critical value of their own patient."""
    return _acknowledge(alert_id, url_for("admin.doctor_results_page"))


@bp.get("/alerts")
@requires(Permission.STATUS)
def alerts() -> ResponseReturnValue:
    """Critical alerts awaiting acknowledgement, escalated ones marked and first."""
    with runtime().session_factory() as db:
        waiting = alerts_awaiting(db)
    return render_template("admin/alerts.html", waiting=waiting,
                           title=gettext("待确认的危急值"))


@bp.post(f"/alerts/<{ID}:alert_id>/acknowledge")
@requires(Permission.OPERATE)
def alert_acknowledge(alert_id: int) -> ResponseReturnValue:
    """An admin or operator acknowledges a critical value (who and when are kept)."""
    return _acknowledge(alert_id, url_for("admin.alerts"))
