"""The doctor pages and the critical alerts page over HTTP, on SQLite and PostgreSQL: a doctor
sees their own patients' results (critical first), opens one, releases a held one and
acknowledges a critical value; an operator acknowledges from the alerts page; all audited."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from adapter.models import (
    CriticalAlert,
    Result,
    ResultObservation,
    ResultState,
    StaffAudit,
)
from adapter.staff.accounts import StaffRole
from tests.integration.admin_kit import DOCTOR_CODE, T0, csrf_token, make_app, signed_in


@pytest.fixture
def app(engine):
    return make_app(engine)


def _result(db, filler: str, doctor: str, *, state: str = ResultState.RELEASED,
            critical: bool = False) -> Result:
    result = Result(order_key=f"k-{filler}", sender="LIS^H", placer_order="", filler_order=filler,
                    kind="CBC", kind_name=f"血常规 {filler}", status="F", corrected=False,
                    critical=critical, his_patient_id=f"P-{filler}", document_index="idx",
                    ordering_provider=doctor, state=state, hold_reason="", version=1,
                    announced_version=1, content_digest="", received_at=T0, updated_at=T0)
    db.add(result)
    db.flush()
    db.add(ResultObservation(result_id=result.id, position=1, set_id="1", value_type="NM",
                             code="K", name="钾", text="", number="7.9", comparator="",
                             units="mmol/L", reference_range="3.5-5.3", abnormal_flags="HH",
                             status="F", critical=critical, attachment_problem=""))
    if critical:
        db.add(CriticalAlert(result_id=result.id, result_version=1, raised_at=T0))
    return result


@pytest.fixture
def results(app):
    with app.extensions["adapter"].session_factory.begin() as db:
        made = [_result(db, "L1", DOCTOR_CODE), _result(db, "L2", DOCTOR_CODE, critical=True),
                _result(db, "L3", "D1002", critical=True),
                _result(db, "L4", DOCTOR_CODE, state=ResultState.HELD)]
        return {r.filler_order: r.id for r in made}


def _alert_of(app, result_id: int) -> CriticalAlert:
    with app.extensions["adapter"].session_factory() as db:
        return db.scalar(select(CriticalAlert).where(CriticalAlert.result_id == result_id))


def _audit(app) -> list[tuple[str, str, str]]:
    with app.extensions["adapter"].session_factory() as db:
        return [(a.actor, a.action, a.target) for a in db.scalars(
            select(StaffAudit).where(StaffAudit.action.not_in(["sign_in", "account_created"]))
            .order_by(StaffAudit.id))]


def test_the_doctor_page_lists_their_patients_results_critical_first(app, results):
    client = signed_in(app, "dr.chen", StaffRole.DOCTOR, DOCTOR_CODE)
    page = client.get("/admin/doctor").get_data(as_text=True)
    shown = re.findall(r"血常规 (L\d)", page)
    assert shown[0] == "L2" and set(shown) == {"L1", "L2", "L4"}
    assert "P-L3" not in page
    english = client.get("/admin/doctor?lang=en").get_data(as_text=True)
    assert "My patients&#39; results" in english and "Critical value" in english


def test_a_doctor_opens_releases_and_acknowledges_with_an_audit_row_each(app, results):
    client = signed_in(app, "dr.chen", StaffRole.DOCTOR, DOCTOR_CODE)
    detail = client.get(f"/admin/doctor/results/{results['L2']}")
    assert detail.status_code == 200 and "7.9" in detail.get_data(as_text=True)
    assert client.get(f"/admin/doctor/results/{results['L3']}").status_code == 403
    assert client.get("/admin/doctor/results/999999").status_code == 404
    token = csrf_token(client, "/admin/doctor")
    released = client.post(f"/admin/doctor/results/{results['L4']}/release",
                           data={"csrf_token": token})
    assert released.status_code == 303
    again = client.post(f"/admin/doctor/results/{results['L4']}/release",
                        data={"csrf_token": token})
    assert again.status_code == 409
    alert = _alert_of(app, results["L2"])
    acknowledged = client.post(f"/admin/doctor/alerts/{alert.id}/acknowledge",
                               data={"csrf_token": token})
    assert acknowledged.status_code == 303
    assert _alert_of(app, results["L2"]).acknowledged_by == "dr.chen"
    others = _alert_of(app, results["L3"])
    refused = client.post(f"/admin/doctor/alerts/{others.id}/acknowledge",
                          data={"csrf_token": token})
    assert refused.status_code == 403 and _alert_of(app, results["L3"]).acknowledged_at is None
    with app.extensions["adapter"].session_factory() as db:
        held = db.get(Result, results["L4"])
    assert (held.state, held.released_by) == (ResultState.RELEASED, "dr.chen")
    assert _audit(app) == [
        ("dr.chen", "result_viewed", f"result:{results['L2']}"),
        ("dr.chen", "result_released", f"result:{results['L4']}"),
        ("dr.chen", "alert_acknowledged", f"alert:{alert.id}"),
    ]


def test_the_alerts_page_lists_what_awaits_and_an_operator_acknowledges(app, results):
    with app.extensions["adapter"].session_factory.begin() as db:
        db.get(CriticalAlert, _alert_of(app, results["L3"]).id).escalated_at = T0
    viewer = signed_in(app, "viewer", StaffRole.VIEWER)
    page = viewer.get("/admin/alerts").get_data(as_text=True)
    assert page.index("血常规 L3") < page.index("血常规 L2")  # escalated first, and marked
    assert "已升级" in page and "确认已知悉" not in page  # a viewer sees no action
    operator = signed_in(app, "op", StaffRole.OPERATOR)
    page = operator.get("/admin/alerts").get_data(as_text=True)
    assert "确认已知悉" in page and "陈思远" in page
    alert = _alert_of(app, results["L3"])
    response = operator.post(f"/admin/alerts/{alert.id}/acknowledge",
                             data={"csrf_token": csrf_token(operator, "/admin/alerts")})
    assert response.status_code == 303
    assert _alert_of(app, results["L3"]).acknowledged_by == "op"
    assert "血常规 L3" not in operator.get("/admin/alerts").get_data(as_text=True)
    assert ("op", "alert_acknowledged", f"alert:{alert.id}") in _audit(app)
