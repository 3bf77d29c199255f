"""Results: matching, states, corrections, withdrawals, release policy, critical values."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from adapter.models import CriticalAlert, Patient, Result, ResultObservation
from adapter.ports import (
    Observation,
    ResultAttachment,
    ResultOrder,
    ResultReport,
    ResultsReported,
    ResultStatus,
)
from adapter.refusals import Refusal
from adapter.results.alerts import acknowledge_alert
from adapter.results.policy import Limits, ReleasePolicy
from adapter.results.release import release_result

PDF = b"%PDF-1.4\n% a report\n%%EOF\n"


def wbc(value: str = "6.2", flags: tuple[str, ...] = ("N",)) -> Observation:
    return Observation("1", "NM", "WBC", "白细胞计数", value, value, units="10*9/L",
                       reference_range="3.5-9.5", abnormal_flags=flags, status="F")


def order(status: ResultStatus = ResultStatus.FINAL, *observations: Observation,
          kind: str = "CBC", filler: str = "LAB1") -> ResultOrder:
    return ResultOrder("ORD1", filler, kind, "血常规", None, status,
                       observations or (wbc(),))


def reported(*orders: ResultOrder, his_id: str = "P000001", name: str = "测试1",
             birth: dt.date | None = dt.date(1980, 1, 1), control_id: str = "M1",
             **identity) -> ResultsReported:
    report = ResultReport(his_id, name, birth, orders=orders or (order(),), **identity)
    return ResultsReported(control_id, "LIS^DEMO_HOSPITAL", (report,))


@pytest.fixture
def patient(hospital):
    """A certified wallet user whose self link the HIS knows as P000001."""
    account_id, patient_id = hospital.patient(1)
    with hospital.runtime.session_factory.begin() as session:
        session.execute(update(Patient).where(Patient.id == patient_id)
                        .values(his_patient_id="P000001"))
    return account_id, patient_id


def results(hospital) -> list[Result]:
    with hospital.runtime.session_factory() as session:
        return list(session.scalars(select(Result).order_by(Result.id)))


def observations(hospital, result_id: int) -> list[ResultObservation]:
    with hospital.runtime.session_factory() as session:
        return list(session.scalars(select(ResultObservation).where(
            ResultObservation.result_id == result_id).order_by(ResultObservation.position)))


def alerts(hospital) -> list[CriticalAlert]:
    with hospital.runtime.session_factory() as session:
        return list(session.scalars(select(CriticalAlert).order_by(CriticalAlert.id)))


# --- matching --------------------------------------------------------------------------------


def test_a_final_result_is_matched_by_his_id_released_and_announced_once(hospital, patient):
    hospital.hear(reported())
    [result] = results(hospital)
    assert (result.state, result.status, result.corrected) == ("released", "final", False)
    assert [o.number for o in observations(hospital, result.id)] == ["6.2"]
    hospital.hear(reported())  # the same message again changes nothing
    assert results(hospital)[0].version == 1
    assert len(hospital.outbox("result_push")) == 1
    hospital.deliver()
    assert hospital.told(1) == ["就诊人测**有一份新的检查检验报告，请点击查看。"]
    hospital.deliver()
    assert len(hospital.told(1)) == 1


@pytest.mark.parametrize(("changes", "reason"), [
    ({"name": "李四"}, "name_mismatch"),
    ({"name": ""}, "name_missing"),
    ({"birth": dt.date(1981, 1, 1)}, "birth_date_mismatch"),
    ({"his_id": "P999999"}, "unknown_patient"),
    ({"his_id": ""}, "no_patient_id"),
    ({"document_type": "RESIDENT_ID", "document_number": "110101198001010018"},
     "document_mismatch"),
])
def test_a_report_that_disagrees_with_the_identity_on_file_is_held_for_staff(
        hospital, patient, changes, reason):
    hospital.hear(reported(**changes))
    [result] = results(hospital)
    assert (result.state, result.hold_reason, result.document_index) == \
        ("unmatched", reason, None)
    assert hospital.outbox("result_push") == []


def test_the_document_on_file_confirms_the_match_without_decrypting(hospital, patient):
    from tests.unit.conftest import resident_id

    hospital.hear(reported(document_type="RESIDENT_ID", document_number=resident_id(1)))
    assert results(hospital)[0].state == "released"


def test_one_his_id_on_two_people_is_held(hospital, patient):
    account_id, other = hospital.patient(2)
    with hospital.runtime.session_factory.begin() as session:
        session.execute(update(Patient).where(Patient.id == other)
                        .values(his_patient_id="P000001", name="测试1"))
    hospital.hear(reported())
    assert results(hospital)[0].hold_reason == "ambiguous_patient"


def test_a_result_later_reported_for_another_person_is_hidden_for_staff(hospital, patient):
    hospital.hear(reported())
    hospital.hear(reported(order(ResultStatus.CORRECTED, wbc("7.0")), name="李四"))
    [result] = results(hospital)
    assert (result.state, result.document_index) == ("unmatched", None)


def test_only_verified_links_are_told(hospital, patient):
    stranger, link = hospital.patient(2)
    with hospital.runtime.session_factory.begin() as session:
        person = session.get(Patient, patient[1])
        session.execute(update(Patient).where(Patient.id == link).values(
            document_index=person.document_index, his_patient_id="P000001",
            verification="unverified", relation="child"))
    hospital.hear(reported())
    hospital.deliver()
    assert len(hospital.told(1)) == 1 and hospital.told(2) == []


# --- states ----------------------------------------------------------------------------------


def test_preliminary_is_kept_unseen_then_final_releases_it(hospital, patient):
    hospital.hear(reported(order(ResultStatus.PRELIMINARY, wbc("6.0"))))
    assert results(hospital)[0].state == "pending"
    assert hospital.outbox("result_push") == []
    hospital.hear(reported(order(ResultStatus.FINAL, wbc("6.2"))))
    [result] = results(hospital)
    assert (result.state, result.status, result.corrected) == ("released", "final", False)
    assert len(hospital.outbox("result_push")) == 1


def test_a_preliminary_after_the_final_is_ignored(hospital, patient):
    hospital.hear(reported(order(ResultStatus.FINAL, wbc("6.2"))))
    hospital.hear(reported(order(ResultStatus.PRELIMINARY, wbc("5.0"))))
    [result] = results(hospital)
    assert result.status == "final" and result.version == 1
    assert [o.number for o in observations(hospital, result.id)] == ["6.2"]


def test_a_correction_replaces_is_marked_and_announced_again(hospital, patient):
    hospital.hear(reported(order(ResultStatus.FINAL, wbc("6.2"))))
    hospital.deliver()
    hospital.hear(reported(order(ResultStatus.CORRECTED, wbc("8.4"))))
    [result] = results(hospital)
    assert (result.status, result.corrected, result.version) == ("corrected", True, 2)
    assert [o.number for o in observations(hospital, result.id)] == ["8.4"]
    hospital.deliver()
    assert hospital.told(1)[-1] == "就诊人测**的一份检查检验报告已更正，请点击查看更正后的报告。"
    hospital.hear(reported(order(ResultStatus.CORRECTED, wbc("8.4"))))  # again: nothing new
    hospital.deliver()
    assert len(hospital.told(1)) == 2


def test_a_cancelled_order_withdraws_the_result_and_its_pending_push(hospital, patient):
    hospital.hear(reported(order(ResultStatus.FINAL)))
    hospital.hear(reported(order(ResultStatus.CANCELLED)))
    [result] = results(hospital)
    assert (result.state, result.status) == ("withdrawn", "cancelled")
    hospital.deliver()  # the queued announcement is dropped, not sent
    assert hospital.told(1) == []
    hospital.hear(reported(order(ResultStatus.FINAL)))  # nothing revives a cancelled order
    assert results(hospital)[0].state == "withdrawn"


def test_several_orders_of_one_message_are_separate_results(hospital, patient):
    hospital.hear(reported(order(filler="LAB1"), order(kind="LFT", filler="LAB2")))
    assert [r.kind for r in results(hospital)] == ["CBC", "LFT"]


def test_a_pdf_report_is_stored_with_its_type(hospital, patient):
    pdf = Observation("1", "ED", "RPT", "报告", attachment=ResultAttachment("application/pdf",
                                                                            PDF))
    hospital.hear(reported(order(ResultStatus.FINAL, pdf, kind="CT")))
    from adapter.models import ResultAttachment as Stored

    with hospital.runtime.session_factory() as session:
        stored = session.scalar(select(Stored))
        assert (stored.content_type, stored.data, stored.size) == ("application/pdf", PDF,
                                                                   len(PDF))
    assert observations(hospital, results(hospital)[0].id)[0].attachment_id == stored.id


# --- release policy --------------------------------------------------------------------------


@pytest.fixture
def sensitive(hospital):
    hospital.runtime.result_release = ReleasePolicy(sensitive_kinds=frozenset({"HIV"}),
                                                    hold_days=3)


def test_a_sensitive_kind_is_held_until_a_doctor_releases_it(hospital, patient, sensitive):
    hospital.hear(reported(order(kind="HIV")))
    [result] = results(hospital)
    assert result.state == "held" and hospital.outbox("result_push") == []
    now = hospital.clock.now()
    with hospital.runtime.session_factory.begin() as session:
        release_result(session, result.id, "dr.wang", now)
    [result] = results(hospital)
    assert (result.state, result.released_by) == ("released", "dr.wang")
    with hospital.runtime.session_factory.begin() as session, pytest.raises(Refusal) as refused:
        release_result(session, result.id, "dr.wang", now)
    assert refused.value.code == "result.not_held"
    hospital.deliver()
    assert len(hospital.told(1)) == 1


def test_a_held_result_is_released_when_its_days_have_passed(hospital, patient, sensitive):
    from adapter.results.jobs import release_held_results

    hospital.hear(reported(order(kind="HIV")))
    hospital.clock.advance(days=3, seconds=-1)
    assert release_held_results(hospital.runtime) == 0
    hospital.clock.advance(seconds=1)
    assert release_held_results(hospital.runtime) == 1
    [result] = results(hospital)
    assert (result.state, result.released_by) == ("released", None)
    assert len(hospital.outbox("result_push")) == 1


def test_other_kinds_are_released_at_once_under_the_same_policy(hospital, patient, sensitive):
    hospital.hear(reported(order(kind="CBC")))
    assert results(hospital)[0].state == "released"


def test_the_shipped_policy_file_reads():
    from adapter.results.policy import load_release_policy
    from tests.conftest import MAPPINGS

    policy = load_release_policy(MAPPINGS / "result_release.toml")
    assert policy.escalate_after == dt.timedelta(minutes=15)
    assert policy.critical_limits["K"] == Limits(Decimal("2.8"), Decimal("6.2"))


# --- critical values -------------------------------------------------------------------------


def test_a_critical_value_is_never_pushed_and_is_raised_for_staff(hospital, patient, caplog):
    caplog.set_level(logging.DEBUG)
    hospital.hear(reported(order(ResultStatus.FINAL, wbc("105.6", ("HH",)))))
    [result] = results(hospital)
    assert result.critical
    [alert] = alerts(hospital)
    assert alert.acknowledged_at is None and alert.escalated_at is None
    hospital.deliver()
    [text] = hospital.told(1)
    assert "联系医院" in text and "105.6" not in text and "白细胞" not in text
    assert "105.6" not in caplog.text and "测试1" not in caplog.text


def test_a_value_beyond_the_hospitals_limits_is_critical_unflagged(hospital, patient):
    hospital.runtime.result_release = ReleasePolicy(
        critical_limits={"K": Limits(Decimal("2.8"), Decimal("6.2"))})
    potassium = Observation("1", "NM", "K", "钾", "6.9", "6.9", abnormal_flags=("H",))
    hospital.hear(reported(order(ResultStatus.FINAL, potassium, kind="BMP")))
    assert results(hospital)[0].critical and len(alerts(hospital)) == 1


def test_a_critical_alert_stays_raised_until_acknowledged_then_keeps_who_and_when(
        hospital, patient):
    hospital.hear(reported(order(ResultStatus.FINAL, wbc("0.4", ("LL",)))))
    [alert] = alerts(hospital)
    first = hospital.clock.now()
    with hospital.runtime.session_factory.begin() as session:
        acknowledge_alert(session, alert.id, "nurse.li", first)
    hospital.clock.advance(minutes=1)
    with hospital.runtime.session_factory.begin() as session:
        acknowledge_alert(session, alert.id, "nurse.zhao", hospital.clock.now())
    [alert] = alerts(hospital)
    assert (alert.acknowledged_by, alert.acknowledged_at) == ("nurse.li", first)
    with hospital.runtime.session_factory.begin() as session, pytest.raises(Refusal):
        acknowledge_alert(session, 999, "nurse.li", first)


def test_an_unacknowledged_alert_is_escalated_after_the_configured_time(hospital, patient):
    from adapter.results.jobs import escalate_critical_alerts

    hospital.hear(reported(order(ResultStatus.FINAL, wbc("0.4", ("LL",)))))
    hospital.clock.advance(minutes=14, seconds=59)
    assert escalate_critical_alerts(hospital.runtime) == 0
    hospital.clock.advance(seconds=1)
    assert escalate_critical_alerts(hospital.runtime) == 1
    assert escalate_critical_alerts(hospital.runtime) == 0  # escalated once
    [alert] = alerts(hospital)
    assert alert.escalated_at == hospital.clock.now() and alert.acknowledged_at is None


def test_an_acknowledged_alert_is_not_escalated(hospital, patient):
    from adapter.results.jobs import escalate_critical_alerts

    hospital.hear(reported(order(ResultStatus.FINAL, wbc("0.4", ("LL",)))))
    with hospital.runtime.session_factory.begin() as session:
        acknowledge_alert(session, alerts(hospital)[0].id, "nurse.li", hospital.clock.now())
    hospital.clock.advance(hours=1)
    assert escalate_critical_alerts(hospital.runtime) == 0


def test_a_critical_value_that_cannot_be_matched_still_reaches_staff(hospital, patient):
    hospital.hear(reported(order(ResultStatus.FINAL, wbc("0.4", ("LL",))), name="李四"))
    assert len(alerts(hospital)) == 1
    assert results(hospital)[0].state == "unmatched" and hospital.outbox("result_push") == []


def test_the_escalation_time_comes_from_the_policy(hospital, patient):
    from adapter.results.jobs import escalate_critical_alerts

    hospital.runtime.result_release = replace(ReleasePolicy(), escalate_after_minutes=5)
    hospital.hear(reported(order(ResultStatus.FINAL, wbc("0.4", ("LL",)))))
    hospital.clock.advance(minutes=5)
    assert escalate_critical_alerts(hospital.runtime) == 1
