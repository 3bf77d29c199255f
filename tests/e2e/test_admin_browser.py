"""Hospital IT in Chromium on the real system (`hospital-adapter run`): the first admin made as
`run` says, a sign-in, a parked HIS booking message found by its booking number, resent, and
delivered by the real worker to the HIS simulator; every admin page loads without a console
error and the dashboard refreshes itself.

The booking is made through the API as a patient makes it; its HIS message is then parked in
the database as the outbox parks one after a long HIS outage (the simulator has no outage knob
to turn while it runs).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
import urllib.parse

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.conftest import MAPPINGS
from tests.e2e.conftest import Phone, RunningSystem, days_ahead, get_json, require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402 - only once the browser is known to exist

pytestmark = pytest.mark.slow

PASSWORD = "it desk password 2030"
TIMEOUT = 10


def _create_admin(system: RunningSystem) -> None:
    env = {**os.environ, "ADAPTER_DATA_DIR": str(system.folder),
           "ADAPTER_MAPPINGS_DIR": str(MAPPINGS)}
    env.pop("ADAPTER_DATABASE_URL", None)
    made = subprocess.run([sys.executable, "-m", "adapter.cli", "create-admin", "--username",
                           "admin"], input=PASSWORD + "\n", env=env, capture_output=True,
                          text=True, timeout=60, cwd=system.folder)
    assert made.returncode == 0, made.stderr
    assert PASSWORD not in made.stdout + made.stderr


def _booking(system: RunningSystem) -> tuple[int, str]:
    """A booking held through the API by a certified patient: (id, public id)."""
    http = requests.Session()
    api = f"{system.web}/api/v1"
    _, users = get_json(f"{system.sandbox}/_sandbox/users")
    user = next(u for u in users if u["cert_type"] == "0")  # type: ignore[union-attr]
    login = http.get(f"{api}/session/login-url", params={"redirect_uri": f"{system.web}/h5/"},
                     timeout=TIMEOUT).json()["url"]
    form = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(login).query))
    form["user_id"] = user["user_id"]
    answer = requests.post(login.partition("?")[0], data=form, allow_redirects=False,
                           timeout=TIMEOUT)
    back = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(answer.headers["Location"]).query))
    assert http.post(f"{api}/session", json={"auth_code": back["auth_code"],
                                             "state": back["state"]},
                     timeout=TIMEOUT).status_code == 201
    [me] = [p for p in http.get(f"{api}/patients", timeout=TIMEOUT).json()["patients"]
            if p["relation"] == "self"]
    slots = http.get(f"{api}/slots?department=PED&date={days_ahead(2)}",
                     timeout=TIMEOUT).json()["slots"]
    slot = next(s for s in slots if s["status"] == "open")
    held = http.post(f"{api}/bookings", json={"slot_id": slot["id"], "patient_id": me["id"]},
                     headers={"Idempotency-Key": "admin-e2e-1"}, timeout=TIMEOUT)
    assert held.status_code == 201, held.text
    public_id = held.json()["id"]
    engine = create_engine(f"sqlite:///{system.folder / 'adapter.db'}")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with engine.begin() as db:
        booking_id = db.execute(text("SELECT id FROM booking WHERE public_id = :p"),
                                {"p": public_id}).scalar_one()
        # Paid, and its SRM^S01 given up after a long outage: what the outbox leaves for staff.
        db.execute(text("UPDATE booking SET status = 'confirming' WHERE id = :b"),
                   {"b": booking_id})
        db.execute(text(
            "INSERT INTO outbox_message (kind, subject_type, subject_id, payload, status, "
            "attempts, next_attempt_at, last_error, created_at) VALUES ('his_book', 'booking', "
            ":b, '{}', 'failed', 12, :now, 'HisUnavailable', :now)"), {"b": str(booking_id),
                                                                       "now": now})
    engine.dispose()
    return booking_id, public_id


def _sign_in(phone: Phone, system: RunningSystem) -> None:
    page = phone.page
    page.goto(f"{system.web}/admin/")
    page.wait_for_url("**/admin/login**")
    page.get_by_label("用户名").fill("admin")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{system.web}/admin/")


def test_run_says_how_to_make_the_first_admin_and_where_to_sign_in(system):
    output = system.output()
    assert f"{system.web}/admin/" in output
    assert "hospital-adapter create-admin --username admin" in output


def test_a_parked_message_is_found_by_its_booking_resent_and_delivered(system, phone):
    _create_admin(system)
    booking_id, public_id = _booking(system)
    page = phone.page
    _sign_in(phone, system)
    # the dashboard counts it parked, and the count links to the browser filtered on it
    parked = page.locator("a[href*='type=his_book'][href*='status=parked']")
    expect(parked).to_have_text("1")

    page.goto(f"{system.web}/admin/messages")
    page.get_by_label("来源").select_option("outbox")
    page.get_by_label("预约号").fill(public_id)
    page.get_by_role("button", name="搜索", exact=True).click()
    row = page.locator("tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(f"booking:{booking_id}")
    expect(row).to_contain_text("搁置")

    page.get_by_role("button", name="重新处理搜索到的消息").click()
    expect(page.locator(".flash")).to_contain_text("已重新处理 1 条消息")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "完成" not in row.inner_text():
        time.sleep(0.5)
        page.reload()
    expect(row).to_contain_text("完成")  # delivered: the HIS simulator booked it
    status = get_json(f"{system.web}/readyz")[0]
    assert status == 200
    engine = create_engine(f"sqlite:///{system.folder / 'adapter.db'}")
    with engine.connect() as db:
        state, filler = db.execute(text(
            "SELECT status, filler_appointment_id FROM booking WHERE id = :b"),
            {"b": booking_id}).one()
        audited = db.execute(text("SELECT count(*) FROM staff_audit WHERE action = "
                                  "'message_reprocessed' AND actor = 'admin'")).scalar_one()
    engine.dispose()
    assert state == "confirmed" and filler
    assert audited == 1

    # every page of the staff side loads without a console error; the dashboard refreshes
    for path in ("/admin/", "/admin/?lang=en", "/admin/messages?source=inbound",
                 "/admin/alerts", "/admin/audit", "/admin/staff", "/admin/parked",
                 "/admin/reconciliation", "/admin/reconciliation?lang=en",
                 f"/admin/messages?source=outbox&booking="
                 f"{public_id}"):
        page.goto(f"{system.web}{path}")
        expect(page.locator("h1")).to_be_visible()
    page.goto(f"{system.web}/admin/")
    expect(page.locator("#dashboard")).to_have_attribute("data-refreshed", re.compile(r"\d+"),
                                                         timeout=15_000)
    page.goto(f"{system.web}/admin/messages?source=outbox&booking={public_id}")
    page.locator("tbody a").first.click()  # the raw view, admins only
    expect(page.locator("pre.raw")).to_be_visible()
    assert phone.errors == []

    page.get_by_role("button", name="退出登录").click()
    page.wait_for_url("**/admin/login")
    page.goto(f"{system.web}/admin/")
    page.wait_for_url("**/admin/login**")
