"""Which of a person's bookings count for an account, by the rule for unverified dependants, and
when the HIS's record verifies a dependant link."""

from __future__ import annotations

import datetime as dt

import pytest

from adapter.identity.verification import his_record_matches
from adapter.models import Patient
from adapter.ports import PatientIdentity
from adapter.registration.rules import (
    BookingFact,
    BookingRules,
    BookingRulesError,
    counted_bookings,
    load_booking_rules,
)

DAY = dt.date(2026, 12, 10)
VERIFIED = BookingFact(DAY, "PED", "D1", "active", account_id=1, verified=True)
OWN = BookingFact(DAY, "PED", "D1", "active", account_id=2, verified=False)
STRANGER = BookingFact(DAY, "PED", "D1", "active", account_id=3, verified=False)
ALL = [VERIFIED, OWN, STRANGER]


@pytest.mark.parametrize("rule, verified, expected", [
    ("count_per_account", True, [VERIFIED, OWN]),
    ("count_per_account", False, [VERIFIED, OWN]),
    ("count_unverified_together", True, [VERIFIED, OWN]),
    ("count_unverified_together", False, ALL),
    ("count_shared", True, ALL),
    ("count_shared", False, ALL),
])
def test_another_accounts_unverified_bookings_count_by_the_rule(rule, verified, expected):
    rules = BookingRules(unverified_dependants=rule)
    assert counted_bookings(rules, ALL, account_id=2, verified=verified) == expected


def test_the_default_rule_counts_unverified_bookings_per_account():
    assert BookingRules().unverified_dependants == "count_per_account"
    assert BookingRules().his_match_needs_phone is True


def test_the_rules_file_sets_and_checks_the_dependant_keys(tmp_path):
    path = tmp_path / "booking_rules.toml"
    path.write_text('unverified_dependants = "count_shared"\nhis_match_needs_phone = false\n',
                    encoding="utf-8")
    rules = load_booking_rules(path)
    assert rules.unverified_dependants == "count_shared" and not rules.his_match_needs_phone
    for text, words in (('unverified_dependants = "shared"', "must be one of"),
                        ("his_match_needs_phone = 1", "true or false"),
                        ("per_id_per_day = true", "whole number")):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(BookingRulesError, match=words):
            load_booking_rules(path)


def _link(name: str = "王小明", birth: dt.date | None = dt.date(2018, 5, 1)) -> Patient:
    return Patient(name=name, birth_date=birth)


def _found(name: str = "王 小明", birth: dt.date = dt.date(2018, 5, 1),
           phone: str = "+86 138-0000-0001") -> PatientIdentity:
    return PatientIdentity(name, "M", birth, "RESIDENT_ID", "X", phone=phone)


def test_a_his_record_verifies_on_name_birth_date_and_the_account_holders_phone():
    assert his_record_matches(_found(), _link(), "13800000001", needs_phone=True)
    assert not his_record_matches(_found(), _link(), "13900000002", needs_phone=True)
    assert not his_record_matches(_found(phone=""), _link(), "", needs_phone=True)
    assert his_record_matches(_found(phone=""), _link(), "", needs_phone=False)
    assert not his_record_matches(_found(name="王小红"), _link(), "13800000001",
                                  needs_phone=True)
    assert not his_record_matches(_found(birth=dt.date(2018, 5, 2)), _link(), "13800000001",
                                  needs_phone=True)
    assert not his_record_matches(_found(), _link(birth=None), "13800000001", needs_phone=False)
