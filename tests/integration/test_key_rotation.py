"""Rotating the data key loses nothing: old rows decrypt, then move to the new key."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from stdnum.cn import ric

from adapter.identity.dependants import Dependant
from adapter.identity.patients import DOCUMENT_CONTEXT, add_dependant
from adapter.models import Patient, WalletAccount
from adapter.protection import DataProtector, add_key, generate_key_file, load_keyring
from adapter.rotation import rotate_personal_data


def _id(body: str) -> str:
    return body + ric.calc_check_digit(body + "0")


def test_rotation_reencrypts_and_keeps_every_number(session_factory, tmp_path):
    key_file = tmp_path / "data.key"
    generate_key_file(key_file)
    old = DataProtector(load_keyring(key_file))
    numbers = [_id(f"11010120{10 + n:02d}0101{n:03d}") for n in range(1, 4)]
    with session_factory.begin() as session:
        account = WalletAccount(platform="fake", user_id="2088", is_certified=True)
        session.add(account)
        session.flush()
        for n, number in enumerate(numbers):
            add_dependant(session, old, account.id, Dependant(
                f"孩子{n}", "RESIDENT_ID", number, "child", guardian_consent=True),
                dt.date(2026, 11, 26), phone="13900000000", now=dt.datetime.now(dt.UTC))
    new_key = add_key(key_file)
    new = DataProtector(load_keyring(key_file))
    with session_factory() as session:  # before rotating, old rows still decrypt
        blobs = session.scalars(select(Patient.document_number_enc)).all()
    assert sorted(new.decrypt(b, DOCUMENT_CONTEXT) for b in blobs) == sorted(numbers)
    assert all(new.needs_rotation(b) for b in blobs)

    report = rotate_personal_data(session_factory, new, batch_size=2)
    assert (report.examined, report.reencrypted, report.reindexed) == (3, 3, 0)
    with session_factory() as session:
        patients = session.scalars(select(Patient)).all()
    assert not any(new.needs_rotation(p.document_number_enc) for p in patients)
    assert not any(new.needs_rotation(p.phone_enc) for p in patients)
    assert sorted(new.decrypt(p.document_number_enc, DOCUMENT_CONTEXT) for p in patients) == \
        sorted(numbers)
    assert new.active_key_id == new_key
    assert rotate_personal_data(session_factory, new).reencrypted == 0
