"""Real-name identity rules for documents: resident ID (GB 11643), residence permits, travel
permits, passports and foreign permanent residence cards.

Everything here is a pure function of its arguments (``today`` is passed in, never read from the
clock). A rule that says no raises :class:`adapter.refusals.Refusal`; neither its code, params,
message nor ``str()`` ever contains the number that was checked: refusals are logged and returned
to the client as they are.

Why the rules are strict: PIPL (个人信息保护法) art. 28 makes medical data and all personal data of
children under 14 sensitive, and art. 31 requires the consent of a parent or other guardian
before a child's data is processed. DESIGN.md invariant 6 requires every booked patient to be the
wallet's certified user or a dependant whose document was checked.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from dataclasses import dataclass

from stdnum import numdb
from stdnum.cn import ric

from adapter.refusals import Refusal

logger = logging.getLogger(__name__)

RESIDENT_ID = "RESIDENT_ID"
PASSPORT = "PASSPORT"
FOREIGN_PERMANENT_RESIDENT = "FOREIGN_PERMANENT_RESIDENT"
HK_MACAO_TRAVEL_PERMIT = "HK_MACAO_TRAVEL_PERMIT"
TAIWAN_TRAVEL_PERMIT = "TAIWAN_TRAVEL_PERMIT"
HMT_RESIDENCE_PERMIT = "HMT_RESIDENCE_PERMIT"
DOCUMENT_TYPES = (RESIDENT_ID, PASSPORT, FOREIGN_PERMANENT_RESIDENT, HK_MACAO_TRAVEL_PERMIT,
                  TAIWAN_TRAVEL_PERMIT, HMT_RESIDENCE_PERMIT)

EARLIEST_BIRTH_DATE = dt.date(1900, 1, 1)



# --- documents ------------------------------------------------------------------------------

@dataclass(frozen=True)
class DocumentFacts:
    """What a checked document number says: the normalized number, birth date and sex."""

    document_type: str
    number: str
    birth_date: dt.date | None = None
    sex: str = ""  # "M", "F" or "" when the document does not say


def normalize_document_number(number: str) -> str:
    """NFKC (full-width digits typed on a Chinese keyboard), no whitespace, upper case."""
    return "".join(unicodedata.normalize("NFKC", number).split()).upper()


_GB11643_RE = re.compile(r"[0-9]{17}[0-9X]")
_DIGITS17_RE = re.compile(r"[0-9]{17}.")
# Mainland travel permit for HK and Macao residents (回乡证): the card issued since 2013 carries
# H (Hong Kong) or M (Macao) and 8 digits; the older booklet's number had 2 more digits, which
# some people still give (the person's number is kept on renewal).
_HK_MACAO_RE = re.compile(r"[HM][0-9]{8}(?:[0-9]{2})?")
# Mainland travel permit for Taiwan residents (台胞证): 8 digits on the card issued since
# 2015-09-21; the older booklets had 10 digits. The booklet printed the renewal count after the
# number in brackets, e.g. 12345678(B); it is not part of the number, so a trailing bracketed
# letter is dropped. One-trip permits (一次性台胞证, letters and digits) are not accepted.
_TAIWAN_RE = re.compile(r"[0-9]{8}(?:[0-9]{2})?")
_TAIWAN_SUFFIX_RE = re.compile(r"[(（][A-Z][)）]$")
# Passports: ICAO Doc 9303 part 4 gives the document number 9 characters in the MRZ, but
# some countries issue longer numbers (carried on in the optional data field), so 5 to 17
# letters and digits are accepted; the filler "<" and any punctuation are not.
_PASSPORT_RE = re.compile(r"[A-Z0-9]{5,17}")
# Foreign permanent resident ID card: the 2017 card has 15 characters, 3 letters (the ISO 3166
# alpha-3 nationality) and 12 digits; the card issued since 2023-12-01 has 18, "9" + 16 digits +
# a GB 11643 MOD 11-2 check character, birth date in positions 7-14 (National Immigration
# Administration, "新版外国人永久居留身份证机读信息规则", 2023).
_FPR_2017_RE = re.compile(r"[A-Z]{3}[0-9]{12}")
_FPR_2023_RE = re.compile(r"9[0-9]{16}[0-9X]")
# Residence permit for HK, Macao and Taiwan residents (港澳台居民居住证, issued since
# 2018-09-01 under 国办发〔2018〕81号): the GB 11643 layout with the address code 810000 (Hong
# Kong), 820000 (Macao) or 830000 (Taiwan).
_HMT_REGIONS = ("810000", "820000", "830000")


def check_document(document_type: str, number: str, today: dt.date) -> DocumentFacts:
    """Check a document number by its type's rules; raise Refusal naming what is wrong."""
    checker = _CHECKERS.get(document_type)
    if checker is None:
        raise Refusal("document.type_unknown", document_type=document_type)
    normalized = normalize_document_number(number)
    if not normalized:
        raise Refusal("document.empty", document_type=document_type)
    return checker(normalized, today)


def _check_resident_id(number: str, today: dt.date) -> DocumentFacts:
    # GB 11643-1999 公民身份号码: 6-digit address code, 8-digit birth date, 3-digit order code
    # (odd for men, even for women), MOD 11-2 check character (X for 10). The first-generation
    # 15-digit numbers stopped being valid with the first-generation cards on 2013-01-01.
    if len(number) == 15 and number.isascii() and number.isdigit():
        raise Refusal("document.old_id", document_type=RESIDENT_ID)
    facts = _check_gb11643(RESIDENT_ID, number, today)
    if number[:2] in ("81", "82", "83"):
        raise Refusal("document.type_mismatch", document_type=RESIDENT_ID,
                      suggested_type=HMT_RESIDENCE_PERMIT)
    if number[0] == "9":
        raise Refusal("document.type_mismatch", document_type=RESIDENT_ID,
                      suggested_type=FOREIGN_PERMANENT_RESIDENT)
    if not _region_known(number[:6], facts.birth_date):
        raise Refusal("document.region", document_type=RESIDENT_ID)
    return facts


