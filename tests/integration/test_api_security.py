"""The patient session's life (sign-out, timeouts, key rotation, disabled accounts) and the
cross-site request forgery defence of /api/v1 (own Origin, JSON only)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from adapter import create_app
from adapter.cli import main
from adapter.config import load_config
from adapter.his.profile import Hl7Profile
from adapter.mappings import load_mappings
from adapter.models import WalletAccount
from adapter.protection import DataProtector, generate_key_file, load_keyring
from adapter.runtime import Runtime
from tests.conftest import MAPPINGS
from tests.fakes import FakeWallet, sign_in

EVIL = "https://evil.example"


class MovableClock:
    def __init__(self) -> None:
        self.moment = dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        return self.moment


@pytest.fixture
def make_app(engine, session_factory, tmp_path):
    key_file = tmp_path / "data.key"
    generate_key_file(key_file)
    wallet, clock = FakeWallet(), MovableClock()

    def make(secret_key: str = "test-secret", **config_changes):
        config = replace(load_config({}), secret_key=secret_key, data_key_file=key_file,
                         **config_changes)
        runtime = Runtime(config, engine, session_factory, load_mappings(MAPPINGS),
                          Hl7Profile(), clock=clock)
        runtime.wallet = wallet
        runtime.protector = DataProtector(load_keyring(key_file))
        app = create_app(runtime=runtime)
        app.wallet, app.clock = wallet, clock
        return app

    return make


@pytest.fixture
def app(make_app):
    return make_app()


def _signed_in(app, code: str = "code-1", user_id: str = "2088000000000101"):
    app.wallet.add_user(code, user_id=user_id, is_certified=False, name="", document_type="",
                        document_number="")
    client = app.test_client()
    assert sign_in(client, code).status_code == 201
    return client


def _copy(client, app):
    """Another browser holding a copy of the client's session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def _reads(client) -> int:
    return client.get("/api/v1/patients").status_code


# -- sessions ---------------------------------------------------------------------------------

def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(app):
    client = _signed_in(app)
    thief = _copy(client, app)
    assert _reads(thief) == 200
    assert client.delete("/api/v1/session", json={}).status_code == 204
    assert _reads(client) == 401 and _reads(thief) == 401
    assert thief.get("/api/v1/patients").json["error"] == "session.required"


def test_the_cookie_is_set_at_sign_in_and_not_refreshed_on_use(app):
    client = _signed_in(app)
    response = client.get("/api/v1/patients")
    assert response.status_code == 200 and "Set-Cookie" not in response.headers


def test_the_cookie_carries_a_random_token_not_the_account(app):
    import base64
    import json

    client = _signed_in(app)
    payload = client.get_cookie("session").value.split(".")[0]
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert set(data) - {"_permanent"} == {"sid"} and len(data["sid"]) >= 40


def test_an_idle_session_ends_and_the_pages_send_the_patient_to_sign_in(make_app):
    app = make_app(session_idle_minutes=30)
    client = _signed_in(app)
    app.clock.moment += dt.timedelta(minutes=29)
    assert _reads(client) == 200
    assert client.get("/h5/bookings").status_code == 200
    app.clock.moment += dt.timedelta(minutes=31)
    assert _reads(client) == 401
    page = client.get("/h5/bookings")
    assert page.status_code == 302 and page.headers["Location"].endswith("/h5/")


def test_a_session_ends_at_its_absolute_lifetime_however_busy(make_app):
    app = make_app(session_idle_minutes=30, session_max_hours=1)
    client = _signed_in(app)
    for _ in range(5):
        app.clock.moment += dt.timedelta(minutes=11)
        assert _reads(client) == 200
    app.clock.moment += dt.timedelta(minutes=6)
    assert _reads(client) == 401


def test_rotating_the_secret_key_ends_every_session(make_app):
    old = make_app(secret_key="old-key")
    client = _signed_in(old)
    cookie = client.get_cookie("session").value
    rotated = make_app(secret_key="new-key")
    browser = rotated.test_client()
    browser.set_cookie("session", cookie)
    assert _reads(browser) == 401  # the cookie's signature no longer verifies
    # Even where the old key is kept to verify cookies, the session made under it is over.
    lenient = make_app(secret_key="new-key")
    lenient.config["SECRET_KEY_FALLBACKS"] = ["old-key"]
    browser = lenient.test_client()
    browser.set_cookie("session", cookie)
    assert _reads(browser) == 401
    assert _reads(client) == 200  # the old key's app still knows it (nothing else changed)


