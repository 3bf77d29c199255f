"""Outgoing messages are validated by hl7apy once per shape (adapter/his/segments.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from adapter.his import segments
from adapter.his.patients import build_adt_a28
from adapter.his.profile import Hl7Profile
from adapter.his.segments import MessageError
from adapter.ports import PatientIdentity
from tests.hl7_fixtures import hl7apy_valid

NOW = dt.datetime(2026, 12, 3, 1, 0, tzinfo=dt.UTC)


def _person(name: str, number: str = "110101199003077777") -> PatientIdentity:
    return PatientIdentity(name=name, sex="M", birth_date=dt.date(1990, 3, 7),
                           document_type="RESIDENT_ID", document_number=number)


@pytest.fixture
def validations(monkeypatch):
    monkeypatch.setattr(segments, "_SHAPES", type(segments._SHAPES)())
    calls = []
    real = segments._validated

    def counting(msh, body):
        calls.append(msh.fields[10])
        return real(msh, body)

    monkeypatch.setattr(segments, "_validated", counting)
    return calls


def _a28(control_id: str, person: PatientIdentity) -> str:
    return build_adt_a28(Hl7Profile(), control_id, NOW, patient=person, hl7_id_type="NNCHN")


def test_a_message_of_a_known_shape_is_written_without_hl7apy_and_still_valid(validations):
    first = _a28("C0001", _person("王五"))
    second = _a28("C0002", _person("李四"))  # same lengths everywhere: the same shape
    assert validations == ["C0001"]
    hl7apy_valid(first)
    hl7apy_valid(second)
    assert "李四" in second


def test_a_longer_value_is_a_new_shape_and_is_validated(validations):
    _a28("C0001", _person("王五"))
    _a28("C0002", _person("欧阳娜娜"))
    assert validations == ["C0001", "C0002"]


def test_a_value_hl7apy_refuses_is_refused_even_after_its_shape_family_passed(validations):
    _a28("C0001", _person("王五"))
    with pytest.raises(MessageError):
        _a28("C0002", _person("王" * 300))  # longer than v2.5 allows
    assert validations == ["C0001", "C0002"]
    # and a refused shape is not remembered: it is refused again
    with pytest.raises(MessageError):
        _a28("C0003", _person("李" * 300))
