"""Real-name identity rules: documents, names, dependants and anti-scalping limits.

Everything here is a pure function of its arguments (``today`` is passed in, never read from the
clock), so the registration use cases call it inside their transaction and tests need no fakes.
A rule that says no raises :class:`Refusal`, whose ``code`` is stable for the API and whose
:meth:`Refusal.message` is a sentence for the patient in zh-CN or en. Neither the code, the params,
the message nor ``str()`` of a refusal ever contains the name or the document number that was
checked: refusals are logged and returned to the client as they are.

Why the rules are strict: PIPL (个人信息保护法) art. 28 makes medical data and all personal data of
children under 14 sensitive, and art. 31 requires the consent of a parent or other guardian
before a child's data is processed. DESIGN.md invariant 6 requires every booked patient to be the
wallet's certified user or a dependant whose document was checked.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import tomllib
import unicodedata
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from stdnum import numdb
from stdnum.cn import ric

logger = logging.getLogger(__name__)

RESIDENT_ID = "RESIDENT_ID"
PASSPORT = "PASSPORT"
FOREIGN_PERMANENT_RESIDENT = "FOREIGN_PERMANENT_RESIDENT"
HK_MACAO_TRAVEL_PERMIT = "HK_MACAO_TRAVEL_PERMIT"
TAIWAN_TRAVEL_PERMIT = "TAIWAN_TRAVEL_PERMIT"
HMT_RESIDENCE_PERMIT = "HMT_RESIDENCE_PERMIT"
DOCUMENT_TYPES = (RESIDENT_ID, PASSPORT, FOREIGN_PERMANENT_RESIDENT, HK_MACAO_TRAVEL_PERMIT,
                  TAIWAN_TRAVEL_PERMIT, HMT_RESIDENCE_PERMIT)

# Who a patient is to the wallet user. "child" means a minor (under 18, Civil Code art. 17) in
# the wallet user's guardianship (parent or other guardian, Civil Code art. 27): the only
# relation under which a child under 14 may be added, because the guardian's consent is what
# PIPL art. 31 requires. A grown-up son or daughter is "other". "self" is the certified user,
# added by match_self, never as a dependant.
RELATIONS = ("self", "child", "spouse", "parent", "other")

MAX_PATIENTS = 5  # per wallet user, self included
CHILD_CONSENT_AGE = 14  # PIPL art. 28 and 31
ADULT_AGE = 18  # Civil Code art. 17

EARLIEST_BIRTH_DATE = dt.date(1900, 1, 1)

BOOKING_STATUSES = ("active", "cancelled", "no_show", "visited")


# --- refusals -------------------------------------------------------------------------------

# Every code in both languages; tests/unit/test_identity.py checks that each template formats
# with the params the code raises with and that no template can carry an input back.
MESSAGES: dict[str, dict[str, str]] = {
    "document.type_unknown": {
        "zh-CN": "暂不支持这种证件类型，请选择其他证件。",
        "en": "This document type is not supported. Please choose another document.",
    },
    "document.empty": {
        "zh-CN": "请输入证件号码。",
        "en": "Please enter the document number.",
    },
    "document.length": {
        "zh-CN": "证件号码位数不对，应为{expected}位，请核对后重新输入。",
        "en": "The document number should have {expected} characters. "
              "Please check it and try again.",
    },
    "document.old_id": {
        "zh-CN": "15位的旧身份证号码已停止使用，请输入18位居民身份证号码。",
        "en": "Old 15-digit ID numbers are no longer used. Please enter the 18-digit number.",
    },
    "document.format": {
        "zh-CN": "证件号码格式不正确（{expected}），请核对后重新输入。",
        "en": "The document number is not in the right form ({expected_en}). "
              "Please check it and try again.",
    },
    "document.checksum": {
        "zh-CN": "身份证号码校验位不正确，请核对后重新输入。",
        "en": "The ID number's check digit is wrong. Please check it and try again.",
    },
    "document.birth_date": {
        "zh-CN": "证件号码中的出生日期不正确，请核对后重新输入。",
        "en": "The birth date in the document number is not valid. "
              "Please check it and try again.",
    },
    "document.region": {
        "zh-CN": "证件号码前6位的地区代码不正确，请核对后重新输入。",
        "en": "The region code (first 6 digits) of the number is not valid. "
              "Please check it and try again.",
    },
    "document.type_mismatch": {
        "zh-CN": "这个号码属于另一种证件，请重新选择证件类型。",
        "en": "This number belongs to another kind of document. "
              "Please choose the right document type.",
    },
    "document.mismatch": {
        "zh-CN": "证件信息与您在钱包中实名认证的信息不一致，请使用本人实名认证的证件。",
        "en": "The document does not match your wallet's verified identity. "
              "Please use the document you verified with.",
    },
    "name.empty": {
        "zh-CN": "请输入姓名。",
        "en": "Please enter the name.",
    },
    "name.mismatch": {
        "zh-CN": "姓名与实名认证的姓名不一致，请核对后重新输入。",
        "en": "The name does not match your verified name. Please check it and try again.",
    },
    "sex.mismatch": {
        "zh-CN": "证件号码中的性别与实名认证信息不一致，请核对证件号码。",
        "en": "The sex in the document number does not match your verified identity. "
              "Please check the number.",
    },
    "birth_date.mismatch": {
        "zh-CN": "出生日期与证件号码中的出生日期不一致，请核对后重新输入。",
        "en": "The birth date does not match the one in the document number. "
              "Please check it and try again.",
    },
    "patient.unknown": {
        "zh-CN": "找不到这位就诊人，请从您的就诊人列表中选择。",
        "en": "This patient is not in your list. Please choose one of your patients.",
    },
    "slot.unknown": {
        "zh-CN": "该号源不存在，请刷新后重新选择。",
        "en": "This slot does not exist. Please refresh and choose again.",
    },
    "slot.not_released": {
        "zh-CN": "该号源将于{release_at}开放预约，请届时再来。",
        "en": "This slot opens for booking at {release_at}. Please come back then.",
    },
    "slot.closed": {
        "zh-CN": "该号源已停止预约，请选择其他时段。",
        "en": "This slot can no longer be booked. Please choose another time.",
    },
    "slot.full": {
        "zh-CN": "该号源已被约满，请选择其他时段或医生。",
        "en": "This slot has just been taken. Please choose another time or doctor.",
    },
    "booking.unknown": {
        "zh-CN": "找不到这条预约记录。",
        "en": "This booking could not be found.",
    },
    "booking.not_payable": {
        "zh-CN": "这条预约当前无需支付。",
        "en": "This booking does not need paying now.",
    },
    "booking.confirming": {
        "zh-CN": "正在向医院确认您的预约，请稍后再取消。",
        "en": "The hospital is confirming your booking. Please try cancelling again shortly.",
    },
    "booking.not_cancellable": {
        "zh-CN": "这条预约当前不能取消。",
        "en": "This booking cannot be cancelled now.",
    },
    "cancel.deadline_passed": {
        "zh-CN": "已超过取消截止时间（{deadline}），不能在线取消，如需帮助请联系医院。",
        "en": "The cancellation deadline ({deadline}) has passed, so it cannot be cancelled "
              "online. Please contact the hospital for help.",
    },
    "idempotency.mismatch": {
        "zh-CN": "请求重复但内容不同，请刷新页面后重新提交。",
        "en": "This repeats an earlier request with different content. Please refresh and "
              "submit again.",
    },
    "account.not_certified": {
        "zh-CN": "请先在您的钱包中完成实名认证，再添加就诊人或预约挂号。",
        "en": "Please complete real-name verification in your wallet before adding patients "
              "or booking.",
    },
    "patient.exists": {
        "zh-CN": "这位就诊人已经在您的就诊人列表中。",
        "en": "This patient is already in your list.",
    },
    "patients.limit": {
        "zh-CN": "每个账户最多添加{limit}位就诊人（含本人），请先删除不再需要的就诊人。",
        "en": "An account can have at most {limit} patients (yourself included). "
              "Please remove one you no longer need.",
    },
    "relation.unknown": {
        "zh-CN": "请选择与就诊人的关系。",
        "en": "Please choose how the patient is related to you.",
    },
    "relation.self": {
        "zh-CN": "本人信息来自实名认证，无需另外添加。",
        "en": "You are added from your verified identity; there is no need to add yourself.",
    },
    "relation.adult_as_child": {
        "zh-CN": "年满{adult_age}周岁的就诊人不能以“子女（被监护人）”关系添加，请选择其他关系。",
        "en": "A patient aged {adult_age} or over cannot be added as a child in your care. "
              "Please choose another relation.",
    },
    "child.guardian_required": {
        "zh-CN": "不满{age}周岁的儿童只能由其监护人添加，关系请选择“子女（被监护人）”。",
        "en": "A child under {age} can only be added by a parent or guardian, "
              "with the relation \"child\".",
    },
    "child.consent_required": {
        "zh-CN": "为不满{age}周岁的儿童就诊，需要您作为监护人同意处理其个人信息。",
        "en": "For a child under {age}, you must agree, as the guardian, "
              "to the processing of the child's personal information.",
    },
    "booking.per_day": {
        "zh-CN": "每位就诊人同一天最多预约{limit}个号。",
        "en": "At most {limit} bookings per patient per day.",
    },
    "booking.per_department": {
        "zh-CN": "每位就诊人同一天同一科室最多预约{limit}个号。",
        "en": "At most {limit} bookings per patient per day in the same department.",
    },
    "booking.per_doctor": {
        "zh-CN": "每位就诊人同一天同一医生最多预约{limit}个号。",
        "en": "At most {limit} bookings per patient per day with the same doctor.",
    },
    "booking.banned": {
        "zh-CN": "{window_days}天内爽约已达{limit}次，{allowed_from}起才能再次预约。",
        "en": "You missed {limit} appointments within {window_days} days, "
              "so you can book again from {allowed_from}.",
    },
}

LOCALES = ("zh-CN", "en")


class _KeepMissing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Refusal(Exception):
    """A rule said no; ``code`` is stable, ``message()`` is for the patient."""

    def __init__(self, code: str, **params: Any) -> None:
        # Only the code and params: never the checked name or number (they would be logged).
        super().__init__(code, params)
        self.code = code
        self.params: dict[str, Any] = params

    def message(self, locale: str = "zh-CN") -> str:
        """The refusal as a sentence in zh-CN (default) or en (any ``en-*`` locale)."""
        lang = "en" if locale.lower().startswith("en") else "zh-CN"
        texts = MESSAGES.get(self.code)
        if texts is None:  # a code added without text: say something rather than fail
            logger.warning("refusal code %s has no message", self.code)
            return "无法办理，请稍后再试。" if lang == "zh-CN" else "This cannot be done."
        return texts[lang].format_map(_KeepMissing(self.params))

    def __str__(self) -> str:
        if not self.params:
            return self.code
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.code} ({shown})"


# --- names ----------------------------------------------------------------------------------

# Marks people type, paste or get from OCR for the middle dot of transliterated names
# (阿卜杜拉·买买提). NFKC runs first, which already maps U+0387 to U+00B7, U+FF65 to U+30FB,
# U+FF0E/U+FE52 to '.' and the Hangul araea U+318D to U+119E (an archaic vowel that no modern
# Korean name uses on its own).
_MIDDLE_DOTS = "\u00b7\u2022\u2027\u30fb\uff65\u318d\u119e\u16eb\u2219\u22c5\u2e31\u0387\uff0e"
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_DOT_RE = re.compile(rf"\s*[{_MIDDLE_DOTS}]\s*")
# A '.' (what NFKC makes of U+FF0E) between CJK characters is a middle dot too.
_CJK_PERIOD_RE = re.compile(rf"(?<=[{_CJK}])\s*\.\s*(?=[{_CJK}])")
# Chinese names have no spaces: "张 三" is 张三. Latin names keep one space between words.
_CJK_SPACE_RE = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")
_SPACE_RE = re.compile(r"\s+")


def normalize_name(name: str) -> str:
    """The name as it is stored and shown: NFKC, one middle dot (U+00B7), spaces tidied.

    Case is kept for display; compare with :func:`names_match`.
    """
    text = unicodedata.normalize("NFKC", name)  # full-width letters, digits, U+3000 -> ASCII
    text = _CJK_PERIOD_RE.sub("\u00b7", text)
    text = _DOT_RE.sub("\u00b7", text)
    text = _SPACE_RE.sub(" ", text).strip()
    return _CJK_SPACE_RE.sub("", text)


def names_match(a: str, b: str) -> bool:
    """True when two names are the same after normalising, Latin case ignored."""
    left, right = normalize_name(a).casefold(), normalize_name(b).casefold()
    return bool(left) and left == right


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


# --- the certified user and dependants ------------------------------------------------------

@dataclass
class CertifiedIdentity:
    """What the wallet certified about its user (its document type and number, name...)."""

    name: str
    document_type: str
    document_number: str
    sex: str = ""  # "M"/"F" when the wallet says
    birth_date: dt.date | None = None  # when the wallet says


def match_self(certified: CertifiedIdentity, claimed_name: str, claimed_type: str,
               claimed_number: str, today: dt.date) -> DocumentFacts:
    """Check that the patient "self" is the wallet's certified user; return the facts."""
    facts = check_document(claimed_type, claimed_number, today)
    if not normalize_name(claimed_name):
        raise Refusal("name.empty")
    if not names_match(certified.name, claimed_name):
        raise Refusal("name.mismatch")
    if (claimed_type != certified.document_type
            or facts.number != normalize_document_number(certified.document_number)):
        raise Refusal("document.mismatch", document_type=claimed_type)
    certified_sex = certified.sex.strip().upper()
    if certified_sex in ("M", "F") and facts.sex and facts.sex != certified_sex:
        raise Refusal("sex.mismatch")
    if certified.birth_date and facts.birth_date and facts.birth_date != certified.birth_date:
        raise Refusal("birth_date.mismatch")
    return facts


