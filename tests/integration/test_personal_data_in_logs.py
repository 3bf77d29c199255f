"""No field value ever reaches a log line, an exception text or an outbox row: a name or phone of
100,000 characters is refused by the identity use cases, and a value already stored that the
HIS message cannot carry fails by type and code only. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import select

from adapter.flows import OutboxKind
from adapter.his import patients as hl7_patients
from adapter.his.profile import Hl7Profile
from adapter.identity.patients import DOCUMENT_CONTEXT, PHONE_CONTEXT
from adapter.models import OutboxMessage, Patient
from adapter.outbox import enqueue
from adapter.ports import PatientIdentity
from adapter.refusals import Refusal
from adapter.worker.outbox import deliver_outbox
from tests.fakes import FakeHis
from tests.integration.dependants_kit import CHILD_ID, account, add_child, make_runtime

LONG_NAME = "张" * 100_000
LONG_PHONE = "1" + "3" * 99_999
FRAGMENTS = ("张" * 60, "3" * 60)


class BuildingHis(FakeHis):
    """A fake HIS that builds the real ADT^A28 first, as the MLLP gateway does."""

    def register_patient(self, patient: PatientIdentity) -> PatientIdentity:
        hl7_patients.build_adt_a28(Hl7Profile(), "C1", dt.datetime.now(dt.UTC),
                                   patient=patient, hl7_id_type="NNCHN")
        return super().register_patient(patient)


def assert_nowhere(caplog, runtime, *texts: str) -> None:
    logged = "\n".join(caplog.messages) + "\n".join(
        r.exc_text or "" for r in caplog.records)
    with runtime.session_factory() as session:
        rows = session.scalars(select(OutboxMessage)).all()
    stored = "\n".join(f"{m.payload} {m.last_error}" for m in rows)
    for fragment in FRAGMENTS + texts:
        assert fragment not in logged
        assert fragment not in stored


@pytest.fixture
def runtime(engine, session_factory, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    return make_runtime(engine, session_factory, tmp_path, his=BuildingHis())


def test_an_over_long_name_or_phone_is_refused_and_never_logged(runtime, caplog):
    parent = account(runtime, 1, "13800000001")
    for name, phone, code in ((LONG_NAME, "", "name.too_long"),
                              ("王小明", LONG_PHONE, "phone.too_long"),
                              ("张" * 101, "", "name.too_long"),
                              ("王小明", "1" * 21, "phone.too_long")):
        with pytest.raises(Refusal) as refused:
            add_child(runtime, parent, name=name, phone=phone)
        assert refused.value.code == code and refused.value.params["limit"] in (100, 20)
        assert name[:30] not in str(refused.value)
        assert not phone or phone[:30] not in str(refused.value)
    deliver_outbox(runtime)
    with runtime.session_factory() as session:
        assert session.scalars(select(Patient.relation)).all() == ["self"]
    assert_nowhere(caplog, runtime)
    # the longest kept values are accepted and reach the HIS
    add_child(runtime, parent, name="张" * 100, phone="1" * 20)
    deliver_outbox(runtime)
    assert runtime.his.patients[("RESIDENT_ID", CHILD_ID)].name == "张" * 100


def test_a_value_the_his_message_cannot_carry_fails_by_type_and_code_only(runtime, caplog):
    parent = account(runtime, 1, "13800000001")
    deliver_outbox(runtime)
    caplog.clear()
    # stored before the use cases refused it: the phone is kept encrypted, of any length
    with runtime.session_factory.begin() as session:
        patient = Patient(wallet_account_id=parent, relation="child", name="王小明",
                          document_type="RESIDENT_ID",
                          document_number_enc=runtime.protector.encrypt(CHILD_ID,
                                                                        DOCUMENT_CONTEXT),
                          document_index=runtime.protector.blind_index(CHILD_ID, "RESIDENT_ID"),
                          document_masked="110***********0244", birth_date=dt.date(2018, 5, 1),
                          sex="F", phone_enc=runtime.protector.encrypt(LONG_PHONE, PHONE_CONTEXT),
                          phone_masked="138****0000")
        session.add(patient)
        session.flush()
        enqueue(session, "his_patient", ("patient", patient.id), runtime.clock.now())
    deliver_outbox(runtime)
    with runtime.session_factory() as session:
        item = session.scalars(select(OutboxMessage).where(
            OutboxMessage.kind == "his_patient", OutboxMessage.subject_id == str(patient.id))).one()
    assert item.status == "pending" and item.last_error == "MessageError 207"
    assert any("MessageError 207" in m for m in caplog.messages)
    assert_nowhere(caplog, runtime, CHILD_ID)


def test_errors_that_quote_values_are_logged_and_stored_by_type_only(runtime, caplog):
    """A delivery's own ValueError, and a database error (whose text would carry the
    statement's parameters), reach the log and last_error as their type and code."""
    parent = account(runtime, 1, "13800000001")

    def quoting(services, job, now):
        raise ValueError(f"bad phone {LONG_PHONE}")

    def duplicate(services, job, now):
        with services.session_factory.begin() as session:
            self_link = session.scalars(select(Patient)).one()
            session.add(Patient(wallet_account_id=parent, relation="child", name="张" * 100,
                                document_type="RESIDENT_ID",
                                document_number_enc=LONG_NAME.encode(),
                                document_index=self_link.document_index,
                                document_masked="x", sex="F", phone_masked=""))

    with runtime.session_factory.begin() as session:
        for kind in ("quoting", "duplicate"):
            enqueue(session, kind, ("patient", 1), runtime.clock.now())
    kinds = {"quoting": OutboxKind(quoting), "duplicate": OutboxKind(duplicate)}
    caplog.clear()
    deliver_outbox(runtime, kinds)
    with runtime.session_factory() as session:
        errors = dict(session.execute(select(OutboxMessage.kind, OutboxMessage.last_error)
                                      .where(OutboxMessage.kind.in_(kinds))).all())
    assert errors["quoting"] == "ValueError"
    assert errors["duplicate"].startswith("IntegrityError ")
    assert errors["duplicate"].endswith(("23505", "SQLITE_CONSTRAINT_UNIQUE"))
    # the traceback's frames are logged (their source lines), never the values
    assert any("IntegrityError" in m and "File " in m for m in caplog.messages)
    assert_nowhere(caplog, runtime)
