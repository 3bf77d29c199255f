"""A runtime with fake ports and the identity and booking use cases, for the dependant tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from sqlalchemy import select
from stdnum.cn import ric

from adapter.config import load_config
from adapter.db import write_transaction
from adapter.his.profile import Hl7Profile
from adapter.identity.dependants import Dependant
from adapter.identity.patients import add_dependant, sign_in_with_wallet
from adapter.mappings import load_mappings
from adapter.models import Patient, Slot
from adapter.protection import DataProtector, generate_key_file, load_keyring
from adapter.registration.booking import hold_slot
from adapter.registration.policy import RegistrationPolicy
from adapter.registration.rules import BookingRules
from adapter.runtime import Runtime
from tests.conftest import MAPPINGS
from tests.fakes import FakeHis, FakeWallet

MAP = load_mappings(MAPPINGS)
TZ = load_config({}).tz
DOCTOR = MAP.doctors_of("PED")[0]
CHILD_BIRTH = dt.date(2018, 5, 1)


def resident_id(birth: str, order: str) -> str:
    body = "110101" + birth + order
    return body + ric.calc_check_digit(body + "0")


CHILD_ID = resident_id("20180501", "024")


def make_runtime(engine, session_factory, tmp_path, rules: BookingRules | None = None,
                 his: FakeHis | None = None) -> Runtime:
    key_file = tmp_path / "data.key"
    generate_key_file(key_file)
    config = replace(load_config({}), secret_key="k", data_key_file=key_file)
    runtime = Runtime(config, engine, session_factory, MAP, Hl7Profile(),
                      booking_rules=rules or BookingRules(), policy=RegistrationPolicy())
    runtime.wallet, runtime.his = FakeWallet(), his or FakeHis()
    runtime.protector = DataProtector(load_keyring(key_file))
    return runtime


def account(runtime: Runtime, n: int, mobile: str) -> int:
    """A certified wallet user signs in; returns their account id."""
    runtime.wallet.add_user(f"code{n}", user_id=f"U{n}", is_certified=True, name=f"家长{n}",
                            document_type="RESIDENT_ID",
                            document_number=resident_id("19850101", f"{2 * n + 1:03d}"),
                            sex="M", mobile=mobile)
    with runtime.session_factory.begin() as session:
        signed = sign_in_with_wallet(session, runtime.wallet, runtime.protector, f"code{n}",
                                     dt.date.today(), now=runtime.clock.now())
    return signed.account_id


def add_child(runtime: Runtime, account_id: int, name: str = "王小明", phone: str = "") -> int:
    """The account adds the child as a dependant; returns the patient (link) id."""
    child = Dependant(name, "RESIDENT_ID", CHILD_ID, "child", guardian_consent=True)
    with runtime.session_factory.begin() as session:
        return add_dependant(session, runtime.protector, account_id, child, dt.date.today(),
                             phone=phone, now=runtime.clock.now()).id


def link(runtime: Runtime, patient_id: int) -> Patient:
    with runtime.session_factory() as session:
        return session.get(Patient, patient_id)


def add_slots(runtime: Runtime, count: int, days_ahead: int = 3) -> list[int]:
    """Slots of the paediatric doctor, released and bookable, one place each."""
    start = dt.datetime.combine(dt.date.today() + dt.timedelta(days=days_ahead), dt.time(9), TZ)
    with runtime.session_factory.begin() as session:
        first = len(session.scalars(select(Slot.id)).all())
        for n in range(first, first + count):
            session.add(Slot(his_slot_id=f"S{n}", department_code="PED",
                             doctor_code=DOCTOR.code, service_code=DOCTOR.service_code,
                             start_at=start + dt.timedelta(minutes=10 * n),
                             end_at=start + dt.timedelta(minutes=10 * (n + 1)), capacity=1,
                             booked=0, fee_fen=MAP.fee_fen(DOCTOR.service_code)))
    with runtime.session_factory() as session:
        return list(session.scalars(select(Slot.id).order_by(Slot.id)))[-count:]


def hold(runtime: Runtime, account_id: int, patient_id: int, slot_id: int):
    """Hold a slot; returns the booking's public id (raises Refusal)."""
    with runtime.session_factory.begin() as session:
        write_transaction(session)
        return hold_slot(session, account_id=account_id, patient_id=patient_id, slot_id=slot_id,
                         mappings=runtime.mappings, rules=runtime.booking_rules,
                         policy=runtime.policy, tz=TZ, now=runtime.clock.now()).public_id