@dataclass
class Dependant:
    """A patient the wallet user adds for someone else (child, spouse, parent...)."""

    name: str
    document_type: str
    document_number: str
    relation: str
    guardian_consent: bool = False
    # Declared by the user; needed for the age rules when the document does not carry one
    # (passports, travel permits). Must agree with the document when both say.
    birth_date: dt.date | None = None


def age_on(birth_date: dt.date, today: dt.date) -> int:
    """Age in whole years on ``today``; someone born on 29 February ages on 1 March."""
    before_birthday = (today.month, today.day) < (birth_date.month, birth_date.day)
    return today.year - birth_date.year - before_birthday


def check_new_patient(existing_count: int, new: Dependant, today: dt.date,
                      max_patients: int = MAX_PATIENTS) -> DocumentFacts:
    """Check that a dependant may be added to a wallet user's patients; return the facts.

    ``existing_count`` counts the user's patients already there, self included.
    """
    if existing_count >= max_patients:
        raise Refusal("patients.limit", limit=max_patients)
    if new.relation == "self":
        raise Refusal("relation.self")
    if new.relation not in RELATIONS:
        raise Refusal("relation.unknown")
    facts = check_document(new.document_type, new.document_number, today)
    if not normalize_name(new.name):
        raise Refusal("name.empty")
    birth_date = facts.birth_date
    if new.birth_date is not None:
        if birth_date is not None and birth_date != new.birth_date:
            raise Refusal("birth_date.mismatch")
        if not EARLIEST_BIRTH_DATE <= new.birth_date <= today:
            raise Refusal("document.birth_date", document_type=new.document_type)
        birth_date = new.birth_date
    age = age_on(birth_date, today) if birth_date is not None else None
    if age is not None and age < CHILD_CONSENT_AGE and new.relation != "child":
        raise Refusal("child.guardian_required", age=CHILD_CONSENT_AGE)
    if new.relation == "child":
        if age is not None and age >= ADULT_AGE:
            raise Refusal("relation.adult_as_child", adult_age=ADULT_AGE)
        # With no birth date at all the child is taken to be under 14: consent is asked.
        if (age is None or age < CHILD_CONSENT_AGE) and not new.guardian_consent:
            raise Refusal("child.consent_required", age=CHILD_CONSENT_AGE)
    if birth_date is not None and facts.birth_date is None:
        facts = DocumentFacts(facts.document_type, facts.number, birth_date, facts.sex)
    return facts


