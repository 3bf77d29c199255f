"""The message browser's actions over HTTP on SQLite and PostgreSQL: reprocess and resend
exactly the searched set, acknowledge failures (they leave the dashboard's counts), raw content
for admins only with ID numbers masked, search by a person through the blind index; each
action audited."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from adapter.models import (
    Booking,
    InboundMessage,
    InboundStatus,
    OutboxMessage,
    OutboxStatus,
    Patient,
    Slot,
    StaffAudit,
    WalletAccount,
)
from adapter.protection import KEY_BYTES, DataProtector, Keyring
from adapter.staff.accounts import StaffRole
from tests.hl7_fixtures import oru_r01
from tests.integration.admin_kit import T0, csrf_token, make_app, signed_in


@pytest.fixture
def app(engine):
    app = make_app(engine)
    runtime = app.extensions["adapter"]
    runtime.protector = DataProtector(Keyring(active="k1", keys={"k1": b"\x01" * KEY_BYTES},
                                              index_key=b"\x02" * KEY_BYTES))
    with runtime.session_factory.begin() as db:
        for n, status in enumerate((InboundStatus.FAILED, InboundStatus.FAILED,
                                    InboundStatus.PROCESSED, InboundStatus.ERROR)):
            db.add(InboundMessage(received_at=T0 - dt.timedelta(minutes=n), peer="",
                                  sender="LIS^H", control_id=f"CTRL{n}", digest=f"{n:064d}",
                                  message_type="ORU^R01" if n < 3 else "", version="2.5",
                                  charset="", status=status, ack_code="AA", error_code="",
                                  error_text="refused", raw=oru_r01(f"CTRL{n}").encode(),
                                  ack=b"MSA|", attempts=3))
        for subject in ("901", "902"):
            db.add(OutboxMessage(kind="his_book", subject_type="booking", subject_id=subject,
                                 status=OutboxStatus.FAILED, attempts=8, next_attempt_at=T0,
                                 last_error="HisRefused", created_at=T0))
    return app


def _rows(app, model):
    with app.extensions["adapter"].session_factory() as db:
        return {row.id: row for row in db.scalars(select(model).order_by(model.id))}


def _audit(app, action):
    with app.extensions["adapter"].session_factory() as db:
        return list(db.scalars(select(StaffAudit.target).where(StaffAudit.action == action)
                               .order_by(StaffAudit.id)))


def _post(client, path, **fields):
    return client.post(path, data={**fields, "csrf_token": csrf_token(client, "/admin/messages")})


def test_reprocess_touches_exactly_the_searched_failed_messages(app):
    client = signed_in(app, "op", StaffRole.OPERATOR)
    response = _post(client, "/admin/messages/reprocess", source="inbound",
                     control_id="CTRL1", status="failed")
    assert response.status_code == 303
    assert "control_id=CTRL1" in response.headers["Location"]
    rows = {r.control_id: r for r in _rows(app, InboundMessage).values()}
    assert (rows["CTRL1"].status, rows["CTRL1"].attempts) == (InboundStatus.RECEIVED, 0)
    assert rows["CTRL0"].status == InboundStatus.FAILED  # not in the searched set
    assert _audit(app, "message_reprocessed") == [f"inbound:{rows['CTRL1'].id}"]


def test_resend_puts_parked_outbox_items_back_due_now(app):
    client = signed_in(app, "op", StaffRole.OPERATOR)
    _post(client, "/admin/messages/reprocess", source="outbox", type="his_book",
          status="parked")
    for row in _rows(app, OutboxMessage).values():
        assert (row.status, row.attempts, row.next_attempt_at) == (OutboxStatus.PENDING, 0, T0)
    assert len(_audit(app, "message_reprocessed")) == 2


def test_acknowledged_failures_leave_the_dashboards_counts(app):
    client = signed_in(app, "op", StaffRole.OPERATOR)
    [before] = [c for c in client.get("/admin/dashboard.json").get_json()["figures"]["counters"]
                if c["type"] == "ORU^R01"]
    assert before["failed"] == 2
    _post(client, "/admin/messages/acknowledge", source="inbound", type="ORU^R01",
          status="failed")
    [after] = [c for c in client.get("/admin/dashboard.json").get_json()["figures"]["counters"]
               if c["type"] == "ORU^R01"]
    assert after["failed"] == 0 and after["received"] == 3
    acked = [r for r in _rows(app, InboundMessage).values() if r.acknowledged_by]
    assert {r.control_id for r in acked} == {"CTRL0", "CTRL1"}
    page = client.get("/admin/messages?source=inbound&status=failed").get_data(as_text=True)
    assert "已确认" in page and "op" in page
    assert len(_audit(app, "message_acknowledged")) == 2


def test_a_viewer_cannot_act_and_only_admins_read_raw_content_masked(app):
    viewer = signed_in(app, "viewer", StaffRole.VIEWER)
    assert _post(viewer, "/admin/messages/reprocess", source="inbound").status_code == 403
    message_id = min(_rows(app, InboundMessage))
    assert viewer.get(f"/admin/messages/inbound/{message_id}").status_code == 403
    assert "/admin/messages/inbound/" not in viewer.get("/admin/messages").get_data(as_text=True)
    operator = signed_in(app, "op", StaffRole.OPERATOR)
    assert operator.get(f"/admin/messages/inbound/{message_id}").status_code == 403
    admin = signed_in(app, "admin", StaffRole.ADMIN)
    page = admin.get(f"/admin/messages/inbound/{message_id}").get_data(as_text=True)
    assert "ORU^R01" in page and "110101199003077777" not in page
    assert "110***********7777" in page
    assert admin.get("/admin/messages/inbound/999999").status_code == 404
    assert admin.get(f"/admin/messages/elsewhere/{message_id}").status_code == 404
    assert _audit(app, "message_viewed") == [f"inbound:{message_id}"]


def _person_with_a_booking(app, number: str) -> int:
    runtime = app.extensions["adapter"]
    index = runtime.protector.blind_index(number, "RESIDENT_ID")
    with runtime.session_factory.begin() as db:
        account = WalletAccount(platform="fake", user_id=f"u{number[-4:]}")
        db.add(account)
        db.flush()
        patient = Patient(wallet_account_id=account.id, relation="self", name="测试",
                          document_type="RESIDENT_ID", document_number_enc=b"x",
                          document_index=index, document_masked="", sex="U")
        slot = Slot(his_slot_id=f"S{number[-4:]}", department_code="PED", doctor_code="D1001",
                    service_code="REG", start_at=T0, end_at=T0, capacity=1, booked=1,
                    fee_fen=2500)
        db.add_all([patient, slot])
        db.flush()
        booking = Booking(public_id=f"B{number[-6:]}", wallet_account_id=account.id,
                          patient_id=patient.id, patient_document_index=index, slot_id=slot.id,
                          department_code="PED", doctor_code="D1001", visit_date=T0.date(),
                          fee_fen=2500, hold_expires_at=T0)
        db.add(booking)
        db.flush()
        db.add(OutboxMessage(kind="his_book", subject_type="booking",
                             subject_id=str(booking.id), status=OutboxStatus.FAILED,
                             attempts=8, next_attempt_at=T0, created_at=T0))
        return booking.id


def test_a_person_is_searched_by_blind_index_and_the_number_goes_nowhere(app, caplog):
    mine = _person_with_a_booking(app, "110101198001010019")
    _person_with_a_booking(app, "110101198001010035")
    client = signed_in(app, "op", StaffRole.OPERATOR)
    response = _post(client, "/admin/messages/patient", source="outbox",
                     document_type="RESIDENT_ID", document_number="110101198001010019")
    assert response.status_code == 303
    location = response.headers["Location"]
    assert "110101198001010019" not in location and "patient_index=" in location
    page = client.get(location).get_data(as_text=True)
    assert f"booking:{mine}" in page and "共 1 条" in page
    assert "110101198001010019" not in page
    # the action repeats the same search: only that person's item is resent
    token = csrf_token(client, location)
    index = location.split("patient_index=")[1].split("&")[0]
    client.post("/admin/messages/reprocess", data={"source": "outbox", "status": "parked",
                                                   "patient_index": index,
                                                   "csrf_token": token})
    pending = [r for r in _rows(app, OutboxMessage).values() if r.status == "pending"]
    assert [r.subject_id for r in pending] == [str(mine)]
    with app.extensions["adapter"].session_factory() as db:
        audit = list(db.scalars(select(StaffAudit)))
    assert all("110101198001010019" not in (a.target + a.actor) for a in audit)
    assert "110101198001010019" not in caplog.text
    bad = _post(client, "/admin/messages/patient", document_type="NOPE", document_number="1")
    assert bad.status_code == 400
    assert client.get("/admin/messages?patient_index=zz").status_code == 400
