"""Real-name identity rules: documents, names, the certified user, dependants, booking limits.

ID numbers are made up here with their check digit computed by stdnum, never real people's.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from stdnum.cn import ric

import adapter
from adapter.identity import documents as identity
from adapter.identity.dependants import (
    CertifiedIdentity,
    Dependant,
    age_on,
    check_new_patient,
    match_self,
)
from adapter.identity.documents import check_document
from adapter.identity.names import names_match, normalize_name
from adapter.refusals import TEXTS, Refusal
from adapter.registration.rules import (
    BookingFact,
    BookingRules,
    BookingRulesError,
    ban_ends,
    check_booking_allowed,
    load_booking_rules,
)

TODAY = dt.date(2025, 6, 15)
MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


def gb11643(body17: str) -> str:
    """A number with the right GB 11643 check character for its 17-digit body."""
    assert len(body17) == 17
    return body17 + ric.calc_check_digit(body17 + "0")


def ric_for(birth: dt.date, region: str = "110101", order: str = "123") -> str:
    return gb11643(f"{region}{birth:%Y%m%d}{order}")


def wrong_check(number: str) -> str:
    last = "0" if number[-1] != "0" else "1"
    return number[:-1] + last


def refused(code: str, func, *args, **kwargs) -> Refusal:
    with pytest.raises(Refusal) as info:
        func(*args, **kwargs)
    assert info.value.code == code, (info.value.code, info.value.params)
    return info.value


MAN = ric_for(dt.date(1990, 3, 7), order="123")  # 17th digit 3: odd, a man
WOMAN = ric_for(dt.date(1990, 3, 7), order="124")


# --- resident ID ----------------------------------------------------------------------------

def test_resident_id_gives_birth_date_and_sex():
    facts = check_document("RESIDENT_ID", MAN, TODAY)
    assert facts == identity.DocumentFacts("RESIDENT_ID", MAN, dt.date(1990, 3, 7), "M")
    assert check_document("RESIDENT_ID", WOMAN, TODAY).sex == "F"


def test_resident_id_check_character_x_accepted_in_lower_case():
    number = next(n for n in (gb11643(f"11010119900307{i:03d}") for i in range(1000))
                  if n.endswith("X"))
    facts = check_document("RESIDENT_ID", number.lower(), TODAY)
    assert facts.number == number


def test_resident_id_spaces_and_full_width_digits_are_normalized():
    spaced = f" {MAN[:6]} {MAN[6:14]}\u3000{MAN[14:]} "
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in MAN)
    assert check_document("RESIDENT_ID", spaced, TODAY).number == MAN
    assert check_document("RESIDENT_ID", full_width, TODAY).number == MAN


def test_resident_id_born_today_is_valid():
    assert check_document("RESIDENT_ID", ric_for(TODAY), TODAY).birth_date == TODAY


@pytest.mark.parametrize("number, code", [
    (wrong_check(MAN), "document.checksum"),
    (MAN[:-1], "document.length"),
    (MAN + "1", "document.length"),
    (MAN[:15], "document.old_id"),
    ("11010A" + MAN[6:], "document.format"),
    (MAN[:10] + "X" + MAN[11:], "document.format"),
    (gb11643("11010119901307123"), "document.birth_date"),   # month 13
    (gb11643("11010119900230123"), "document.birth_date"),   # 30 February
    (gb11643("11010118991231123"), "document.birth_date"),   # before 1900
    (ric_for(TODAY + dt.timedelta(days=1)), "document.birth_date"),  # tomorrow
    (gb11643("89000019900307123"), "document.region"),       # no such province
    (gb11643("11999919900307123"), "document.region"),       # no such county in Beijing
    (ric_for(dt.date(2015, 1, 1), region="110103"), "document.region"),  # 崇文区 gone in 2010
    (ric_for(dt.date(1990, 1, 1), region="810000"), "document.type_mismatch"),
    (ric_for(dt.date(1990, 1, 1), region="911840"), "document.type_mismatch"),
])
def test_resident_id_refusals(number, code):
    refusal = refused(code, check_document, "RESIDENT_ID", number, TODAY)
    assert number not in str(refusal) and number not in refusal.message("en")


def test_resident_id_region_codes_in_use_when_assigned():
    # 崇文区 (110103) existed until 2010: someone born in 2000 may carry it.
    assert check_document("RESIDENT_ID", ric_for(dt.date(2000, 5, 1), region="110103"), TODAY)
    # 密云区 (110118) exists since 2015; a person registered late (born 1990) may carry it,
    # which stdnum.cn.ric.validate refuses.
    late = ric_for(dt.date(1990, 5, 1), region="110118")
    assert not ric.is_valid(late)
    assert check_document("RESIDENT_ID", late, TODAY).birth_date == dt.date(1990, 5, 1)


def test_type_mismatch_suggests_the_right_type():
    number = ric_for(dt.date(1990, 1, 1), region="820000")
    refusal = refused("document.type_mismatch", check_document, "RESIDENT_ID", number, TODAY)
    assert refusal.params["suggested_type"] == "HMT_RESIDENCE_PERMIT"


# --- HMT residence permit -------------------------------------------------------------------

@pytest.mark.parametrize("region", ["810000", "820000", "830000"])
def test_hmt_residence_permit_valid(region):
    number = ric_for(dt.date(1985, 12, 31), region=region, order="002")
    facts = check_document("HMT_RESIDENCE_PERMIT", number, TODAY)
    assert (facts.birth_date, facts.sex) == (dt.date(1985, 12, 31), "F")
    assert not ric.is_valid(number)  # why stdnum is not used for it


@pytest.mark.parametrize("number, code", [
    (wrong_check(ric_for(dt.date(1985, 1, 1), region="810000")), "document.checksum"),
    (ric_for(dt.date(1985, 1, 1), region="840000"), "document.region"),
    (MAN, "document.type_mismatch"),
    (gb11643("81000019851301001"), "document.birth_date"),
    (ric_for(TODAY + dt.timedelta(days=1), region="830000"), "document.birth_date"),
    ("81000019850101001", "document.length"),
    ("8100001985010100AX", "document.format"),
])
def test_hmt_residence_permit_refusals(number, code):
    refused(code, check_document, "HMT_RESIDENCE_PERMIT", number, TODAY)


# --- travel permits, passports, permanent residence -----------------------------------------

@pytest.mark.parametrize("number, normalized", [
    ("H12345678", "H12345678"),
    ("M87654321", "M87654321"),
    ("h12345678", "H12345678"),
    ("H 1234 5678", "H12345678"),
    ("H1234567801", "H1234567801"),  # the older booklet's 10 digits
])
def test_hk_macao_permit_valid(number, normalized):
    facts = check_document("HK_MACAO_TRAVEL_PERMIT", number, TODAY)
    assert (facts.number, facts.birth_date, facts.sex) == (normalized, None, "")


@pytest.mark.parametrize("number", ["H1234567", "H123456789", "X12345678", "12345678",
                                    "H1234567A", "HA1234567", "H-12345678"])
def test_hk_macao_permit_refused(number):
    refused("document.format", check_document, "HK_MACAO_TRAVEL_PERMIT", number, TODAY)


@pytest.mark.parametrize("number, normalized", [
    ("12345678", "12345678"),
    ("1234567890", "1234567890"),
    ("12345678(B)", "12345678"),   # renewal count, not part of the number
    ("12345678（b）", "12345678"),
])
def test_taiwan_permit_valid(number, normalized):
    assert check_document("TAIWAN_TRAVEL_PERMIT", number, TODAY).number == normalized


@pytest.mark.parametrize("number", ["1234567", "123456789", "1234567A", "F290299977",
                                    "12345678(BB)", "T12345678"])
def test_taiwan_permit_refused(number):
    refused("document.format", check_document, "TAIWAN_TRAVEL_PERMIT", number, TODAY)


@pytest.mark.parametrize("number, normalized", [
    ("E12345678", "E12345678"),
    ("g12345678", "G12345678"),
    ("12345", "12345"),
    ("A" * 17, "A" * 17),
])
def test_passport_valid(number, normalized):
    assert check_document("PASSPORT", number, TODAY).number == normalized


@pytest.mark.parametrize("number", ["1234", "A" * 18, "E1234567<", "E-1234567", "E1234567é"])
def test_passport_refused(number):
    refused("document.format", check_document, "PASSPORT", number, TODAY)


def test_foreign_permanent_resident_2017_card():
    facts = check_document("FOREIGN_PERMANENT_RESIDENT", "usa110090123456", TODAY)
    assert (facts.number, facts.birth_date) == ("USA110090123456", None)


def test_foreign_permanent_resident_2023_card():
    number = gb11643("91184019900307001")
    facts = check_document("FOREIGN_PERMANENT_RESIDENT", number, TODAY)
    assert (facts.number, facts.birth_date, facts.sex) == (number, dt.date(1990, 3, 7), "")


@pytest.mark.parametrize("number, code", [
    (wrong_check(gb11643("91184019900307001")), "document.checksum"),
    (gb11643("91184019900230001"), "document.birth_date"),
    (gb11643("91184020991231001"), "document.birth_date"),
    ("US1234567890123", "document.format"),
    ("USA12345678901A", "document.format"),
    ("USA1234567890", "document.length"),
    ("9118401990030700", "document.length"),
    (MAN, "document.format"),  # 18 characters not starting with 9
])
def test_foreign_permanent_resident_refusals(number, code):
    refused(code, check_document, "FOREIGN_PERMANENT_RESIDENT", number, TODAY)


def test_unknown_type_and_empty_number():
    refused("document.type_unknown", check_document, "MILITARY_ID", "12345", TODAY)
    refused("document.empty", check_document, "PASSPORT", " \u3000", TODAY)


# --- names ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dot", ["\u00b7", "\u2022", "\u2027", "\u30fb", "\uff65", "\u318d",
                                 "\u16eb", "\u2219", "\u22c5", "\uff0e", ".", "\u0387"])
def test_middle_dot_look_alikes_become_one_dot(dot):
    assert normalize_name(f"阿卜杜拉{dot}买买提") == "阿卜杜拉·买买提"
    assert normalize_name(f"阿卜杜拉 {dot}　买买提") == "阿卜杜拉·买买提"


@pytest.mark.parametrize("raw, normalized", [
    ("ＪＯＨＮ　ＳＭＩＴＨ", "JOHN SMITH"),
    ("  张三\u3000", "张三"),
    ("张 三", "张三"),
    ("John   Smith\t", "John Smith"),
    ("John F. Kennedy", "John F. Kennedy"),  # a Latin full stop stays
    ("Anne-Marie O'Neil", "Anne-Marie O'Neil"),
])
def test_normalize_name(raw, normalized):
    assert normalize_name(raw) == normalized


def test_names_match():
    assert names_match("john smith", "JOHN  SMITH")
    assert names_match("阿卜杜拉・买买提", "阿卜杜拉·买买提")
    assert names_match("ＺＨＡＮＧ　Ｓａｎ", "zhang san")
    assert not names_match("张三", "张四")
    assert not names_match("", " ")


# --- the certified user ---------------------------------------------------------------------

CERTIFIED = CertifiedIdentity(name="张三", document_type="RESIDENT_ID",
                              document_number=MAN, sex="M", birth_date=dt.date(1990, 3, 7))


def test_match_self_accepts_the_certified_user():
    facts = match_self(CERTIFIED, " 张 三 ", "RESIDENT_ID", MAN.lower(), TODAY)
    assert facts.number == MAN


def test_match_self_without_sex_or_birth_date_from_the_wallet():
    certified = CertifiedIdentity(name="李四", document_type="RESIDENT_ID",
                                  document_number=WOMAN)
    assert match_self(certified, "李四", "RESIDENT_ID", WOMAN, TODAY).sex == "F"


@pytest.mark.parametrize("change, code", [
    ({"claimed_name": "张四"}, "name.mismatch"),
    ({"claimed_name": ""}, "name.empty"),
    ({"claimed_number": WOMAN}, "document.mismatch"),
    ({"claimed_type": "PASSPORT", "claimed_number": "E12345678"}, "document.mismatch"),
    ({"claimed_number": wrong_check(MAN)}, "document.checksum"),
])
def test_match_self_refusals(change, code):
    claim = {"claimed_name": "张三", "claimed_type": "RESIDENT_ID", "claimed_number": MAN}
    claim.update(change)
    refusal = refused(code, match_self, CERTIFIED, today=TODAY, **claim)
    assert "张" not in str(refusal) and MAN not in str(refusal)


def test_match_self_sex_and_birth_date_must_agree_with_the_wallet():
    wrong_sex = CertifiedIdentity("张三", "RESIDENT_ID", MAN, sex="F")
    refused("sex.mismatch", match_self, wrong_sex, "张三", "RESIDENT_ID", MAN, TODAY)
    wrong_birth = CertifiedIdentity("张三", "RESIDENT_ID", MAN, birth_date=dt.date(1990, 3, 8))
    refused("birth_date.mismatch", match_self, wrong_birth, "张三", "RESIDENT_ID", MAN, TODAY)


# --- dependants -----------------------------------------------------------------------------

def child_ric(birth: dt.date) -> str:
    return ric_for(birth, order="012")


FOURTEENTH = dt.date(TODAY.year - 14, TODAY.month, TODAY.day)  # born 14 years ago today


def test_age_on():
    assert age_on(dt.date(2011, 6, 15), dt.date(2025, 6, 14)) == 13
    assert age_on(dt.date(2011, 6, 15), dt.date(2025, 6, 15)) == 14
    assert age_on(dt.date(2012, 2, 29), dt.date(2026, 2, 28)) == 13
    assert age_on(dt.date(2012, 2, 29), dt.date(2026, 3, 1)) == 14
    assert age_on(dt.date(2012, 2, 29), dt.date(2028, 2, 29)) == 16


def test_patient_limit_counts_self():
    spouse = Dependant("王五", "RESIDENT_ID", WOMAN, "spouse")
    assert check_new_patient(4, spouse, TODAY).number == WOMAN
    refusal = refused("patients.limit", check_new_patient, 5, spouse, TODAY)
    assert refusal.params == {"limit": 5}
    refused("patients.limit", check_new_patient, 2, spouse, TODAY, max_patients=2)


def test_child_under_14_day_before_the_birthday_needs_guardian_and_consent():
    born = FOURTEENTH + dt.timedelta(days=1)  # the 14th birthday is tomorrow
    number = child_ric(born)
    for relation in ("other", "spouse", "parent"):
        refused("child.guardian_required", check_new_patient, 1,
                Dependant("小明", "RESIDENT_ID", number, relation, True), TODAY)
    refused("child.consent_required", check_new_patient, 1,
            Dependant("小明", "RESIDENT_ID", number, "child", False), TODAY)
    facts = check_new_patient(1, Dependant("小明", "RESIDENT_ID", number, "child", True), TODAY)
    assert facts.birth_date == born


def test_child_on_the_14th_birthday_needs_no_consent():
    number = child_ric(FOURTEENTH)
    check_new_patient(1, Dependant("小明", "RESIDENT_ID", number, "child", False), TODAY)
    check_new_patient(1, Dependant("小明", "RESIDENT_ID", number, "other", False), TODAY)
    day_before = FOURTEENTH + dt.timedelta(days=1)
    refused("child.consent_required", check_new_patient, 1,
            Dependant("小明", "RESIDENT_ID", child_ric(day_before), "child", False), TODAY)


def test_adult_cannot_be_added_as_child():
    eighteen = dt.date(TODAY.year - 18, TODAY.month, TODAY.day)
    refusal = refused("relation.adult_as_child", check_new_patient, 1,
                      Dependant("大明", "RESIDENT_ID", child_ric(eighteen), "child", True),
                      TODAY)
    assert refusal.params == {"adult_age": 18}
    seventeen = eighteen + dt.timedelta(days=1)
    check_new_patient(1, Dependant("大明", "RESIDENT_ID", child_ric(seventeen), "child"), TODAY)


def test_document_without_birth_date():
    # Age unknown: a "child" is taken to be under 14 and needs consent.
    refused("child.consent_required", check_new_patient, 1,
            Dependant("Tom", "PASSPORT", "E12345678", "child", False), TODAY)
    assert check_new_patient(1, Dependant("Tom", "PASSPORT", "E12345678", "child", True),
                             TODAY).birth_date is None
    # A declared birth date is used for the age rules and returned.
    ten = dt.date(TODAY.year - 10, 1, 1)
    refused("child.guardian_required", check_new_patient, 1,
            Dependant("Tom", "PASSPORT", "E12345678", "other", True, birth_date=ten), TODAY)
    facts = check_new_patient(1, Dependant("Tom", "PASSPORT", "E12345678", "child", True,
                                           birth_date=ten), TODAY)
    assert facts.birth_date == ten
    refused("document.birth_date", check_new_patient, 1,
            Dependant("Tom", "PASSPORT", "E12345678", "other",
                      birth_date=TODAY + dt.timedelta(days=1)), TODAY)


def test_declared_birth_date_must_agree_with_the_document():
    refused("birth_date.mismatch", check_new_patient, 1,
            Dependant("王五", "RESIDENT_ID", WOMAN, "spouse", birth_date=dt.date(1990, 3, 8)),
            TODAY)


def test_relations():
    refused("relation.self", check_new_patient, 1,
            Dependant("张三", "RESIDENT_ID", MAN, "self"), TODAY)
    refused("relation.unknown", check_new_patient, 1,
            Dependant("张三", "RESIDENT_ID", MAN, "cousin"), TODAY)
    refused("name.empty", check_new_patient, 1,
            Dependant(" ", "RESIDENT_ID", MAN, "parent"), TODAY)
    refused("document.checksum", check_new_patient, 1,
            Dependant("张三", "RESIDENT_ID", wrong_check(MAN), "parent"), TODAY)


# --- anti-scalping --------------------------------------------------------------------------

RULES = BookingRules()
VISIT = TODAY + dt.timedelta(days=3)


def booking(dept="D1", doctor="DR1", status="active", visit=VISIT):
    return BookingFact(visit, dept, doctor, status)


def check(history, no_shows=(), dept="D1", doctor="DR1", today=TODAY, rules=RULES):
    check_booking_allowed(rules, list(history), list(no_shows), visit_date=VISIT,
                          department_code=dept, doctor_code=doctor, today=today)


def test_booking_defaults():
    assert RULES == BookingRules(2, 1, 1, 3, 90, 90)
    assert load_booking_rules(MAPPINGS / "booking_rules.toml") == RULES


def test_first_booking_allowed():
    check([])
    check([booking(visit=VISIT + dt.timedelta(days=1)), booking(status="cancelled")])


def test_per_doctor_limit():
    refusal = refused("booking.per_doctor", check, [booking("D2", "DR1")], dept="D1")
    assert refusal.params == {"limit": 1, "visit_date": VISIT.isoformat()}


def test_per_department_limit():
    refused("booking.per_department", check, [booking("D1", "DR2")], doctor="DR1")


def test_per_day_limit():
    check([booking("D2", "DR2")], dept="D1", doctor="DR1")
    refusal = refused("booking.per_day", check, [booking("D2", "DR2"), booking("D3", "DR3")])
    assert refusal.params["limit"] == 2
    assert refusal.message() == "每位就诊人同一天最多预约2个号。"
    assert refusal.message("en") == "At most 2 bookings per patient per day."


def test_visited_and_missed_bookings_count_cancelled_do_not():
    refused("booking.per_doctor", check, [booking(status="visited")])
    refused("booking.per_doctor", check, [booking(status="no_show")])
    check([booking(status="cancelled"), booking(status="cancelled")])


def test_limits_follow_the_rules():
    rules = BookingRules(per_id_per_day=3, per_department_per_day=2, per_doctor_per_day=2)
    check([booking()], rules=rules)
    refused("booking.per_doctor", check, [booking(), booking()], rules=rules)


def test_ban_after_three_no_shows_within_the_window():
    last = TODAY - dt.timedelta(days=10)
    misses = [last - dt.timedelta(days=80), last - dt.timedelta(days=40), last]
    refusal = refused("booking.banned", check, [], misses)
    allowed_from = last + dt.timedelta(days=90)
    assert refusal.params["allowed_from"] == allowed_from.isoformat()
    assert refusal.params["until"] == (allowed_from - dt.timedelta(days=1)).isoformat()
    assert allowed_from.isoformat() in refusal.message()
    assert allowed_from.isoformat() in refusal.message("en")


def test_ban_window_edges():
    # The ban runs from the day of the third miss for 90 days.
    last = dt.date(2025, 1, 1)
    misses = [last - dt.timedelta(days=89), last - dt.timedelta(days=1), last]
    assert ban_ends(RULES, misses, last) == last + dt.timedelta(days=90)
    assert ban_ends(RULES, misses, last + dt.timedelta(days=89)) is not None
    assert ban_ends(RULES, misses, last + dt.timedelta(days=90)) is None
    assert ban_ends(RULES, misses, last - dt.timedelta(days=1)) is None  # only two by then
    # A miss 90 days before the last one is outside the window: two misses, no ban.
    spread = [last - dt.timedelta(days=90), last - dt.timedelta(days=1), last]
    assert ban_ends(RULES, spread, last) is None


def test_ban_ignores_future_dates_and_counts_same_day_misses():
    assert ban_ends(RULES, [TODAY + dt.timedelta(days=1)] * 3, TODAY) is None
    assert ban_ends(RULES, [TODAY] * 3, TODAY) == TODAY + dt.timedelta(days=90)


def test_an_earlier_ban_still_running_counts():
    rules = BookingRules(no_show_limit=2, no_show_window_days=30, ban_days=60)
    first = dt.date(2025, 1, 1)
    misses = [first, first + dt.timedelta(days=1), first + dt.timedelta(days=50)]
    assert ban_ends(rules, misses, first + dt.timedelta(days=55)) == first + dt.timedelta(61)


def test_ban_is_checked_before_limits():
    refused("booking.banned", check, [booking()], [TODAY] * 3)


def write(tmp_path, text):
    path = tmp_path / "booking_rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_booking_rules_partial_file_keeps_defaults(tmp_path):
    rules = load_booking_rules(write(tmp_path, "per_id_per_day = 4\n"))
    assert rules == BookingRules(per_id_per_day=4)


@pytest.mark.parametrize("text, words", [
    ("per_id_per_dya = 2\n", ["per_id_per_dya", "unknown"]),
    ("per_id_per_day = 0\n", ["per_id_per_day", "1 or more"]),
    ("ban_days = -5\n", ["ban_days"]),
    ("ban_days = true\n", ["ban_days"]),
    ("ban_days = \"90\"\n", ["ban_days"]),
    ("ban_days = 1.5\n", ["ban_days"]),
    ("ban_days = \n", ["not valid TOML"]),
])
def test_load_booking_rules_refuses(tmp_path, text, words):
    with pytest.raises(BookingRulesError) as info:
        load_booking_rules(write(tmp_path, text))
    for word in words:
        assert word in str(info.value)


# --- refusal texts --------------------------------------------------------------------------

SAMPLE_PARAMS = {"limit": 2, "window_days": 90, "allowed_from": "2025-09-13",
                 "until": "2025-09-12", "expected": 18, "expected_en": "8 digits", "age": 14,
                 "adult_age": 18, "visit_date": "2025-06-18", "document_type": "RESIDENT_ID",
                 "suggested_type": "HMT_RESIDENCE_PERMIT", "release_at": "06-01 08:00",
                 "deadline": "06-17 15:00", "minutes": 15, "minimum": 12, "maximum": 256,
                 "opens_at": "08:00", "closed_at": "09:15", "radius": 500, "item": "CBC",
                 "hours": 24, "left": 3, "seconds": 42, "days": 400}


def raised_codes() -> set[str]:
    package = Path(adapter.__file__).parent
    # Migrations name columns ("booking.id"), not refusals.
    source = "".join(p.read_text(encoding="utf-8") for p in sorted(package.rglob("*.py"))
                     if "migrations" not in p.parts)
    codes = set(re.findall(r'Refusal\(\s*"([a-z_.]+)"', source))
    checks = re.findall(r'\(\s*"(booking\.[a-z_]+)"', source)
    return codes | {c for c in checks if not c.endswith(".html")}


def test_every_raised_code_has_both_languages():
    codes = raised_codes()
    assert "document.checksum" in codes and "booking.per_day" in codes
    assert codes <= set(TEXTS)
    for code, zh in TEXTS.items():
        for locale in ("zh-CN", "en"):
            text = Refusal(code, **SAMPLE_PARAMS).message(locale)
            assert text and "{" not in text, (code, locale)
        assert re.search(r"[\u4e00-\u9fff]", zh), code
        english = Refusal(code, **SAMPLE_PARAMS).message("en")
        assert english.isascii() and english != zh, code


def test_message_locales():
    refusal = Refusal("document.checksum")
    assert refusal.message() == "身份证号码校验位不正确，请核对后重新输入。"
    assert refusal.message("en-US") == ("The ID number's check digit is wrong. "
                                        "Please check it and try again.")
    assert str(refusal) == "document.checksum"
    assert Refusal("no.such.code").message("en")  # says something, does not raise


BAD_INPUTS = [
    ("RESIDENT_ID", wrong_check(MAN)), ("RESIDENT_ID", MAN[:15]), ("RESIDENT_ID", MAN[:17]),
    ("RESIDENT_ID", gb11643("11010119901307123")), ("RESIDENT_ID", gb11643("89000019900307123")),
    ("HMT_RESIDENCE_PERMIT", MAN), ("PASSPORT", "E-9876543"),
    ("HK_MACAO_TRAVEL_PERMIT", "H7654321"), ("TAIWAN_TRAVEL_PERMIT", "7654321"),
    ("FOREIGN_PERMANENT_RESIDENT", "ZZZ98765432101X"),
]


@pytest.mark.parametrize("document_type, number", BAD_INPUTS)
def test_refusals_never_carry_the_number(document_type, number):
    with pytest.raises(Refusal) as info:
        check_document(document_type, number, TODAY)
    refusal = info.value
    shown = [str(refusal), repr(refusal), refusal.message(), refusal.message("en"),
             repr(refusal.params)]
    for text in shown:
        assert number not in text
        assert normalize_name(number).upper() not in text