# --- anti-scalping --------------------------------------------------------------------------

class BookingRulesError(ValueError):
    """mappings/booking_rules.toml has a key or a value the adapter cannot use."""


@dataclass(frozen=True)
class BookingRules:
    """Per-patient booking limits and the no-show ban (mappings/booking_rules.toml)."""

    per_id_per_day: int = 2
    per_department_per_day: int = 1
    per_doctor_per_day: int = 1
    no_show_limit: int = 3
    no_show_window_days: int = 90
    ban_days: int = 90


def load_booking_rules(path: Path) -> BookingRules:
    """Read and validate the booking rules; a missing key keeps its default."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BookingRulesError(f"{path.name}: not valid TOML: {exc}") from None
    known = [f.name for f in fields(BookingRules)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise BookingRulesError(f"{path.name}: unknown key(s) {', '.join(unknown)}; "
                                f"known keys: {', '.join(known)}")
    for key, value in data.items():
        # bool is an int in Python; "true" is not a limit.
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BookingRulesError(f"{path.name}: {key} must be a whole number of 1 or more, "
                                    f"not {value!r}")
    rules = BookingRules(**data)
    if rules.per_department_per_day > rules.per_id_per_day:
        logger.warning("booking rules: per_department_per_day is above per_id_per_day "
                       "and has no effect")
    return rules


@dataclass(frozen=True)
class BookingFact:
    """One of the patient's bookings, as the limits see it."""

    visit_date: dt.date
    department_code: str
    doctor_code: str
    status: str  # "active" (booked, paid or confirmed), "cancelled", "no_show", "visited"


