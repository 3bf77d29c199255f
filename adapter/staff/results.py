"""Results as staff handle them: a doctor's own patients' results (critical first), releasing
the held ones, acknowledging critical alerts; the open alerts for admins and operators. Every
action and every view of a result's values is audited.

A doctor's patients are the results whose ordering provider (OBR-16.1) is their HIS doctor code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from adapter.models import CriticalAlert, Result, ResultObservation
from adapter.refusals import Refusal
from adapter.results.alerts import acknowledge_alert
from adapter.results.release import release_result
from adapter.staff.accounts import StaffRole, StaffUser
from adapter.staff.audit import Action, record


@dataclass(frozen=True)
class ResultLine:
    """One result on a staff list, with its open critical alert if any."""

    result: Result
    alert: CriticalAlert | None


def _open_alerts_of(session: Session, result_ids: list[int]) -> dict[int, CriticalAlert]:
    if not result_ids:
        return {}
    return {alert.result_id: alert for alert in session.scalars(select(CriticalAlert).where(
        CriticalAlert.result_id.in_(result_ids), CriticalAlert.acknowledged_at.is_(None)))}


def doctor_results(session: Session, doctor: StaffUser, limit: int = 200) -> list[ResultLine]:
    """The results a doctor ordered, critical ones first, then the newest."""
    if not doctor.doctor_code:
        return []
    results = list(session.scalars(
        select(Result).where(Result.ordering_provider == doctor.doctor_code)
        .order_by(case((Result.critical, 0), else_=1), Result.received_at.desc(),
                  Result.id.desc())
        .limit(limit)))
    alerts = _open_alerts_of(session, [r.id for r in results])
    lines = [ResultLine(r, alerts.get(r.id)) for r in results]
    # An open alert goes before a critical value already acknowledged.
    lines.sort(key=lambda line: (line.alert is None, not line.result.critical))
    return lines


def _own_result(session: Session, user: StaffUser, result_id: int) -> Result:
    result = session.get(Result, result_id)
    if result is None:
        raise Refusal("result.unknown")
    if user.role == StaffRole.DOCTOR and result.ordering_provider != user.doctor_code:
        raise Refusal("staff.not_your_patient")
    return result


def view_result(session: Session, user: StaffUser, result_id: int, *, remote: str,
                now: dt.datetime) -> tuple[Result, list[ResultObservation], CriticalAlert | None]:
    """A result's values for its doctor (or an admin); the view is audited."""
    result = _own_result(session, user, result_id)
    observations = list(session.scalars(select(ResultObservation).where(
        ResultObservation.result_id == result.id).order_by(ResultObservation.position)))
    record(session, user.username, Action.RESULT_VIEWED, f"result:{result.id}", remote, now)
    return result, observations, _open_alerts_of(session, [result.id]).get(result.id)


def release_for_doctor(session: Session, doctor: StaffUser, result_id: int, *, remote: str,
                       now: dt.datetime) -> Result:
    """A doctor releases a held result of their own patient to the patient; audited."""
    _own_result(session, doctor, result_id)
    result = release_result(session, result_id, doctor.username, now)
    record(session, doctor.username, Action.RESULT_RELEASED, f"result:{result.id}", remote, now)
    return result


def acknowledge(session: Session, user: StaffUser, alert_id: int, *, remote: str,
                now: dt.datetime) -> CriticalAlert:
    """A staff user has seen a critical value (who and when are kept on the alert); a doctor
    only their own patients'. Audited."""
    alert = session.get(CriticalAlert, alert_id)
    if alert is None:
        raise Refusal("alert.unknown")
    _own_result(session, user, alert.result_id)
    alert = acknowledge_alert(session, alert_id, user.username, now)
    record(session, user.username, Action.ALERT_ACKNOWLEDGED, f"alert:{alert.id}", remote, now)
    return alert


def alerts_awaiting(session: Session) -> list[tuple[CriticalAlert, Result]]:
    """Critical alerts nobody has acknowledged: escalated ones first, then the oldest."""
    return [(alert, result) for alert, result in session.execute(
        select(CriticalAlert, Result).join(Result, Result.id == CriticalAlert.result_id)
        .where(CriticalAlert.acknowledged_at.is_(None))
        .order_by(case((CriticalAlert.escalated_at.is_(None), 1), else_=0),
                  CriticalAlert.raised_at))]
