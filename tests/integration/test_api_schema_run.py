"""A schema-driven run: schemathesis generates requests from /api/v1/openapi.json (valid ones
and invalid ones) and sends them, signed in, through the WSGI app to a real database.

Holds: no answer is a 5xx; every status is one the document lists for the operation, with the
declared content type, headers and schema; invalid data is refused. Bounded: a fixed number of
cases per operation and mode, no shrinking. The summary line (operations, cases, failures, wall
time) is printed; run with -s to see it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass, replace

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.generation.meta import TestPhase
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from stdnum.cn import ric

from adapter import create_app
from adapter.config import load_config
from adapter.his.profile import Hl7Profile
from adapter.mappings import load_mappings
from adapter.models import Slot
from adapter.protection import DataProtector, generate_key_file, load_keyring
from adapter.runtime import Runtime
from adapter.web.openapi import openapi
from tests.conftest import MAPPINGS
from tests.fakes import FakeHis, FakeWallet, sign_in

pytestmark = pytest.mark.slow

CASES = 25  # generated per operation, besides the boundary (coverage) cases
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance, negative_data_rejection]


@pytest.fixture
def api(engine, session_factory, tmp_path):
    """The app with a pool of slots, and a function that signs a new patient in."""
    key_file = tmp_path / "data.key"
    generate_key_file(key_file)
    # Throttles off: 1,400 cases from one patient would otherwise be mostly 429s (the throttles
    # have their own tests), and the run is meant to reach every handler.
    config = replace(load_config({}), secret_key="k", data_key_file=key_file, throttle=False)
    mappings = load_mappings(MAPPINGS)
    runtime = Runtime(config, engine, session_factory, mappings, Hl7Profile())
    runtime.wallet, runtime.his = FakeWallet(), FakeHis()
    runtime.protector = DataProtector(load_keyring(key_file))
    app = create_app(runtime=runtime)
    slot_ids: list[int] = []  # the first doctor's, then the second's
    start = dt.datetime.combine(dt.date.today() + dt.timedelta(days=3), dt.time(9), config.tz)
    with session_factory.begin() as session:
        for d, doctor in enumerate(mappings.doctors_of("PED")[:2]):
            for n in range(3):
                at = start + dt.timedelta(minutes=10 * n)
                session.add(Slot(his_slot_id=f"S{d}{n}", department_code="PED",
                                 doctor_code=doctor.code, service_code=doctor.service_code,
                                 start_at=at, end_at=at + dt.timedelta(minutes=10),
                                 capacity=50, booked=0,
                                 fee_fen=mappings.fee_fen(doctor.service_code)))
        session.flush()
        slot_ids += [slot.id for slot in session.query(Slot).order_by(Slot.his_slot_id)]
    signed = iter(range(10**6))

    def signed_in() -> Known:
        n = next(signed)
        body = "110101" + "19800101" + f"{2 * (n % 400) + 1:03d}"
        runtime.wallet.add_user(f"code{n}", user_id=f"2088{n:012d}", is_certified=True,
                                name="测试", document_type="RESIDENT_ID",
                                document_number=body + ric.calc_check_digit(body + "0"), sex="M")
        client = app.test_client()
        answer = sign_in(client, f"code{n}")
        assert answer.status_code == 201
        known = Known({"session": client.get_cookie("session").value},
                      answer.json["patients"][0]["id"])
        held = client.post("/api/v1/bookings", json={"slot_id": slot_ids[n % 3],
                                                    "patient_id": known.patient_id},
                           headers={"Idempotency-Key": f"k{n}"})
        known.booking_id = held.json["id"] if held.status_code == 201 else "B000000"
        return known

    return app, signed_in, slot_ids


@dataclass
class Known:
    """A signed-in patient's cookie and things of theirs, for cases that find something."""

    cookies: dict[str, str]
    patient_id: int
    booking_id: str = ""


def _aim(case, known: Known, slot_ids: list[int], n: int) -> None:
    """Every other generated valid case names the patient's own things, so that success paths
    run too (the boundary cases are sent as generated)."""
    if n % 2 or case.operation.label in ("DELETE /session", "POST /session"):
        return
    if case.path_parameters and "public_id" in case.path_parameters:
        case.path_parameters["public_id"] = known.booking_id
    if isinstance(case.body, dict) and "slot_id" in case.body:
        case.body.update(slot_id=slot_ids[3 + n % 3], patient_id=known.patient_id)
    if isinstance(case.body, dict) and "booking_id" in case.body:
        case.body["booking_id"] = known.booking_id


# The document the app serves at /api/v1/openapi.json (a test below checks it is this one).
schema = schemathesis.openapi.from_dict(openapi())


@pytest.fixture
def state(api):
    """The signed-in patient the cases are sent as (again after a case signs out)."""
    app, signed_in, slot_ids = api
    return {"app": app, "known": signed_in(), "signed_in": signed_in, "slot_ids": slot_ids}


@pytest.fixture(scope="module", autouse=True)
def _figures(request):
    """Print the run's figures when the module is done."""
    FIGURES["began"] = time.monotonic()
    yield
    labels = {label for label, _ in FIGURES["operations"]}
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(FIGURES["statuses"].items()))
    print(f"\nschema-driven run: {len(labels)} operations, {FIGURES['cases']} cases, "
          f"{len(FIGURES['failures'])} failures, {time.monotonic() - FIGURES['began']:.1f} s "
          f"(statuses {statuses})")


FIGURES = {"cases": 0, "operations": set(), "statuses": Counter(), "failures": set(),
           "began": 0.0}


@schema.parametrize()
@settings(max_examples=CASES, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_the_generated_description_holds_for_generated_requests(case, state, engine):
    FIGURES["cases"] += 1
    FIGURES["operations"].add((case.operation.label, engine.dialect.name))
    if case.meta is not None and case.meta.phase.name == TestPhase.FUZZING \
            and case.meta.generation.mode == GenerationMode.POSITIVE:
        _aim(case, state["known"], state["slot_ids"], FIGURES["cases"])
    try:
        answer = case.call_and_validate(app=state["app"], cookies=state["known"].cookies,
                                        checks=CHECKS)
    except (AssertionError, BaseExceptionGroup):
        FIGURES["failures"].add(case.operation.label)
        raise
    finally:
        if case.operation.method.upper() == "DELETE":
            state["known"] = state["signed_in"]()  # signed out: sign in again
    FIGURES["statuses"][answer.status_code] += 1


def test_the_run_uses_the_document_the_app_serves(api):
    assert api[0].test_client().get("/api/v1/openapi.json").json == openapi()