def test_disabling_an_account_ends_its_sessions_and_refuses_sign_in(app, engine, tmp_path,
                                                                   session_factory):
    client = _signed_in(app)
    with session_factory() as db:
        account_id = db.scalar(select(WalletAccount.id))
    env = {"ADAPTER_DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "ADAPTER_MAPPINGS_DIR": str(MAPPINGS), "ADAPTER_DATA_DIR": str(tmp_path / "var")}
    result = CliRunner().invoke(main, ["account", "disable", str(account_id)], env=env)
    assert result.exit_code == 0, result.output
    assert "1 session(s) ended" in result.output
    assert _reads(client) == 401
    app.wallet.add_user("code-2", user_id="2088000000000101", is_certified=False, name="",
                        document_type="", document_number="")
    again = sign_in(app.test_client(), "code-2", lang="en")
    assert again.status_code == 422 and again.json["error"] == "account.disabled"
    assert "disabled" in again.json["message"]
    enabled = CliRunner().invoke(main, ["account", "enable", str(account_id)], env=env)
    assert enabled.exit_code == 0, enabled.output
    app.wallet.add_user("code-3", user_id="2088000000000101", is_certified=False, name="",
                        document_type="", document_number="")
    assert sign_in(app.test_client(), "code-3").status_code == 201
    unknown = CliRunner().invoke(main, ["account", "disable", "999999"], env=env)
    assert unknown.exit_code == 1 and "no wallet account 999999" in unknown.output


def test_signing_in_again_ends_the_browsers_previous_session(app):
    client = _signed_in(app, "code-1")
    before = _copy(client, app)
    app.wallet.add_user("code-2", user_id="2088000000000101", is_certified=False, name="",
                        document_type="", document_number="")
    assert sign_in(client, "code-2").status_code == 201
    assert _reads(client) == 200 and _reads(before) == 401


# -- cross-site request forgery ---------------------------------------------------------------

def test_a_write_from_a_foreign_origin_is_refused_in_the_patients_language(app):
    client = _signed_in(app)
    refused = client.delete("/api/v1/session?lang=en", json={}, headers={"Origin": EVIL})
    assert refused.status_code == 403 and refused.json["error"] == "origin.forbidden"
    assert refused.json["message"].isascii()
    zh = client.delete("/api/v1/session", json={}, headers={"Origin": EVIL})
    assert zh.json["message"] == "请求来源不被允许"
    assert _reads(client) == 200  # not signed out


@pytest.mark.parametrize("headers", [
    {"Origin": EVIL},
    {"Origin": "null"},  # a sandboxed frame or a data: page
    {"Referer": f"{EVIL}/page.html"},  # no Origin: the Referer decides
    {"Origin": "http://localhost:8080"},  # another port is another origin
])
def test_foreign_or_opaque_origins_cannot_write(app, headers):
    client = _signed_in(app)
    response = client.post("/api/v1/patients", json={"name": "x"}, headers=headers)
    assert response.status_code == 403 and response.json["error"] == "origin.forbidden"


def test_writes_accept_json_only_even_without_a_body(app):
    client = _signed_in(app)
    for response in (
        client.post("/api/v1/patients", data={"name": "x"}),
        client.post("/api/v1/patients", data="{}", content_type="text/plain"),
        client.post("/api/v1/bookings/B1/cancel"),
        client.delete("/api/v1/session"),
    ):
        assert response.status_code == 415, response.request.path
        assert response.json["error"] == "content_type.unsupported"
    assert _reads(client) == 200
    assert client.delete("/api/v1/session", headers={"Content-Type": "application/json"},
                         ).status_code == 204


def test_the_adapters_own_origins_may_write(make_app):
    app = make_app(public_url="https://h5.hospital.example", environment="development",
                   allowed_origins=("https://wallet-app.example",))
    client = _signed_in(app)
    for origin in ("https://h5.hospital.example", "https://wallet-app.example"):
        response = client.post("/api/v1/bookings/B1/cancel", json={}, headers={"Origin": origin})
        assert response.status_code == 404, origin  # past the guard: no such booking
    referer = client.post("/api/v1/bookings/B1/cancel", json={},
                          headers={"Referer": "https://h5.hospital.example/h5/bookings/B1"})
    assert referer.status_code == 404
    # With ADAPTER_PUBLIC_URL set, the Host a request names is not an origin of its own.
    host = client.post("/api/v1/bookings/B1/cancel", json={},
                       headers={"Origin": "http://localhost"})
    assert host.status_code == 403


def test_reads_and_wallet_notifications_are_not_affected(app):
    client = _signed_in(app)
    assert client.get("/api/v1/patients", headers={"Origin": EVIL}).status_code == 200
    notify = client.post("/notify/alipay", data={"notify_id": "x"}, headers={"Origin": EVIL})
    assert notify.status_code not in (403, 415)


def test_allowed_origins_are_configured_by_name():
    config = load_config({"ADAPTER_ALLOWED_ORIGINS": "https://A.example, https://b.example:8443/"})
    assert config.allowed_origins == ("https://a.example", "https://b.example:8443")
