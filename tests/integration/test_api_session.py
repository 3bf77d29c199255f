"""POST /api/v1/session and the patients a wallet user books for."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import replace

import pytest
from sqlalchemy import select
from stdnum.cn import ric

from adapter import create_app
from adapter.config import load_config
from adapter.his.profile import Hl7Profile
from adapter.identity.patients import DOCUMENT_CONTEXT
from adapter.mappings import load_mappings
from adapter.models import Patient
from adapter.protection import DataProtector, generate_key_file, load_keyring
from adapter.runtime import Runtime
from tests.conftest import MAPPINGS
from tests.fakes import FakeWallet, sign_in


def resident_id(region: str, birth: str, order: str) -> str:
    body = region + birth + order
    return body + ric.calc_check_digit(body + "0")  # it ignores the last character


PARENT_ID = resident_id("110101", "19880512", "123")  # odd order digit: male
CHILD_ID = resident_id("110101", "20200601", "042")


@pytest.fixture
def app(engine, session_factory, tmp_path):
    key_file = tmp_path / "data.key"
    generate_key_file(key_file)
    config = replace(load_config({}), secret_key="test-secret", data_key_file=key_file)
    runtime = Runtime(config, engine, session_factory, load_mappings(MAPPINGS), Hl7Profile())
    wallet = FakeWallet()
    runtime.wallet = wallet
    runtime.protector = DataProtector(load_keyring(key_file))
    app = create_app(runtime=runtime)
    app.wallet = wallet
    return app


def _sign_in(app, client, code="code-1", **user):
    fields = {"user_id": "2088000000000101", "is_certified": True, "name": "李建国",
              "document_type": "RESIDENT_ID", "document_number": PARENT_ID, "sex": "M",
              "mobile": "13800138000", **user}
    app.wallet.add_user(code, **fields)
    return sign_in(client, code)


def test_certified_user_becomes_the_self_patient_masked(app):
    client = app.test_client()
    response = _sign_in(app, client)
    assert response.status_code == 201
    [me] = response.json["patients"]
    assert me["relation"] == "self" and me["name"] == "李建国" and me["sex"] == "M"
    assert me["document_number"] == PARENT_ID[:3] + "*" * 11 + PARENT_ID[-4:]
    assert me["phone"] == "138****8000" and me["birth_date"] == "1988-05-12"
    assert client.get("/api/v1/patients").json["patients"] == [me]


def test_id_numbers_are_encrypted_at_rest_and_found_by_blind_index(app, session_factory):
    _sign_in(app, app.test_client())
    runtime = app.extensions["adapter"]
    with session_factory() as session:
        patient = session.scalar(select(Patient))
    assert PARENT_ID.encode() not in patient.document_number_enc
    assert b"13800138000" not in patient.phone_enc
    assert runtime.protector.decrypt(patient.document_number_enc, DOCUMENT_CONTEXT) == PARENT_ID
    assert patient.document_index == runtime.protector.blind_index(PARENT_ID, "RESIDENT_ID")


def test_signing_in_again_keeps_one_account_and_one_self(app):
    client = app.test_client()
    _sign_in(app, client, "code-1")
    again = _sign_in(app, client, "code-2")
    assert len(again.json["patients"]) == 1


def test_a_used_auth_code_is_refused_in_the_patients_language(app):
    client = app.test_client()
    _sign_in(app, client, "code-1")
    again = sign_in(client, "code-1")
    assert again.status_code == 401 and again.json["error"] == "auth_code.invalid"
    english = sign_in(client, "code-1", lang="en")
    assert "sign in again" in english.json["message"]


def test_parent_adds_a_child_with_consent(app):
    client = app.test_client()
    _sign_in(app, client)
    child = {"name": "李小宝", "document_type": "RESIDENT_ID", "document_number": CHILD_ID,
             "relation": "child"}
    refused = client.post("/api/v1/patients", json=child)
    assert refused.status_code == 422 and refused.json["error"] == "child.consent_required"
    assert "监护人" in refused.json["message"] or "同意" in refused.json["message"]
    added = client.post("/api/v1/patients", json={**child, "guardian_consent": True})
    assert added.status_code == 201
    assert added.json["relation"] == "child" and added.json["birth_date"] == "2020-06-01"
    twice = client.post("/api/v1/patients", json={**child, "guardian_consent": True})
    assert twice.json["error"] == "patient.exists"
    assert [p["relation"] for p in client.get("/api/v1/patients").json["patients"]] == [
        "self", "child"]


def test_bad_documents_are_refused_with_the_rule(app):
    client = app.test_client()
    _sign_in(app, client)
    bad = CHILD_ID[:-1] + ("0" if CHILD_ID[-1] != "0" else "1")
    response = client.post("/api/v1/patients?lang=en", json={
        "name": "李小宝", "document_type": "RESIDENT_ID", "document_number": bad,
        "relation": "child", "guardian_consent": True})
    assert response.status_code == 422 and response.json["error"] == "document.checksum"
    assert bad not in response.json["message"]


def test_uncertified_user_signs_in_but_cannot_add_patients(app):
    client = app.test_client()
    response = _sign_in(app, client, is_certified=False, document_number="", name="")
    assert response.status_code == 201 and response.json == {"certified": False, "patients": []}
    refused = client.post("/api/v1/patients", json={
        "name": "李小宝", "document_type": "RESIDENT_ID", "document_number": CHILD_ID,
        "relation": "child", "guardian_consent": True})
    assert refused.json["error"] == "account.not_certified"


def test_patients_need_a_session(app):
    response = app.test_client().get("/api/v1/patients")
    assert response.status_code == 401 and response.json["error"] == "session.required"


def test_wallet_down_is_a_clear_503(app):
    app.wallet.down = True
    response = sign_in(app.test_client(), "x")
    assert response.status_code == 503 and response.json["error"] == "wallet.unavailable"


def test_no_id_number_or_name_in_the_logs(app, caplog):
    caplog.set_level(logging.DEBUG)
    client = app.test_client()
    _sign_in(app, client)
    client.post("/api/v1/patients", json={
        "name": "李小宝", "document_type": "RESIDENT_ID", "document_number": CHILD_ID,
        "relation": "child", "guardian_consent": True})
    text = caplog.text
    for secret in (PARENT_ID, CHILD_ID, "李建国", "李小宝", "13800138000"):
        assert secret not in text


def test_openapi_describes_every_api_route(app):
    spec = app.test_client().get("/api/v1/openapi.json").json
    described = {(path, method.upper()) for path, item in spec["paths"].items()
                 for method in item}
    routed = {(re.sub(r"<(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1")), method)
              for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert described == routed


def test_dates_are_today_in_the_hospital_zone(app):
    assert app.extensions["adapter"].config.tz.key == "Asia/Shanghai"
    assert dt.date.today()  # the API uses the hospital's date, checked by the child rules above


def test_an_auth_code_without_this_browsers_state_is_refused(app):
    """Login CSRF: an attacker's auth_code planted in a victim's browser does not sign in."""
    app.wallet.add_user("attacker-code", user_id="2088000000000666", is_certified=True,
                        name="李建国", document_type="RESIDENT_ID", document_number=PARENT_ID,
                        sex="M")
    client = app.test_client()
    no_state = client.post("/api/v1/session", json={"auth_code": "attacker-code"})
    assert no_state.status_code == 400 and no_state.json["error"] == "login.state_mismatch"
    client.get("/api/v1/session/login-url?redirect_uri=http://127.0.0.1/h5/")
    forged = client.post("/api/v1/session", json={"auth_code": "attacker-code", "state": "x"})
    assert forged.json["error"] == "login.state_mismatch"
    assert "attacker-code" in app.wallet.users  # never even exchanged


def test_login_url_is_the_wallets_own_page(app):
    client = app.test_client()
    answer = client.get("/api/v1/session/login-url?redirect_uri=http://127.0.0.1/h5/").json
    assert answer["platform"] == "fake"
    assert answer["url"].startswith("https://wallet.example/authorize?")
    assert f"state={answer['state']}" in answer["url"]
    same = client.get("/api/v1/session/login-url?redirect_uri=http://127.0.0.1/h5/"
                      "&platform=fake").json
    assert same["platform"] == "fake"
    unknown = client.get("/api/v1/session/login-url?redirect_uri=http://127.0.0.1/h5/"
                         "&platform=nowallet")
    assert unknown.status_code == 400 and unknown.json["error"] == "platform.unknown"


def test_the_account_belongs_to_the_wallet_that_signed_in(app, session_factory):
    from adapter.models import WalletAccount

    _sign_in(app, app.test_client())
    with session_factory() as session:
        assert [a.platform for a in session.scalars(select(WalletAccount))] == ["fake"]


def test_wallet_down_names_the_wallet(app):
    app.wallet.down = True
    response = sign_in(app.test_client(), "x")
    assert response.json["message"].startswith("测试钱包")
