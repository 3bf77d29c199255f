"""What the /admin/ tests share: an app on the test database with a FakeClock, staff accounts
made through the use case, and a browser that signs in through the form (CSRF token and all)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace

from flask import Flask
from flask.testing import FlaskClient

from adapter import create_app
from adapter.config import load_config
from adapter.db import make_session_factory
from adapter.his.profile import Hl7Profile
from adapter.mappings import load_mappings
from adapter.runtime import Runtime
from adapter.staff.accounts import StaffUser, create_account
from tests.conftest import MAPPINGS
from tests.fakes import FakeClock, FakeWallet

T0 = dt.datetime(2030, 3, 7, 1, 0, tzinfo=dt.UTC)  # 09:00 in Shanghai
PASSWORD = "correct horse battery staple"
SECRET_KEY = "admin-test-secret-key-value"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
DOCTOR_CODE = "D1001"


def make_app(engine, **config) -> Flask:  # noqa: ANN001
    """The web app on ``engine`` with a FakeClock at T0 (runtime.clock)."""
    settings = replace(load_config({}), secret_key=SECRET_KEY, **config)
    runtime = Runtime(settings, engine, make_session_factory(engine), load_mappings(MAPPINGS),
                      Hl7Profile(), clock=FakeClock(T0))
    runtime.wallet = FakeWallet()
    return create_app(runtime=runtime)


def make_staff(app: Flask, username: str, role: str, doctor_code: str | None = None) -> StaffUser:
    """A staff account with PASSWORD."""
    runtime = app.extensions["adapter"]
    with runtime.session_factory.begin() as db:
        return create_account(db, username, PASSWORD, role, now=runtime.clock.now(),
                              doctor_code=doctor_code)


def csrf_token(client: FlaskClient, path: str = "/admin/login") -> str:
    """The CSRF token a page of /admin/ carries in its forms."""
    page = client.get(path)
    match = CSRF.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}: {page.status_code}"
    return match.group(1)


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD):  # noqa: ANN201
    """Post the sign-in form as a browser does; returns the response."""
    return client.post("/admin/login", data={"username": username, "password": password,
                                             "csrf_token": csrf_token(client)})


def signed_in(app: Flask, username: str, role: str, doctor_code: str | None = None) -> FlaskClient:
    """A browser signed in as a new staff account of ``role``."""
    make_staff(app, username, role, doctor_code)
    client = app.test_client()
    response = sign_in(client, username)
    assert response.status_code == 303, response.get_data(as_text=True)
    return client
