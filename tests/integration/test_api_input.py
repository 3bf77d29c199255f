"""What /api/v1 makes of input it did not expect: bounded, refused in its one error shape (4xx,
never 5xx), in the patient's language, without repeating the value in the answer or the log.

On SQLite and PostgreSQL: PostgreSQL refuses NUL bytes and over-long varchar where SQLite
stores them, so a value that reached the database would fail differently on each.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import replace

import pytest
from sqlalchemy import func, select
from stdnum.cn import ric

from adapter import create_app
from adapter.config import load_config
from adapter.his.profile import Hl7Profile
from adapter.identity.documents import DOCUMENT_TYPES
from adapter.mappings import load_mappings
from adapter.models import Patient, Slot
from adapter.protection import DataProtector, generate_key_file, load_keyring
from adapter.runtime import Runtime
from tests.conftest import MAPPINGS
from tests.fakes import FakeHis, FakeWallet, sign_in

MAP = load_mappings(MAPPINGS)
DAY = dt.date.today() + dt.timedelta(days=3)


def resident_id(birth: str, order: str) -> str:
    body = "110101" + birth + order
    return body + ric.calc_check_digit(body + "0")


CHILD = {"name": "李小宝", "document_type": "RESIDENT_ID",
         "document_number": resident_id("20200601", "042"), "relation": "child",
         "guardian_consent": True}


@pytest.fixture
def app(engine, session_factory, tmp_path):
    key_file = tmp_path / "data.key"
    generate_key_file(key_file)
    config = replace(load_config({}), secret_key="k", data_key_file=key_file)
    runtime = Runtime(config, engine, session_factory, MAP, Hl7Profile())
    runtime.wallet, runtime.his = FakeWallet(), FakeHis()
    runtime.protector = DataProtector(load_keyring(key_file))
    doctor = MAP.doctors_of("PED")[0]
    start = dt.datetime.combine(DAY, dt.time(9), config.tz)
    with session_factory.begin() as session:
        session.add(Slot(his_slot_id="S1", department_code="PED", doctor_code=doctor.code,
                         service_code=doctor.service_code, start_at=start,
                         end_at=start + dt.timedelta(minutes=10), capacity=5, booked=0,
                         fee_fen=MAP.fee_fen(doctor.service_code)))
    return create_app(runtime=runtime)


@pytest.fixture
def client(app):
    """A certified wallet user, signed in."""
    client = app.test_client()
    app.extensions["adapter"].wallet.add_user(
        "code-1", user_id="2088000000000101", is_certified=True, name="李建国",
        document_type="RESIDENT_ID", document_number=resident_id("19880512", "123"), sex="M")
    answer = sign_in(client, "code-1")
    assert answer.status_code == 201
    client.patient_id = answer.json["patients"][0]["id"]
    return client


def _raw(client, path, data: bytes | str, **headers):
    return client.post(path, data=data, content_type="application/json",
                       headers={"Idempotency-Key": "k-1", **headers})


def _refused(answer, status, code=None, *, value=""):
    """The one error shape, the status, the code; the message never repeats the value."""
    assert answer.status_code == status, answer.get_data(as_text=True)[:300]
    assert answer.mimetype == "application/json"
    assert set(answer.json) == {"error", "message"} and answer.json["message"]
    if code is not None:
        assert answer.json["error"] == code
    if value:
        assert value not in answer.get_data(as_text=True)


WRITES = ["/api/v1/session", "/api/v1/bookings", "/api/v1/payments", "/api/v1/patients"]


@pytest.mark.parametrize("body", ["[1]", '"x"', "true", "null", "1", "", "{", "[]",
                                  '{"a": NaN}'])
def test_a_body_that_is_not_a_json_object_is_a_400(client, body):
    for path in WRITES:
        _refused(_raw(client, path, body), 400)


def test_deeply_nested_arrays_are_a_400_not_a_recursion_error(client):
    for depth in (5, 1000, 30000):
        deep = "[" * depth + "]" * depth
        for path in WRITES:
            _refused(_raw(client, path, deep), 400)
    # Brackets inside a string are not nesting.
    named = client.post("/api/v1/patients", json={**CHILD, "name": "[[[[[[李]"})
    assert named.status_code == 201, named.json


def test_bodies_past_64_kib_and_too_many_query_parameters_are_a_413(client):
    big = json.dumps({**CHILD, "name": "张" * 100_000})
    for path in WRITES:
        _refused(_raw(client, path, big), 413, "request.too_large", value="张张张")
    _refused(_raw(client, "/api/v1/patients", json.dumps({**CHILD, "phone": "1" * 100_000})),
             413, "request.too_large")
    many = "&".join(f"p{n}=1" for n in range(21))
    _refused(client.get(f"/api/v1/slots?date={DAY}&department=PED&{many}"), 413)
    _refused(client.get(f"/api/v1/departments?{many}"), 413)
    # Twenty are fine, and parameters the API does not declare are ignored.
    few = "&".join(f"p{n}=1" for n in range(17))
    assert client.get(f"/api/v1/slots?date={DAY}&department=PED&{few}").status_code == 200


@pytest.mark.parametrize("value", [2**63, 2**63 - 1, 2**53, 2**31 * 2**31, 0, -1, True, "1", 1.5,
                                   None, 1e300, [1], {"id": 1}])
def test_ids_beyond_their_range_or_type_are_a_400(client, value):
    for field in ("slot_id", "patient_id"):
        body = {"slot_id": 1, "patient_id": client.patient_id, field: value}
        _refused(_raw(client, "/api/v1/bookings", json.dumps(body)), 400,
                 "booking_request.fields")


def test_an_integral_number_is_an_integer_as_json_schema_says(app, client, session_factory):
    with session_factory() as session:
        slot_id = session.scalar(select(Slot.id))
    held = _raw(client, "/api/v1/bookings",
                json.dumps({"slot_id": float(slot_id), "patient_id": client.patient_id}))
    assert held.status_code == 201, held.json


@pytest.mark.parametrize("public_id", ["x" * 1000, "B1\x00", "B..x", "B%00", "%ED%A0%80",
                                       "9" * 40])
def test_a_booking_id_that_cannot_exist_is_unknown(client, public_id):
    _refused(client.get(f"/api/v1/bookings/{public_id}"), 404, "booking.unknown")
    _refused(client.post(f"/api/v1/bookings/{public_id}/cancel", json={}), 404, "booking.unknown")
    _refused(client.post("/api/v1/payments", json={"booking_id": public_id}), 400,
             "payment.fields")


@pytest.mark.parametrize("date", ["9999-12-31", "0001-01-01", "1999-12-31", "2100-01-01",
                                  "2025-02-30", "1700000000", "2025-01-01T00:00", "", "%00"])
def test_dates_out_of_the_window_are_a_400_not_an_overflow(client, date):
    _refused(client.get(f"/api/v1/slots?date={date}&department=PED"), 400, "date.format")
    if date not in ("", "1999-12-31"):  # a birth date may be in the last century
        body = {**CHILD, "document_type": "PASSPORT", "document_number": "E12345678",
                "relation": "other", "birth_date": date}
        _refused(client.post("/api/v1/patients", json=body), 400, "birth_date.format")


def test_slots_need_a_department_or_a_doctor_and_codes_have_a_shape(client):
    _refused(client.get(f"/api/v1/slots?date={DAY}"), 400, "slots.filter")
    _refused(client.get(f"/api/v1/slots?date={DAY}&lang=en"), 400, "slots.filter")
    for code in ("PED%00", "P" * 41, "科室"):
        _refused(client.get(f"/api/v1/slots?date={DAY}&department={code}"), 400)
    assert client.get(f"/api/v1/slots?date={DAY}&doctor=D1001").status_code == 200


@pytest.mark.parametrize("name", ["李\x00小宝", "李\u202e小宝", "李\u2066小宝", "李\u200b小宝",
                                  "李\ufeff小宝", "李\n小宝", "李|小宝", "李^小宝", "x" * 51,
                                  "\ufdfa" * 3, " "])
def test_names_with_characters_no_name_has_or_too_long_are_refused(client, session_factory,
                                                                   caplog, name):
    caplog.set_level(logging.DEBUG)
    answer = client.post("/api/v1/patients?lang=en", json={**CHILD, "name": name})
    if name.strip():
        _refused(answer, 400, "name.invalid", value=name)
        assert "name" in answer.json["message"]
    else:
        _refused(answer, 422, "name.empty")
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Patient)) == 1  # self only
    assert name not in caplog.text or not name.strip()


def test_a_lone_surrogate_is_a_400_wherever_it_is(client):
    raw = json.dumps({**CHILD, "name": "李小宝"}).replace("\\u674e", "\\ud800")
    assert "\\ud800" in raw
    _refused(_raw(client, "/api/v1/patients", raw), 400)
    _refused(_raw(client, "/api/v1/session", '{"auth_code": "\\udc00", "state": "x"}'), 400)
    _refused(_raw(client, "/api/v1/payments", '{"booking_id": "B\\ud83d"}'), 400)


def test_names_of_real_people_pass(client):
    names = ["阿卜杜拉·买买提", "Zhang San", "O'Brien-Smith", "𠀀𪚥", "欧阳\ue000"]
    for n, name in enumerate(names):
        number = f"E{1234567 + n}"
        answer = client.post("/api/v1/patients", json={
            "name": name, "document_type": "PASSPORT", "document_number": number,
            "relation": "other", "birth_date": "1990-01-01"})
        assert answer.status_code in (201, 422), answer.json
        if answer.status_code == 422:
            assert answer.json["error"] == "patients.limit"


@pytest.mark.parametrize("phone", ["1" * 21, "138 0013 8000", "+1", "tel:138", "138\x00",
                                   "１３８００１３８０００"])
def test_phones_are_digits_and_hyphens_within_the_column(client, phone):
    _refused(client.post("/api/v1/patients", json={**CHILD, "phone": phone}), 400,
             "phone.invalid", value=phone)


def test_nul_bytes_and_over_long_values_never_reach_the_database(client, session_factory):
    values = {"document_number": ["110\x00101", "1" * 41], "name": ["李\x00", "李" * 101]}
    for field, bad in values.items():
        for value in bad:
            answer = client.post("/api/v1/patients", json={**CHILD, field: value})
            assert answer.status_code == 400, answer.json
    _refused(_raw(client, "/api/v1/bookings", '{"slot_id": 1, "patient_id": 1}',
                  **{"Idempotency-Key": "k\x01"}), 400, "idempotency.key_required")
    _refused(_raw(client, "/api/v1/bookings", '{"slot_id": 1, "patient_id": 1}',
                  **{"Idempotency-Key": "k" * 101}), 400, "idempotency.key_required")
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Patient)) == 1


def test_document_types_and_relations_keep_their_refusals(client):
    _refused(client.post("/api/v1/patients", json={**CHILD, "document_type": "MILITARY_ID"}),
             422, "document.type_unknown", value="MILITARY_ID")
    _refused(client.post("/api/v1/patients", json={**CHILD, "relation": "self"}), 422,
             "relation.self")
    _refused(client.post("/api/v1/patients", json={**CHILD, "relation": "cousin"}), 422,
             "relation.unknown")
    _refused(client.post("/api/v1/patients", json={**CHILD, "extra": 1}), 400, "patient.fields")
    _refused(client.post("/api/v1/patients", json={**CHILD, "guardian_consent": "yes"}), 400,
             "patient.fields")


def test_urls_are_http_or_https(client):
    for uri in ("javascript:alert(1)", "ftp://x", "//x", "http://a b", ""):
        _refused(client.get("/api/v1/session/login-url", query_string={"redirect_uri": uri}),
                 400, "redirect_uri.invalid")
    _refused(client.post("/api/v1/payments", json={"booking_id": "B1",
                                                  "return_url": "javascript:alert(1)"}),
             400, "return_url.invalid")


def test_unknown_paths_and_methods_answer_the_error_shape(client):
    _refused(client.get("/api/v1/nothing-here"), 404, "not_found")
    wrong = client.put("/api/v1/bookings")
    _refused(wrong, 405, "method.not_allowed")
    assert "POST" in wrong.headers["Allow"]


def test_an_unexpected_failure_is_a_json_500_that_tells_and_logs_no_value(app, client,
                                                                          monkeypatch, caplog):
    from adapter.web.api import patients

    def broken(*args, **kwargs):
        raise RuntimeError("DETAIL: Key (name)=(李小宝) 110101202006010424")

    monkeypatch.setattr(patients, "add_dependant", broken)
    caplog.set_level(logging.DEBUG)
    answer = client.post("/api/v1/patients", json=CHILD)
    _refused(answer, 500, "server.error", value="李小宝")
    assert "RuntimeError" in caplog.text
    assert "李小宝" not in caplog.text and "110101202006010424" not in caplog.text


def test_validation_messages_are_in_the_patients_language(client):
    zh = client.post("/api/v1/patients", json={**CHILD, "name": "x" * 51})
    en = client.post("/api/v1/patients?lang=en", json={**CHILD, "name": "x" * 51})
    assert "姓名" in zh.json["message"] and "name" in en.json["message"]
    big = _raw(client, "/api/v1/patients?lang=en", json.dumps({**CHILD, "name": "x" * 70_000}))
    assert "too large" in big.json["message"]


def test_the_description_states_the_rules(app):
    spec = app.test_client().get("/api/v1/openapi.json").json
    schemas = spec["components"]["schemas"]
    new = schemas["NewPatient"]
    assert new["additionalProperties"] is False
    assert new["properties"]["name"]["maxLength"] == 50
    assert set(new["properties"]["document_type"]["enum"]) == set(DOCUMENT_TYPES)
    assert new["properties"]["phone"]["maxLength"] == 20
    assert schemas["BookingBody"]["properties"]["slot_id"]["maximum"] == 2**53 - 1
    login = {p["name"]: p for p in spec["paths"]["/session/login-url"]["get"]["parameters"]}
    assert login["redirect_uri"]["schema"]["pattern"].startswith("^https?://")
    slots = spec["paths"]["/slots"]["get"]
    assert "department" in slots["description"] and "doctor" in slots["description"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            if method in ("post", "delete"):
                assert {"403", "413", "415"} <= statuses, (path, method)
            if path in ("/session", "/bookings", "/payments", "/slots") and method in (
                    "post", "get") and not (path == "/bookings" and method == "get"):
                assert "429" in statuses and "Retry-After" in operation["responses"]["429"][
                    "headers"], (path, method)
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    assert answer["content"]["application/json"]["schema"]["$ref"].endswith(
                        "/Error")
