"""/api/v1/account/binding on SQLite and PostgreSQL: a wallet user the wallet did not certify
binds to a verified person, and until then may not book, pay or read results; the SMS gateway
and health card registry clients against the sandbox's over a real socket."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import urllib.request
from dataclasses import replace

import pytest
from flask import Flask
from sqlalchemy import select
from stdnum.cn import ric
from werkzeug.serving import make_server

from adapter import create_app
from adapter.config import load_config
from adapter.his.profile import Hl7Profile
from adapter.identity.binding import BindingPolicy
from adapter.mappings import load_mappings
from adapter.models_results import ResultView
from adapter.ports import PatientIdentity
from adapter.ports_identity import RegistryUnavailable
from adapter.protection import DataProtector, generate_key_file, load_keyring
from adapter.registry.http import HttpHealthCardRegistry, HttpSmsSender
from adapter.registry.sandbox import registry_blueprint, seed_cards
from adapter.runtime import Runtime
from tests.conftest import MAPPINGS
from tests.fakes import FakeClock, FakeHealthCards, FakeHis, FakeSms, FakeWallet, sign_in

NOW = dt.datetime(2030, 3, 4, 2, 0, tzinfo=dt.UTC)
BODY = "11010119850612123"
NUMBER = BODY + ric.calc_check_digit(BODY + "0")
CHILD_BODY = "11010120240601042"
CHILD = CHILD_BODY + ric.calc_check_digit(CHILD_BODY + "0")
NAME, PHONE = "张伟", "13800138001"
MATCH = {"method": "his_match", "name": NAME, "document_type": "RESIDENT_ID",
         "document_number": NUMBER, "phone": PHONE}


@pytest.fixture
def app(engine, session_factory, tmp_path):
    key_file = tmp_path / "data.key"
    generate_key_file(key_file)
    config = replace(load_config({}), secret_key="test-secret", data_key_file=key_file)
    runtime = Runtime(config, engine, session_factory, load_mappings(MAPPINGS), Hl7Profile(),
                      clock=FakeClock(NOW))
    runtime.wallet, runtime.his = FakeWallet(), FakeHis()
    runtime.sms, runtime.health_cards = FakeSms(), FakeHealthCards()
    runtime.binding = BindingPolicy(methods=("his_match", "health_card"))
    runtime.protector = DataProtector(load_keyring(key_file))
    runtime.his.patients[("RESIDENT_ID", NUMBER)] = PatientIdentity(
        NAME, "M", dt.date(1985, 6, 12), "RESIDENT_ID", NUMBER, PHONE, his_patient_id="H1")
    app = create_app(runtime=runtime)
    app.rt = runtime
    return app


def _client(app, n: int = 1):
    """A signed-in wallet user with an openid only."""
    client = app.test_client()
    app.rt.wallet.add_user(f"c{n}", user_id=f"openid-{n}", is_certified=False)
    assert sign_in(client, f"c{n}").json == {"certified": False, "patients": []}
    return client


def test_an_uncertified_account_may_not_book_pay_or_read_results(app):
    client = _client(app)
    booked = client.post("/api/v1/bookings", json={"slot_id": 1, "patient_id": 1},
                         headers={"Idempotency-Key": "k1"})
    paid = client.post("/api/v1/payments", json={"booking_id": "B1"})
    listed = client.get("/api/v1/results")
    read = client.get("/api/v1/results/7")
    for answer in (booked, paid, listed, read):
        assert answer.status_code == 422 and answer.json["error"] == "account.not_certified"
        assert "实名绑定" in answer.json["message"]
    with app.rt.session_factory() as session:
        assert set(session.scalars(select(ResultView.reason))) == {"uncertified"}


def test_a_his_match_binds_with_the_code_and_the_account_then_adds_a_child(app):
    client = _client(app)
    status = client.get("/api/v1/account/binding").json
    assert status["certified"] is False and status["methods"] == ["his_match", "health_card"]
    started = client.post("/api/v1/account/binding", json=MATCH)
    assert started.status_code == 200 and started.json["confirmation"] == "sms_code"
    assert started.json["phone"] != PHONE and started.json["tries_left"] == 5
    code = app.rt.sms.last_code(PHONE)
    wrong = client.post("/api/v1/account/binding/confirm",
                        json={"sms_code": "000000" if code != "000000" else "111111"})
    assert wrong.status_code == 422 and wrong.json["error"] == "binding.code_wrong"
    malformed = client.post("/api/v1/account/binding/confirm", json={"sms_code": "12ab"})
    assert malformed.status_code == 400
    bound = client.post("/api/v1/account/binding/confirm", json={"sms_code": code})
    assert bound.status_code == 200
    assert (bound.json["certified"], bound.json["bound_by"]) == (True, "his_match")
    (me,) = client.get("/api/v1/patients").json["patients"]
    assert (me["relation"], me["name"]) == ("self", NAME) and NUMBER not in str(me)
    child = client.post("/api/v1/patients", json={
        "name": "张小宝", "document_type": "RESIDENT_ID", "document_number": CHILD,
        "relation": "child", "guardian_consent": True})
    assert child.status_code == 201
    again = client.post("/api/v1/account/binding", json=MATCH)
    assert again.status_code == 409 and again.json["error"] == "binding.already_certified"


@pytest.mark.parametrize(("change", "code"), [
    ({"name": "张卫"}, "binding.name_mismatch"),
    ({"phone": "13900139002"}, "binding.phone_mismatch"),
    ({"document_number": "110101198506121249"[:17]
      + ric.calc_check_digit("11010119850612124" + "0")}, "binding.his_unknown"),
])
def test_a_his_match_the_hospital_does_not_hold_is_refused_in_the_patients_language(
        app, change, code):
    client = _client(app)
    answer = client.post("/api/v1/account/binding?lang=en", json={**MATCH, **change})
    assert answer.status_code == 422 and answer.json["error"] == code
    assert answer.json["message"].isascii() and NAME not in answer.json["message"]
    assert app.rt.sms.sent == []


def test_an_expired_code_is_refused_and_too_many_wrong_ones_end_the_attempt(app):
    client = _client(app)
    client.post("/api/v1/account/binding", json=MATCH)
    code = app.rt.sms.last_code(PHONE)
    app.rt.clock.advance(minutes=5, seconds=1)
    expired = client.post("/api/v1/account/binding/confirm", json={"sms_code": code})
    assert expired.json["error"] == "binding.code_expired"
    assert client.post("/api/v1/account/binding/resend", json={}).status_code == 200
    code = app.rt.sms.last_code(PHONE)
    wrong = "000000" if code != "000000" else "111111"
    answers = [client.post("/api/v1/account/binding/confirm", json={"sms_code": wrong}).json
               for _ in range(5)]
    assert [a["error"] for a in answers] == ["binding.code_wrong"] * 4 + [
        "binding.too_many_tries"]
    late = client.post("/api/v1/account/binding/confirm", json={"sms_code": code})
    assert late.status_code == 409 and late.json["error"] == "binding.nothing_pending"


def test_a_document_bound_to_another_account_is_refused(app):
    first = _client(app)
    first.post("/api/v1/account/binding", json=MATCH)
    first.post("/api/v1/account/binding/confirm", json={"sms_code": app.rt.sms.last_code(PHONE)})
    second = _client(app, 2)
    answer = second.post("/api/v1/account/binding", json=MATCH)
    assert answer.status_code == 409 and answer.json["error"] == "binding.bound_elsewhere"


def test_a_health_card_binds_at_once_and_an_unknown_one_is_refused(app):
    app.rt.health_cards.add("HC1", name="孙丽", document_type="RESIDENT_ID",
                            document_number=NUMBER[:-2] + "2" + ric.calc_check_digit(
                                NUMBER[:-2] + "2" + "0"), sex="F")
    client = _client(app)
    unknown = client.post("/api/v1/account/binding", json={"method": "health_card",
                                                           "card": "HC9"})
    assert unknown.json["error"] == "binding.card_unknown"
    bound = client.post("/api/v1/account/binding", json={"method": "health_card", "card": "HC1"})
    assert bound.status_code == 200 and bound.json["bound_by"] == "health_card"
    app.rt.health_cards.down = True
    down = _client(app, 2).post("/api/v1/account/binding",
                                json={"method": "health_card", "card": "HC1"})
    assert down.status_code == 503 and down.json["error"] == "health_card.unavailable"


def test_a_his_match_without_its_fields_is_malformed(app):
    answer = _client(app).post("/api/v1/account/binding", json={"method": "his_match",
                                                                 "name": NAME})
    assert answer.status_code == 400


@pytest.fixture
def registry_url():
    """The sandbox's SMS inbox and health card registry on a real socket."""
    app = Flask(__name__)
    bp = registry_blueprint()
    app.register_blueprint(bp)
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", bp.state
    server.shutdown()


def test_the_registry_clients_speak_to_the_sandbox_over_http(registry_url):
    url, state = registry_url
    HttpSmsSender(f"{url}/sms/send").send("+86 138-0013-8001", "验证码123456")
    with urllib.request.urlopen(f"{url}/sms/inbox/8613800138001", timeout=5) as response:
        assert re.search("123456", json.loads(response.read())["messages"][0]["text"])
    registry = HttpHealthCardRegistry(f"{url}/health-card")
    card = seed_cards()[0]
    found = registry.look_up(card.card_id)
    assert (found.name, found.document_number) == (card.name, card.document_number)
    assert card.document_number not in repr(found)
    assert registry.look_up("HC-none") is None
    state.down = True
    with pytest.raises(RegistryUnavailable):
        registry.look_up(card.card_id)
    with pytest.raises(RegistryUnavailable):
        HttpSmsSender("http://127.0.0.1:9/sms/send").send("1", "x")
