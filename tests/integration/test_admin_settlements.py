"""Paid bills the HIS did not post (raised settlements) wait for staff on the parked work page,
with their amounts, until an operator marks them handled (audited); a viewer cannot."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from adapter.models import Patient, Settlement, StaffAudit, Verification, WalletAccount
from adapter.staff.accounts import StaffRole
from tests.integration.admin_kit import T0, csrf_token, make_app, signed_in


@pytest.fixture
def app(engine):
    app = make_app(engine)
    runtime = app.extensions["adapter"]
    with runtime.session_factory.begin() as db:
        account = WalletAccount(platform="fake", user_id="2088000000000009", is_certified=True)
        db.add(account)
        db.flush()
        patient = Patient(wallet_account_id=account.id, relation="self", name="王小明",
                          document_type="RESIDENT_ID", document_number_enc=b"x",
                          document_index="i" * 64, document_masked="1*****************X",
                          birth_date=dt.date(1980, 1, 1), sex="M", his_patient_id="P1",
                          verification=Verification.SELF)
        db.add(patient)
        db.flush()
        for public_id, raised in (("S1RAISED", T0), ("S2FINE", None)):
            db.add(Settlement(public_id=public_id, wallet_account_id=account.id,
                              patient_id=patient.id, his_patient_id="P1", status="refunded",
                              status_reason="HIS_UNREACHABLE", total_fen=12345,
                              self_pay_fen=12345, refunded_fen=12345,
                              out_trade_no=f"T{public_id}", lock_expires_at=T0,
                              commit_sent=0, raised_at=raised,
                              raised_reason="HIS_UNREACHABLE" if raised else ""))
    return app


def test_a_raised_bill_waits_on_the_parked_page_until_an_operator_handles_it(app):
    client = signed_in(app, "op", StaffRole.OPERATOR)
    page = client.get("/admin/parked").get_data(as_text=True)
    assert 'data-settlement="S1RAISED"' in page and "S2FINE" not in page
    assert "¥123.45" in page and "HIS_UNREACHABLE" in page
    assert "王小明" not in page  # ids and amounts, never who paid
    english = client.get("/admin/parked?lang=en").get_data(as_text=True)
    assert "Paid bills the HIS did not post" in english

    token = csrf_token(client, "/admin/parked")
    answer = client.post("/admin/settlements/S1RAISED/acknowledge", data={"csrf_token": token})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/admin/parked")
    assert 'data-settlement="S1RAISED"' not in client.get("/admin/parked").get_data(
        as_text=True)
    runtime = app.extensions["adapter"]
    with runtime.session_factory() as db:
        settlement = db.scalar(select(Settlement).where(Settlement.public_id == "S1RAISED"))
        assert (settlement.acknowledged_by, settlement.acknowledged_at) == ("op", T0)
        audit = db.scalar(select(StaffAudit).where(
            StaffAudit.action == "settlement_acknowledged"))
        assert (audit.actor, audit.target) == ("op", "settlement:S1RAISED")
    # Again, or a bill that was never raised: nothing changes, nothing more is audited.
    for public_id, status in (("S1RAISED", 303), ("S2FINE", 404), ("NOSUCH", 404)):
        assert client.post(f"/admin/settlements/{public_id}/acknowledge",
                           data={"csrf_token": token}).status_code == status
    with runtime.session_factory() as db:
        assert len(db.scalars(select(StaffAudit).where(
            StaffAudit.action == "settlement_acknowledged")).all()) == 1
        fine = db.scalar(select(Settlement).where(Settlement.public_id == "S2FINE"))
        assert fine.acknowledged_at is None


def test_a_viewer_sees_the_raised_bill_but_cannot_mark_it_handled(app):
    client = signed_in(app, "viewer", StaffRole.VIEWER)
    page = client.get("/admin/parked").get_data(as_text=True)
    assert 'data-settlement="S1RAISED"' in page and "acknowledge-settlement" not in page
    token = csrf_token(client, "/admin/parked")
    assert client.post("/admin/settlements/S1RAISED/acknowledge",
                       data={"csrf_token": token}).status_code == 403
