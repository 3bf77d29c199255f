"""The audit trail page: admins only, searchable by who, what, on what and when."""

from __future__ import annotations

import datetime as dt

import pytest

from adapter.staff.accounts import StaffRole
from adapter.staff.audit import Action, record
from tests.integration.admin_kit import T0, make_app, signed_in


@pytest.fixture
def app(engine):
    app = make_app(engine)
    with app.extensions["adapter"].session_factory.begin() as db:
        record(db, "dr.chen", Action.RESULT_RELEASED, "result:7", "10.1.1.1", T0)
        record(db, "op", Action.ALERT_ACKNOWLEDGED, "alert:3", "10.1.1.2",
               T0 - dt.timedelta(hours=3))
    return app


def test_only_admins_read_the_audit_trail(app):
    for role in (StaffRole.OPERATOR, StaffRole.VIEWER, StaffRole.DOCTOR):
        client = signed_in(app, f"u-{role}", role, "D1001" if role == StaffRole.DOCTOR else None)
        assert client.get("/admin/audit").status_code == 403, role
    admin = signed_in(app, "admin", StaffRole.ADMIN)
    page = admin.get("/admin/audit").get_data(as_text=True)
    assert "result:7" in page and "alert:3" in page and "10.1.1.1" in page


def test_the_trail_is_searched_by_actor_action_target_and_time(app):
    admin = signed_in(app, "admin", StaffRole.ADMIN)
    by_actor = admin.get("/admin/audit?actor=op").get_data(as_text=True)
    assert "alert:3" in by_actor and "result:7" not in by_actor
    by_action = admin.get("/admin/audit?action=result_released").get_data(as_text=True)
    assert "result:7" in by_action and "alert:3" not in by_action
    by_target = admin.get("/admin/audit?target=alert:").get_data(as_text=True)
    assert "alert:3" in by_target and "result:7" not in by_target
    # 07:00 in Shanghai is 23:00 UTC the day before: only the release (09:00) is later
    since = admin.get("/admin/audit?since=2030-03-07T07:00").get_data(as_text=True)
    assert "result:7" in since and "alert:3" not in since
    english = admin.get("/admin/audit?lang=en").get_data(as_text=True)
    assert "Audit trail" in english
    for bad in ("action=delete_everything", "since=soon", "actor=" + "a" * 101):
        assert admin.get(f"/admin/audit?{bad}").status_code == 400, bad
