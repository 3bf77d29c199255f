"""Staff accounts from /admin/staff: an admin adds a doctor who can then sign in, disables an
account (its sessions end at once), and cannot disable themselves; all audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from adapter.models import StaffAccount, StaffAudit
from adapter.staff.accounts import StaffRole
from tests.integration.admin_kit import csrf_token, make_app, sign_in, signed_in

NEW_PASSWORD = "a new doctor's password"


@pytest.fixture
def app(engine):
    return make_app(engine)


def _add(client, **fields):
    return client.post("/admin/staff", data={**fields,
                                             "csrf_token": csrf_token(client, "/admin/staff")})


def test_an_admin_adds_a_doctor_who_then_signs_in_to_the_doctor_page(app):
    admin = signed_in(app, "admin", StaffRole.ADMIN)
    response = _add(admin, username="dr.lin", role="doctor", doctor_code="D1002",
                    password=NEW_PASSWORD)
    assert response.status_code == 303
    page = admin.get("/admin/staff").get_data(as_text=True)
    assert "dr.lin" in page and "林晓雯" in page and NEW_PASSWORD not in page
    doctor = app.test_client()
    assert sign_in(doctor, "dr.lin", NEW_PASSWORD).headers["Location"] == "/admin/doctor"
    with app.extensions["adapter"].session_factory() as db:
        account = db.scalar(select(StaffAccount).where(StaffAccount.username == "dr.lin"))
        created = db.scalar(select(StaffAudit).where(StaffAudit.action == "account_created",
                                                     StaffAudit.target == f"staff:{account.id}"))
    assert account.doctor_code == "D1002" and created.actor == "admin"


@pytest.mark.parametrize(("fields", "text"), [
    ({"username": "x y", "role": "viewer", "password": NEW_PASSWORD}, "用户名须为"),
    ({"username": "dr.x", "role": "doctor", "password": NEW_PASSWORD}, "医生编码"),
    ({"username": "v", "role": "viewer", "password": "short"}, "至少需要12个字符"),
    ({"username": "v", "role": "root", "password": NEW_PASSWORD}, "未知的角色"),
    ({"username": "v", "role": "viewer", "password": "p" * 300}, "最多"),
])
def test_a_bad_account_is_refused_with_the_reason(app, fields, text):
    admin = signed_in(app, "admin", StaffRole.ADMIN)
    response = _add(admin, **fields)
    assert response.status_code == 400 and text in response.get_data(as_text=True)


def test_disabling_ends_the_accounts_sessions_and_an_admin_keeps_their_own(app):
    admin = signed_in(app, "admin", StaffRole.ADMIN)
    viewer = signed_in(app, "viewer", StaffRole.VIEWER)
    with app.extensions["adapter"].session_factory() as db:
        ids = {a.username: a.id for a in db.scalars(select(StaffAccount))}
    token = csrf_token(admin, "/admin/staff")
    assert admin.post(f"/admin/staff/{ids['admin']}/disable",
                      data={"csrf_token": token}).status_code == 409
    assert admin.post(f"/admin/staff/{ids['viewer']}/disable",
                      data={"csrf_token": token}).status_code == 303
    assert viewer.get("/admin/").status_code == 302
    assert sign_in(app.test_client(), "viewer").status_code == 401
    assert admin.post("/admin/staff/999999/disable", data={"csrf_token": token}
                      ).status_code == 404
    with app.extensions["adapter"].session_factory() as db:
        audit = db.scalar(select(StaffAudit).where(StaffAudit.action == "account_disabled"))
    assert (audit.actor, audit.target) == ("admin", f"staff:{ids['viewer']}")