def check_booking_allowed(rules: BookingRules, history: list[BookingFact],
                          no_shows: list[dt.date], *, visit_date: dt.date,
                          department_code: str, doctor_code: str, today: dt.date) -> None:
    """Raise Refusal when one more booking would break a limit or the patient is banned.

    ``history`` is the patient's bookings (any dates); every booking but a cancelled one counts
    toward the day's limits: a visited or missed slot was used all the same. ``no_shows`` are
    the dates of the patient's missed visits, the only input of the ban.
    """
    allowed_from = ban_ends(rules, no_shows, today)
    if allowed_from is not None:
        raise Refusal("booking.banned", limit=rules.no_show_limit,
                      window_days=rules.no_show_window_days,
                      allowed_from=allowed_from.isoformat(),
                      until=(allowed_from - dt.timedelta(days=1)).isoformat())
    same_day = [b for b in history if b.visit_date == visit_date and b.status != "cancelled"]
    checks = (
        ("booking.per_doctor", rules.per_doctor_per_day,
         [b for b in same_day if b.doctor_code == doctor_code]),
        ("booking.per_department", rules.per_department_per_day,
         [b for b in same_day if b.department_code == department_code]),
        ("booking.per_day", rules.per_id_per_day, same_day),
    )
    for code, limit, counted in checks:
        if len(counted) >= limit:
            raise Refusal(code, limit=limit, visit_date=visit_date.isoformat())


def ban_ends(rules: BookingRules, no_shows: list[dt.date], today: dt.date) -> dt.date | None:
    """The first day the patient may book again, or None when not banned on ``today``.

    A no-show that brings the count within ``no_show_window_days`` (that day and the days
    before it) to ``no_show_limit`` starts a ban of ``ban_days`` days, that day included.
    """
    window = dt.timedelta(days=rules.no_show_window_days)
    past = sorted(d for d in no_shows if d <= today)
    latest_end: dt.date | None = None
    for index, day in enumerate(past):
        in_window = sum(1 for other in past[: index + 1] if day - other < window)
        if in_window >= rules.no_show_limit:
            end = day + dt.timedelta(days=rules.ban_days)
            latest_end = end if latest_end is None or end > latest_end else latest_end
    if latest_end is not None and today < latest_end:
        return latest_end
    return None