def _check_hmt_residence_permit(number: str, today: dt.date) -> DocumentFacts:
    # stdnum.cn.ric refuses 830000 and, for anyone born before 1997/1999, 810000 and 820000
    # (it checks the code was in use in the birth year), so the layout is checked here.
    facts = _check_gb11643(HMT_RESIDENCE_PERMIT, number, today)
    if number[:6] not in _HMT_REGIONS:
        if _region_known(number[:6], facts.birth_date):
            raise Refusal("document.type_mismatch", document_type=HMT_RESIDENCE_PERMIT,
                          suggested_type=RESIDENT_ID)
        raise Refusal("document.region", document_type=HMT_RESIDENCE_PERMIT)
    return facts


def _check_gb11643(document_type: str, number: str, today: dt.date,
                   with_sex: bool = True) -> DocumentFacts:
    if len(number) != 18:
        raise Refusal("document.length", document_type=document_type, expected=18)
    if not _GB11643_RE.fullmatch(number):
        raise Refusal("document.format", document_type=document_type,
                      expected="17位数字加1位数字或X",
                      expected_en="17 digits and a digit or X")
    # stdnum's check: ISO 7064 MOD 11-2 as GB 11643 specifies it.
    if ric.calc_check_digit(number) != number[-1]:
        raise Refusal("document.checksum", document_type=document_type)
    birth_date = _birth_date(document_type, number[6:14], today)
    sex = ("M" if int(number[16]) % 2 else "F") if with_sex else ""
    return DocumentFacts(document_type, number, birth_date, sex)


def _birth_date(document_type: str, yyyymmdd: str, today: dt.date) -> dt.date:
    try:
        birth_date = dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        raise Refusal("document.birth_date", document_type=document_type) from None
    if not EARLIEST_BIRTH_DATE <= birth_date <= today:
        raise Refusal("document.birth_date", document_type=document_type)
    return birth_date


def _region_known(code: str, birth_date: dt.date | None) -> bool:
    """Whether the address code is in stdnum's table of administrative division codes.

    Unlike ``stdnum.cn.ric.get_birth_place`` (which raises KeyError for an unknown county of a
    known province), a code is accepted when it began *after* the birth year: the address code
    is where the number was first assigned, not where the person was born, and people
    registered late (the 2016 registration of people without hukou, for one) got the code of
    the day. A code abolished before the birth year cannot have been assigned, so it is refused.
    """
    parts = numdb.get("cn/loc").info(code)
    info = {key: value for _part, props in parts for key, value in props.items()}
    counties = info.get("county")
    if not counties:
        return False
    if birth_date is None:
        return True
    for county in counties.split(","):
        if not county.startswith("["):
            return True
        end = county[1:].split("]", 1)[0].split("-")[1]
        if not end or birth_date.year <= int(end):
            return True
    return False


def _check_hk_macao(number: str, today: dt.date) -> DocumentFacts:
    if not _HK_MACAO_RE.fullmatch(number):
        raise Refusal("document.format", document_type=HK_MACAO_TRAVEL_PERMIT,
                      expected="H或M开头，后接8位数字", expected_en="H or M and 8 digits")
    return DocumentFacts(HK_MACAO_TRAVEL_PERMIT, number)


def _check_taiwan(number: str, today: dt.date) -> DocumentFacts:
    number = _TAIWAN_SUFFIX_RE.sub("", number)
    if not _TAIWAN_RE.fullmatch(number):
        raise Refusal("document.format", document_type=TAIWAN_TRAVEL_PERMIT,
                      expected="8位数字", expected_en="8 digits")
    return DocumentFacts(TAIWAN_TRAVEL_PERMIT, number)


def _check_passport(number: str, today: dt.date) -> DocumentFacts:
    if not _PASSPORT_RE.fullmatch(number):
        raise Refusal("document.format", document_type=PASSPORT,
                      expected="5至17位字母或数字", expected_en="5 to 17 letters and digits")
    return DocumentFacts(PASSPORT, number)


def _check_foreign_permanent_resident(number: str, today: dt.date) -> DocumentFacts:
    if _FPR_2017_RE.fullmatch(number):
        # The 2017 card's internal layout and check character are not published; only the form.
        return DocumentFacts(FOREIGN_PERMANENT_RESIDENT, number)
    if len(number) == 18 and number[0] == "9":
        # The 2023 card: sex is not taken from it, the published rules do not say which digit.
        return _check_gb11643(FOREIGN_PERMANENT_RESIDENT, number, today, with_sex=False)
    if len(number) not in (15, 18):
        raise Refusal("document.length", document_type=FOREIGN_PERMANENT_RESIDENT,
                      expected="15/18")
    raise Refusal("document.format", document_type=FOREIGN_PERMANENT_RESIDENT,
                  expected="3位字母加12位数字，或9开头的18位号码",
                  expected_en="3 letters and 12 digits, or 18 characters starting with 9")


_CHECKERS = {
    RESIDENT_ID: _check_resident_id,
    HMT_RESIDENCE_PERMIT: _check_hmt_residence_permit,
    HK_MACAO_TRAVEL_PERMIT: _check_hk_macao,
    TAIWAN_TRAVEL_PERMIT: _check_taiwan,
    PASSPORT: _check_passport,
    FOREIGN_PERMANENT_RESIDENT: _check_foreign_permanent_resident,
}
