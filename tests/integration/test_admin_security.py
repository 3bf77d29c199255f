"""/admin/ refuses everyone it should: every route without a session (the blueprint's url_map
is enumerated, so a new route is covered by itself), a viewer and a doctor on admin actions, a
form without its CSRF token; wrong passwords lock an account; sessions end when idle, at their
absolute lifetime and at sign-out; the cookie is HttpOnly, SameSite=Strict, for /admin only."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from sqlalchemy import select

from adapter.config import Throttles
from adapter.models import StaffAudit
from adapter.staff.accounts import Permission, StaffRole
from adapter.web.admin.guard import STAFF_COOKIE
from tests.integration.admin_kit import (
    DOCTOR_CODE,
    PASSWORD,
    csrf_token,
    make_app,
    make_staff,
    sign_in,
    signed_in,
)

PUBLIC = {"admin.login"}
# What a viewer and a doctor hold none of: acting, raw content, the audit trail, accounts.
ADMIN_ONLY = {Permission.OPERATE, Permission.RAW, Permission.AUDIT, Permission.STAFF}


@pytest.fixture
def app(engine):
    return make_app(engine, staff_lockout_failures=3, staff_lockout_minutes=15,
                    staff_session_idle_minutes=15, staff_session_max_hours=2)


# Arguments of the rules, by name; any other argument is an id: 1.
ARGUMENTS = {"source": "inbound"}


def _routes(app):
    """(endpoint, method, path) of every /admin/ rule, its arguments filled in."""
    urls = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin."):
            continue
        path = urls.build(rule.endpoint, {a: ARGUMENTS.get(a, 1) for a in rule.arguments})
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, path


def _call(client, method, path, **kwargs):
    return client.open(path, method=method, **kwargs)


def test_the_blueprint_has_the_routes_this_test_expects(app):
    endpoints = {endpoint for endpoint, _, _ in _routes(app)}
    assert {"admin.login", "admin.logout", "admin.dashboard", "admin.dashboard_json",
            "admin.alerts", "admin.doctor_results_page", "admin.release",
            "admin.doctor_acknowledge", "admin.alert_acknowledge", "admin.messages",
            "admin.messages_reprocess", "admin.messages_acknowledge",
            "admin.message_raw", "admin.parked", "admin.reconciliation",
            "admin.reconciliation_report", "admin.reconciliation_rerun",
            "admin.discrepancy_acknowledge", "admin.settlement_acknowledge"} <= endpoints
    for endpoint in endpoints - PUBLIC:  # every other view declares what it needs
        assert getattr(app.view_functions[endpoint], "staff_permission", None), endpoint


def test_every_admin_route_refuses_a_request_without_a_session(app):
    client = app.test_client()
    for endpoint, method, path in _routes(app):
        if endpoint in PUBLIC:
            continue
        response = _call(client, method, path)
        if method == "GET" and not path.endswith(".json"):
            assert response.status_code == 302, (endpoint, response.status_code)
            assert response.headers["Location"].startswith("/admin/login"), endpoint
        else:
            assert response.status_code == 401, (endpoint, method, response.status_code)
        assert response.headers["Cache-Control"] == "no-store", endpoint


def test_a_forged_or_foreign_cookie_is_no_session(app):
    client = app.test_client()
    client.set_cookie(STAFF_COOKIE, "x" * 43, path="/admin")
    assert client.get("/admin/").status_code == 302
    client.set_cookie(STAFF_COOKIE, "x" * 200, path="/admin")
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize("role", [StaffRole.VIEWER, StaffRole.DOCTOR])
def test_a_viewer_and_a_doctor_are_refused_every_admin_action(app, role):
    client = signed_in(app, f"u-{role}", role, DOCTOR_CODE if role == StaffRole.DOCTOR else None)
    page = "/admin/doctor" if role == StaffRole.DOCTOR else "/admin/alerts"
    token = csrf_token(client, page)
    guarded = 0
    for endpoint, method, path in _routes(app):
        if getattr(app.view_functions[endpoint], "staff_permission", None) in ADMIN_ONLY:
            response = _call(client, method, path, data={"csrf_token": token})
            assert response.status_code == 403, (endpoint, response.status_code)
            guarded += 1
    assert guarded >= 4  # acknowledge an alert, reprocess, acknowledge messages, raw content


def test_a_doctor_sees_only_the_doctor_pages(app):
    client = signed_in(app, "dr-chen", StaffRole.DOCTOR, DOCTOR_CODE)
    assert client.get("/admin/doctor").status_code == 200
    refused = client.get("/admin/").get_data(as_text=True)
    assert 'href="/admin/doctor"' in refused and 'href="/admin/messages"' not in refused
    for endpoint, method, path in _routes(app):
        if method == "GET" and endpoint not in PUBLIC and not endpoint.startswith("admin.doctor"):
            assert client.get(path).status_code == 403, endpoint


def test_admins_operators_and_viewers_cannot_open_the_doctor_pages(app):
    for role in (StaffRole.ADMIN, StaffRole.OPERATOR, StaffRole.VIEWER):
        client = signed_in(app, f"s-{role}", role)
        assert client.get("/admin/").status_code == 200
        assert client.get("/admin/doctor").status_code == 403, role


def test_every_form_needs_its_csrf_token(app):
    client = signed_in(app, "op", StaffRole.OPERATOR)
    response = client.post("/admin/logout")
    assert response.status_code == 400
    response = client.post("/admin/logout", data={"csrf_token": "not-the-token"})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 200  # still signed in
    stranger = app.test_client()
    response = stranger.post("/admin/login", data={"username": "op", "password": PASSWORD})
    assert response.status_code == 400
    assert client.post("/admin/logout", data={"csrf_token": csrf_token(client, "/admin/")}
                       ).status_code == 303
    assert client.get("/admin/").status_code == 302


def test_wrong_passwords_lock_the_account_for_the_period(app):
    make_staff(app, "admin1", StaffRole.ADMIN)
    clock = app.extensions["adapter"].clock
    client = app.test_client()
    assert sign_in(client, "admin1", "wrong password 1").status_code == 401
    assert sign_in(client, "admin1", "wrong password 2").status_code == 401
    locked = sign_in(client, "admin1", "wrong password 3")
    assert locked.status_code == 429
    # locked: even the right password is refused until the period has passed
    assert sign_in(client, "admin1").status_code == 429
    clock.advance(minutes=14)
    assert sign_in(client, "admin1").status_code == 429
    clock.advance(minutes=1, seconds=1)
    assert sign_in(client, "admin1").status_code == 303
    with app.extensions["adapter"].session_factory() as db:
        actions = list(db.scalars(select(StaffAudit.action).order_by(StaffAudit.id)))
    assert actions.count("sign_in_failed") == 5 and "locked_out" in actions
    assert actions[-1] == "sign_in"


def test_an_unknown_user_and_a_wrong_password_get_the_same_answer(app):
    make_staff(app, "admin1", StaffRole.ADMIN)
    client = app.test_client()
    unknown = sign_in(client, "nobody")
    wrong = sign_in(client, "admin1", "not the password")
    assert unknown.status_code == wrong.status_code == 401
    text = lambda r: re.sub(r'value="[^"]*"', "", r.get_data(as_text=True))  # noqa: E731
    assert text(unknown) == text(wrong)


def test_over_long_input_is_refused_without_error(app):
    client = app.test_client()
    response = sign_in(client, "a" * 10000, "b" * 100000)
    assert response.status_code == 401


def test_a_session_ends_when_idle_and_at_its_absolute_lifetime(app):
    clock = app.extensions["adapter"].clock
    client = signed_in(app, "viewer", StaffRole.VIEWER)
    for _ in range(7):  # used every 14 minutes: never idle, but the lifetime is 2 hours
        clock.advance(minutes=14)
        assert client.get("/admin/").status_code == 200
    clock.advance(minutes=14)  # 112 minutes in
    assert client.get("/admin/").status_code == 200
    clock.advance(minutes=8)  # 2 hours after sign-in
    assert client.get("/admin/").status_code == 302
    other = signed_in(app, "viewer2", StaffRole.VIEWER)
    clock.advance(minutes=15)  # unused for the idle timeout
    assert other.get("/admin/").status_code == 302


def test_the_session_cookie_is_httponly_strict_and_only_for_admin(app):
    make_staff(app, "admin1", StaffRole.ADMIN)
    client = app.test_client()
    cookie = sign_in(client, "admin1").headers["Set-Cookie"]
    assert cookie.startswith(f"{STAFF_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # development over http; production sets it:
    app.config["SESSION_COOKIE_SECURE"] = True
    cookie = sign_in(app.test_client(), "admin1").headers["Set-Cookie"]
    assert "Secure" in cookie


def test_pages_are_never_cached_and_carry_the_security_headers(app):
    client = signed_in(app, "admin1", StaffRole.ADMIN)
    for path in ("/admin/login", "/admin/", "/admin/alerts"):
        response = client.get(path)
        assert response.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_sign_in_page_never_redirects_off_the_admin_pages(app):
    make_staff(app, "admin1", StaffRole.ADMIN)
    for wanted in ("https://evil.example/", "//evil.example/admin/", "/h5/"):
        client = app.test_client()
        token = csrf_token(client)
        response = client.post("/admin/login", data={
            "username": "admin1", "password": PASSWORD, "csrf_token": token, "next": wanted})
        assert response.headers["Location"] == "/admin/", wanted
    client = app.test_client()
    token = csrf_token(client)
    response = client.post("/admin/login", data={
        "username": "admin1", "password": PASSWORD, "csrf_token": token, "next": "/admin/alerts"})
    assert response.headers["Location"] == "/admin/alerts"


def test_signing_in_again_ends_the_browsers_previous_session(app):
    make_staff(app, "admin1", StaffRole.ADMIN)
    client = app.test_client()
    sign_in(client, "admin1")
    old = client.get_cookie(STAFF_COOKIE, path="/admin").value
    def again(password):
        return client.post("/admin/login", data={"username": "admin1", "password": password,
                                                 "csrf_token": csrf_token(client, "/admin/")})
    assert again("a wrong password").status_code == 401  # a failed attempt keeps the session
    assert client.get("/admin/").status_code == 200
    assert again(PASSWORD).status_code == 303
    copy = app.test_client()
    copy.set_cookie(STAFF_COOKIE, old, path="/admin")
    assert copy.get("/admin/").status_code == 302
    assert client.get("/admin/").status_code == 200


def test_the_sign_in_page_is_throttled_per_client_address(engine):
    app = make_app(engine, throttles=replace(Throttles(), sign_in_per_ip="5/minute"))
    client = app.test_client()
    answers = [client.get("/admin/login").status_code for _ in range(6)]
    assert answers == [200] * 5 + [429]
    assert client.get("/admin/login").headers["Retry-After"]


def test_ids_past_bigint_and_at_its_edge_are_no_row_never_an_error(app):
    admin = signed_in(app, "admin1", StaffRole.ADMIN)
    doctor = signed_in(app, "dr1", StaffRole.DOCTOR, DOCTOR_CODE)
    tokens = {admin: csrf_token(admin, "/admin/"), doctor: csrf_token(doctor, "/admin/doctor")}
    checked = 0
    for rule in app.url_map.iter_rules():
        ids = [a for a in rule.arguments if a not in ARGUMENTS]
        if not rule.endpoint.startswith("admin.") or not ids:
            continue
        needs = app.view_functions[rule.endpoint].staff_permission
        client = doctor if needs == Permission.DOCTOR else admin
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for value, expected in ((2**64, {404}), (2**63 - 1, {404})):
                pattern = "<[^>]*:({})>".format("|".join(ids))
                path = re.sub(pattern, str(value), rule.rule)
                path = path.replace("<any(inbound, outbox, notification):source>", "inbound")
                response = client.open(path, method=method,
                                       data={"csrf_token": tokens[client]})
                assert response.status_code in expected, (rule.endpoint, value,
                                                          response.status_code)
                checked += 1
    assert checked >= 12
