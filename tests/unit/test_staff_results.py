"""Results as staff handle them: a doctor's own patients' results (critical first), release,
acknowledgment; the alerts awaiting acknowledgement; each action audited."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from adapter.models import CriticalAlert, Result, ResultState, StaffAudit
from adapter.ports import ResultOrder
from adapter.refusals import Refusal
from adapter.results.alerts import escalate_alerts
from adapter.results.policy import ReleasePolicy
from adapter.staff.accounts import StaffRole, StaffUser
from adapter.staff.results import (
    acknowledge,
    alerts_awaiting,
    doctor_results,
    release_for_doctor,
    view_result,
)
from tests.unit.test_results import patient, reported, wbc  # noqa: F401 - patient: a fixture

CHEN = StaffUser(1, "dr.chen", StaffRole.DOCTOR, "D1001")
LIN = StaffUser(2, "dr.lin", StaffRole.DOCTOR, "D1002")
OPERATOR = StaffUser(3, "op", StaffRole.OPERATOR)


def ordered(doctor: str, filler: str, *, kind: str = "CBC", critical: bool = False) -> ResultOrder:
    value = wbc("30.1", ("HH",)) if critical else wbc()
    return ResultOrder("ORD", filler, kind, "血常规", None, observations=(value,),
                       ordering_provider=doctor)


@pytest.fixture
def reported_results(hospital, patient):  # noqa: F811
    hospital.runtime.result_release = ReleasePolicy(sensitive_kinds=frozenset({"HIV"}))
    hospital.hear(reported(ordered("D1001", "L1"), ordered("D1001", "L2", critical=True),
                           ordered("D1002", "L3", critical=True),
                           ordered("D1001", "L4", kind="HIV")))
    with hospital.runtime.session_factory() as db:
        return {r.filler_order: r.id for r in db.scalars(select(Result))}


def _actions(db) -> list[tuple[str, str, str]]:
    return [(a.actor, a.action, a.target) for a in db.scalars(select(StaffAudit)
                                                              .order_by(StaffAudit.id))]


def test_the_ordering_provider_is_kept_from_obr_16(hospital, reported_results):
    with hospital.runtime.session_factory() as db:
        providers = {r.filler_order: r.ordering_provider for r in db.scalars(select(Result))}
    assert providers == {"L1": "D1001", "L2": "D1001", "L3": "D1002", "L4": "D1001"}


def test_a_doctor_sees_only_their_own_patients_results_critical_first(hospital,
                                                                       reported_results):
    with hospital.runtime.session_factory() as db:
        lines = doctor_results(db, CHEN)
        assert [line.result.filler_order for line in lines][0] == "L2"
        assert {line.result.filler_order for line in lines} == {"L1", "L2", "L4"}
        assert lines[0].alert is not None and all(line.alert is None for line in lines[1:])
        assert [line.result.filler_order for line in doctor_results(db, LIN)] == ["L3"]
        assert doctor_results(db, replace(CHEN, doctor_code=None)) == []


def test_a_doctor_releases_their_held_result_and_only_theirs(hospital, reported_results):
    now = hospital.runtime.clock.now()
    with hospital.runtime.session_factory.begin() as db:
        with pytest.raises(Refusal, match="staff.not_your_patient"):
            release_for_doctor(db, LIN, reported_results["L4"], remote="10.0.0.2", now=now)
        with pytest.raises(Refusal, match="result.not_held"):
            release_for_doctor(db, CHEN, reported_results["L1"], remote="10.0.0.2", now=now)
    with hospital.runtime.session_factory.begin() as db:
        result = release_for_doctor(db, CHEN, reported_results["L4"], remote="10.0.0.2",
                                    now=now)
        assert (result.state, result.released_by) == (ResultState.RELEASED, "dr.chen")
        assert _actions(db)[-1] == ("dr.chen", "result_released",
                                    f"result:{reported_results['L4']}")
    assert len(hospital.outbox("result_push")) >= 1


def test_viewing_a_result_is_audited_and_refused_for_another_doctor(hospital,
                                                                    reported_results):
    now = hospital.runtime.clock.now()
    with hospital.runtime.session_factory.begin() as db:
        result, observations, alert = view_result(db, CHEN, reported_results["L2"],
                                                  remote="10.0.0.2", now=now)
        assert observations[0].number == "30.1" and alert is not None
        with pytest.raises(Refusal, match="staff.not_your_patient"):
            view_result(db, LIN, reported_results["L2"], remote="10.0.0.3", now=now)
        with pytest.raises(Refusal, match="result.unknown"):
            view_result(db, CHEN, 10**9, remote="10.0.0.3", now=now)
        assert _actions(db) == [("dr.chen", "result_viewed", f"result:{result.id}")]


def test_acknowledging_keeps_who_and_when_a_doctor_only_for_their_patients(hospital,
                                                                           reported_results):
    clock = hospital.runtime.clock
    with hospital.runtime.session_factory.begin() as db:
        alerts = {a.result_id: a.id for a in db.scalars(select(CriticalAlert))}
        with pytest.raises(Refusal, match="staff.not_your_patient"):
            acknowledge(db, LIN, alerts[reported_results["L2"]], remote="", now=clock.now())
        with pytest.raises(Refusal, match="alert.unknown"):
            acknowledge(db, CHEN, 10**9, remote="", now=clock.now())
        seen_at = clock.now()
        mine = acknowledge(db, CHEN, alerts[reported_results["L2"]], remote="10.0.0.2",
                           now=seen_at)
        theirs = acknowledge(db, OPERATOR, alerts[reported_results["L3"]], remote="10.0.0.9",
                             now=clock.advance(minutes=1))
        assert (mine.acknowledged_by, mine.acknowledged_at) == ("dr.chen", seen_at)
        assert theirs.acknowledged_by == "op"
        assert [a for a in _actions(db) if a[1] == "alert_acknowledged"] == [
            ("dr.chen", "alert_acknowledged", f"alert:{mine.id}"),
            ("op", "alert_acknowledged", f"alert:{theirs.id}")]
        assert alerts_awaiting(db) == []


def test_alerts_awaiting_put_the_escalated_first(hospital, reported_results):
    clock = hospital.runtime.clock
    hospital.hear(reported(ordered("D1002", "L9", critical=True), control_id="M2"))
    with hospital.runtime.session_factory.begin() as db:
        first = alerts_awaiting(db)
        assert [result.filler_order for _, result in first] == ["L2", "L3", "L9"]
        newest = first[-1][0]
        newest.raised_at = clock.now().replace(year=clock.now().year - 1)
        escalate_alerts(db, hospital.runtime.result_release.escalate_after, clock.now())
        waiting = alerts_awaiting(db)
        assert waiting[0][1].filler_order == "L9" and waiting[0][0].escalated_at is not None
