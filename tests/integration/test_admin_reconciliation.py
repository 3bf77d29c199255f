"""Reconciliation reports and parked work over HTTP on SQLite and PostgreSQL: the days and
their outcome, a day's report in both languages with amounts in yuan, a discrepancy marked as
handled (audited) by an operator and not by a viewer, a day run again; parked work listed with
its actions, which are the message browser's own; every new page reachable from the nav."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from adapter.models import (
    InboundMessage,
    InboundStatus,
    OutboxMessage,
    OutboxStatus,
    ReconciliationDiscrepancy,
    ReconciliationRun,
    StaffAudit,
)
from adapter.staff.accounts import StaffRole
from tests.fakes import FakeHis
from tests.integration.admin_kit import T0, csrf_token, make_app, signed_in

DAY = dt.date(2030, 3, 6)  # the day before T0 in Shanghai
BOOK = {"payments": 2, "payment_fen": 3500, "refunds": 0, "refund_fen": 0}


@pytest.fixture
def app(engine):
    app = make_app(engine)
    runtime = app.extensions["adapter"]
    runtime.his = FakeHis()
    with runtime.session_factory.begin() as db:
        run = ReconciliationRun(day=DAY, platform="alipay", trigger="schedule", status="done",
                                started_at=T0, finished_at=T0, discrepancies=2, healed=1,
                                summary=json.dumps({
                                    "wallet": {**BOOK, "payments": 3, "payment_fen": 4490},
                                    "adapter": BOOK, "his": BOOK,
                                    "problems": {"wallet": 0, "his": 0},
                                    "by_kind": {"wallet_only": {"count": 1, "fen": 990},
                                                "paid_not_posted": {"count": 1, "fen": 2500}},
                                    "healed": 1}))
        db.add(run)
        db.flush()
        db.add_all([
            ReconciliationDiscrepancy(run_id=run.id, kind="wallet_only",
                                      out_trade_no="OTHER-1", wallet_fen=990,
                                      action="find_owner"),
            ReconciliationDiscrepancy(run_id=run.id, kind="paid_not_posted",
                                      out_trade_no="RB1", his_receipt_no="", wallet_fen=2500,
                                      adapter_fen=None, action="apply_payment", healed=True,
                                      heal="posted")])
        db.add(InboundMessage(received_at=T0, sender="HIS", control_id="BAD1", digest="1" * 64,
                              message_type="ADT^A08", status=InboundStatus.FAILED,
                              ack_code="AA", error_code="207", raw=b"MSH|", ack=b"MSA|"))
        db.add(OutboxMessage(kind="his_book", subject_type="booking", subject_id="9",
                             status=OutboxStatus.FAILED, attempts=8, next_attempt_at=T0,
                             last_error="HisRefused", created_at=T0))
    return app


def _run_id(app) -> int:
    with app.extensions["adapter"].session_factory() as db:
        return db.scalar(select(ReconciliationRun.id))


def _audit(app, action):
    with app.extensions["adapter"].session_factory() as db:
        return list(db.scalars(select(StaffAudit.target).where(StaffAudit.action == action)))


def test_the_days_and_a_days_report_show_outcomes_and_yuan_in_both_languages(app):
    client = signed_in(app, "viewer", StaffRole.VIEWER)
    days = client.get("/admin/reconciliation").get_data(as_text=True)
    assert 'data-outcome="mismatches"' in days and "2030-03-06" in days
    assert "¥44.90" in days and "¥35.00" in days
    report = client.get(f"/admin/reconciliation/{_run_id(app)}").get_data(as_text=True)
    assert "OTHER-1" in report and "9.90" in report and "钱包有收款，本系统无此交易" in report
    assert "已自动处理" in report
    english = client.get(f"/admin/reconciliation/{_run_id(app)}?lang=en").get_data(as_text=True)
    assert "Reconciliation of 2030-03-06" in english
    # a viewer sees no action
    assert "/acknowledge" not in report and 'id="rerun"' not in report
    assert client.get("/admin/reconciliation/999999").status_code == 404


def test_an_operator_marks_a_discrepancy_handled_and_the_day_then_matches(app):
    client = signed_in(app, "op", StaffRole.OPERATOR)
    run_id = _run_id(app)
    with app.extensions["adapter"].session_factory() as db:
        open_id = db.scalar(select(ReconciliationDiscrepancy.id).where(
            ReconciliationDiscrepancy.healed.is_(False)))
    token = csrf_token(client, f"/admin/reconciliation/{run_id}")
    assert client.post(f"/admin/reconciliation/discrepancies/{open_id}/acknowledge"
                       ).status_code == 400  # no CSRF token
    response = client.post(f"/admin/reconciliation/discrepancies/{open_id}/acknowledge",
                           data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/admin/reconciliation/{run_id}")
    assert 'data-outcome="matched"' in client.get("/admin/reconciliation").get_data(as_text=True)
    assert _audit(app, "discrepancy_acknowledged") == [f"discrepancy:{open_id}"]


def test_a_day_is_run_again_from_the_report(app):
    client = signed_in(app, "op", StaffRole.OPERATOR)
    token = csrf_token(client, "/admin/reconciliation")
    response = client.post("/admin/reconciliation/rerun",
                           data={"csrf_token": token, "day": DAY.isoformat()})
    assert response.status_code == 303
    with app.extensions["adapter"].session_factory() as db:
        runs = list(db.scalars(select(ReconciliationRun).order_by(ReconciliationRun.id)))
    assert [(r.trigger, r.status) for r in runs] == [("schedule", "done"), ("staff", "done")]
    assert response.headers["Location"].endswith(f"/admin/reconciliation/{runs[-1].id}")
    assert _audit(app, "reconciliation_run") == [f"reconciliation:{DAY.isoformat()}"]
    for day in ("2030-03-07", "not a day", ""):  # today, nonsense
        assert client.post("/admin/reconciliation/rerun",
                           data={"csrf_token": token, "day": day}).status_code == 400


def test_parked_work_is_listed_and_its_buttons_are_the_browsers_actions(app):
    client = signed_in(app, "op", StaffRole.OPERATOR)
    page = client.get("/admin/parked").get_data(as_text=True)
    assert "BAD1" in page and "booking:9" in page
    assert 'id="reprocess-inbound-failed"' in page and 'id="resend-outbox-parked"' in page
    token = csrf_token(client, "/admin/parked")
    response = client.post("/admin/messages/reprocess", data={
        "csrf_token": token, "source": "outbox", "status": "parked", "open": "1",
        "back": "parked"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/parked")
    response = client.post("/admin/messages/acknowledge", data={
        "csrf_token": token, "source": "inbound", "status": "failed", "open": "1",
        "back": "parked"})
    assert response.status_code == 303
    page = client.get("/admin/parked").get_data(as_text=True)
    assert "BAD1" not in page and "booking:9" not in page
    assert len(_audit(app, "message_reprocessed")) == len(_audit(app, "message_acknowledged")) == 1


def test_the_nav_reaches_alerts_parked_work_and_reconciliation(app):
    client = signed_in(app, "viewer", StaffRole.VIEWER)
    nav = client.get("/admin/").get_data(as_text=True)
    for path in ("/admin/alerts", "/admin/parked", "/admin/reconciliation"):
        assert f'href="{path}"' in nav
        assert client.get(path).status_code == 200
    parked = client.get("/admin/parked").get_data(as_text=True)
    assert "/admin/messages/reprocess" not in parked  # a viewer cannot act
