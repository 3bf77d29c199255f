"""The declared shapes of /api/v1: what each request may carry and what each answer holds.

Views validate their input with these models (adapter.web.api.validation) and
adapter.web.openapi describes the API from the same models, so the two cannot drift.

Limits are the columns' (adapter/models.py) and HL7 v2.5's where a value travels to the HIS:
a name goes whole into XPN.1.1 (surname, ST, 50 characters; v2.5 section 2A.30.1), a phone
into XTN.1 and XTN.12 (patient.phone_masked holds 20). Ids are JSON-safe integers (the pages
hold them as JavaScript numbers; the id columns are 64-bit). Dates fall in a fixed window so
that no date arithmetic downstream leaves Python's or the database's range.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from adapter.i18n import N_
from adapter.identity.dependants import RELATIONS
from adapter.identity.documents import DOCUMENT_TYPES

MAX_ID = 2**53 - 1  # Number.MAX_SAFE_INTEGER: the pages hold ids as JavaScript numbers
NAME_MAX = 50  # HL7 v2.5 XPN.1.1 (surname, ST 50); the column holds 100
PHONE_MAX = 20  # patient.phone_masked
DOCUMENT_NUMBER_MAX = 40  # patient.document_masked; the longest valid number has 18
CODE_MAX = 40  # slot.department_code, slot.doctor_code
PUBLIC_ID_MAX = 32  # booking.public_id
IDEMPOTENCY_KEY_MAX = 100  # idempotency_record.key
URL_MAX = 2048
TOKEN_MAX = 128
VISIT_DATES = (dt.date(2000, 1, 1), dt.date(2099, 12, 31))
BIRTH_DATES = (dt.date(1900, 1, 1), dt.date(2099, 12, 31))

# Characters no name or number has: C0 and C1 controls (NUL included), soft hyphen, Arabic
# letter mark, zero-width and joiner characters, line and paragraph separators, bidi
# embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), word joiner and invisible
# operators, the byte-order mark, interlinear annotation marks. Unassigned and private-use code
# points are let through: rare characters of Chinese names are newer than some Unicode tables,
# or sit in the private-use area of older systems. Lone surrogates never pass (JSON refuses them).
_HIDDEN = (r"\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
           r"\ufeff\ufff9-\ufffb")
TEXT_PATTERN = rf"^[^{_HIDDEN}]+$"
NAME_PATTERN = rf"^[^{_HIDDEN}|^~\\&]+$"  # and not the HL7 delimiters
_TEXT_RE = re.compile(TEXT_PATTERN)
_NAME_RE = re.compile(NAME_PATTERN)
PHONE_PATTERN = r"^(\+?[0-9][0-9-]{3,18})?$"
CODE_PATTERN = r"^[A-Za-z0-9_.-]{0,40}$"
PUBLIC_ID_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
AUTH_CODE_PATTERN = r"^[A-Za-z0-9_.~+/=-]{1,128}$"
STATE_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
URL_PATTERN = r"^https?://[^\x00-\x20\x7f]+$"
PLATFORM_PATTERN = r"^[a-z0-9_]{1,16}$"
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,100}$"
CHECK_IN_TOKEN_MAX = 200  # an itsdangerous token of a timestamp is about 40
CHECK_IN_TOKEN_PATTERN = r"^[A-Za-z0-9_.-]{1,200}$"  # noqa: S105 - a pattern, not a secret


def _text(value: str, pattern: re.Pattern[str]) -> str:
    if not pattern.fullmatch(value) or any(unicodedata.category(ch) == "Cs" for ch in value):
        raise PydanticCustomError("text.characters", "characters that are not allowed")
    return value


def _plain_text(value: str) -> str:
    return _text(value, _TEXT_RE)


def _person_name(value: str) -> str:
    _text(value, _NAME_RE)
    # Stored and sent NFKC-normalised (adapter.identity.names), which can lengthen a string
    # (U+FDFA is 18 characters): the limit holds for the normalised name too.
    if len(unicodedata.normalize("NFKC", value)) > NAME_MAX:
        raise PydanticCustomError("string_too_long", "too long")
    return value


def _whole_number(value: Any) -> Any:  # noqa: ANN401
    # JSON Schema's integer is any number without a fraction: 2.0 is 2. true is not 1.
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_ID:
        return int(value)
    return value


def _iso_date(value: Any) -> Any:  # noqa: ANN401 - whatever the request held
    # Only "YYYY-MM-DD": not a timestamp number, not a date-time.
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise PydanticCustomError("date_from_datetime_parsing", "a YYYY-MM-DD date")


def _not_self(value: Any) -> Any:  # noqa: ANN401
    # "self" is the certified user, added at sign-in: a refusal with its own words.
    if value == "self":
        raise PydanticCustomError("relation.self", "self is not added")
    return value


Id = Annotated[int, Field(ge=1, le=MAX_ID, strict=True), BeforeValidator(_whole_number)]
# An id in a path: digits only (no sign, no "1.0"), within the same bounds.
PathId = Annotated[int, Field(ge=1, le=MAX_ID)]
PersonName = Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX),
                       AfterValidator(_person_name),
                       Field(json_schema_extra={"pattern": NAME_PATTERN})]
Phone = Annotated[str, StringConstraints(max_length=PHONE_MAX, pattern=PHONE_PATTERN)]
DocumentNumber = Annotated[str, StringConstraints(min_length=1, max_length=DOCUMENT_NUMBER_MAX),
                           AfterValidator(_plain_text),
                           Field(json_schema_extra={"pattern": TEXT_PATTERN})]
Code = Annotated[str, StringConstraints(max_length=CODE_MAX, pattern=CODE_PATTERN)]
PublicId = Annotated[str, StringConstraints(max_length=PUBLIC_ID_MAX, pattern=PUBLIC_ID_PATTERN)]
HttpUrl = Annotated[str, StringConstraints(max_length=URL_MAX, pattern=URL_PATTERN)]
_MONTH_DAY = r"-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
# JSON Schema has no date bounds: the window is stated as a pattern over the years.
VisitDate = Annotated[dt.date, BeforeValidator(_iso_date),
                      Field(ge=VISIT_DATES[0], le=VISIT_DATES[1]),
                      WithJsonSchema({"type": "string", "format": "date",
                                      "pattern": r"^20[0-9]{2}" + _MONTH_DAY})]
BirthDate = Annotated[dt.date, BeforeValidator(_iso_date),
                      Field(ge=BIRTH_DATES[0], le=BIRTH_DATES[1]),
                      WithJsonSchema({"type": "string", "format": "date",
                                      "pattern": r"^(19|20)[0-9]{2}" + _MONTH_DAY})]
DocumentType = Literal[DOCUMENT_TYPES]  # type: ignore[valid-type]
Relation = Annotated[Literal[tuple(r for r in RELATIONS if r != "self")],  # type: ignore[misc]
                     BeforeValidator(_not_self)]


class Request(BaseModel):
    """A request's declared part: strict types, no unknown keys.

    ``code`` answers a malformed request (400); ``field_codes`` names a field's own code;
    ``refusals`` turns a field's failure into that refusal (422), where the use case refused the
    same value before it was declared here; ``messages`` says each field's rule to the patient.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    code: ClassVar[str] = "request.invalid"
    field_codes: ClassVar[dict[str, str]] = {}
    refusals: ClassVar[dict[str, str]] = {}
    messages: ClassVar[dict[str, str]] = {}


class Query(Request):
    """A query string: unknown parameters are ignored (``lang`` is read by every view)."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    lang: Annotated[str, Field(description="any en-* answers in English, else Chinese")] = ""


# --- requests ---------------------------------------------------------------------------------

class SessionBody(Request):
    """POST /session."""

    auth_code: Annotated[str, StringConstraints(max_length=TOKEN_MAX, pattern=AUTH_CODE_PATTERN)]
    state: Annotated[str, StringConstraints(max_length=TOKEN_MAX, pattern=STATE_PATTERN),
                     Field(description="the state given by /session/login-url")]
    platform: Annotated[str, StringConstraints(pattern=PLATFORM_PATTERN),
                        Field(description="the wallet signed in with, as login-url said "
                                          "(optional; another is refused)")] = ""

    code: ClassVar[str] = "auth_code.required"
    field_codes: ClassVar[dict[str, str]] = {"state": "login.state_mismatch",
                                             "platform": "login.state_mismatch"}
    messages: ClassVar[dict[str, str]] = {
        "auth_code": N_("授权信息不完整，请重新登录"), "state": N_("登录已失效，请重新登录")}


class LoginUrlQuery(Query):
    """GET /session/login-url."""

    redirect_uri: HttpUrl
    platform: Annotated[str, StringConstraints(pattern=PLATFORM_PATTERN),
                        Field(description="the wallet (default: the first configured)")] = ""

    code: ClassVar[str] = "redirect_uri.invalid"
    field_codes: ClassVar[dict[str, str]] = {"platform": "platform.unknown"}
    messages: ClassVar[dict[str, str]] = {
        "redirect_uri": N_("返回地址须为 http(s) 网址"), "platform": N_("没有这个钱包")}


class SlotsQuery(Query):
    """GET /slots: a date and a department or a doctor (or both)."""

    date: Annotated[VisitDate, Field(description="YYYY-MM-DD, 2000-01-01 to 2099-12-31")]
    department: Annotated[Code, Field(description="a department code; or give doctor")] = ""
    doctor: Annotated[Code, Field(description="a doctor code; or give department")] = ""

    code: ClassVar[str] = "slots.filter"
    field_codes: ClassVar[dict[str, str]] = {"date": "date.format"}
    messages: ClassVar[dict[str, str]] = {
        "date": N_("日期格式应为YYYY-MM-DD，且在2000年至2099年之间"),
        "": N_("请选择科室或医生")}

    @model_validator(mode="after")
    def _department_or_doctor(self) -> SlotsQuery:
        if not self.department and not self.doctor:
            raise PydanticCustomError("missing", "give department or doctor")
        return self


class BookingBody(Request):
    """POST /bookings."""

    slot_id: Id
    patient_id: Id

    code: ClassVar[str] = "booking_request.fields"


class IdempotencyHeaders(Request):
    """The Idempotency-Key header of POST /bookings."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    key: Annotated[str, StringConstraints(max_length=IDEMPOTENCY_KEY_MAX,
                                          pattern=IDEMPOTENCY_KEY_PATTERN),
                   Field(alias="Idempotency-Key")]

    code: ClassVar[str] = "idempotency.key_required"
    messages: ClassVar[dict[str, str]] = {
        "": N_("请求缺少有效的 Idempotency-Key，请刷新页面后重试")}


class BookingPath(Request):
    """A booking named in the path; one that cannot exist is as unknown as any other."""

    public_id: PublicId


class ResultPath(Request):
    """A result named in the path; one that cannot exist is as unknown as any other."""

    result_id: PathId


class ResultFilePath(Request):
    """A report file of a result named in the path."""

    result_id: PathId
    file_id: PathId


class CheckInLocation(Request):
    """Where the phone says it is: WGS-84 decimal degrees, and the fix's accuracy in metres."""

    latitude: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    longitude: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
    accuracy_m: Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False,
                                       description="the fix's radius (metres)")] = 0.0


class CheckInBody(Request):
    """POST /bookings/{public_id}/check-in: the phone's location, or the QR code's token."""

    location: CheckInLocation | None = None
    token: Annotated[str, StringConstraints(max_length=CHECK_IN_TOKEN_MAX,
                                            pattern=CHECK_IN_TOKEN_PATTERN),
                     Field(description="the token of the QR code shown at the hospital")] = ""

    code: ClassVar[str] = "check_in.fields"
    messages: ClassVar[dict[str, str]] = {
        "location": N_("位置信息无效"), "token": N_("签到二维码无效，请扫描院内张贴的签到二维码。")}


BILL_MAX_CHARGES = 50  # adapter.billing.paying.MAX_CHARGES


class PaymentBody(Request):
    """POST /payments: a held booking, or a bill (a chosen set of unpaid charges)."""

    booking_id: Annotated[PublicId, Field(description="a held booking; or give charge_ids")] = ""
    charge_ids: Annotated[list[Id], Field(
        max_length=BILL_MAX_CHARGES,
        description="unpaid charges of one patient (GET /bills) paid together in one trade; "
                    "or give booking_id")] = []
    return_url: Annotated[HttpUrl, Field(description="where the wallet returns the patient")] = ""

    code: ClassVar[str] = "payment.fields"
    field_codes: ClassVar[dict[str, str]] = {"return_url": "return_url.invalid"}
    messages: ClassVar[dict[str, str]] = {"return_url": N_("返回地址须为 http(s) 网址"),
                                          "": N_("请选择要支付的预约或费用")}

    @model_validator(mode="after")
    def _booking_or_bill(self) -> PaymentBody:
        if bool(self.booking_id) == bool(self.charge_ids):
            raise PydanticCustomError("missing", "give booking_id or charge_ids")
        return self


class BillPath(Request):
    """A bill (settlement) named in the path."""

    public_id: PublicId


class NewPatient(Request):
    """POST /patients: a dependant."""

    name: Annotated[PersonName, Field(description=(
        "1 to 50 characters (HL7 XPN.1.1), also after NFKC; no control, bidi or "
        "zero-width characters, no |^~\\&"))]
    document_type: DocumentType
    document_number: DocumentNumber
    relation: Annotated[Relation, Field(description="self is the certified user, never added")]
    guardian_consent: bool = False
    birth_date: Annotated[BirthDate | None, Field(
        description="YYYY-MM-DD from 1900-01-01, not after today; needed when the document "
                    "does not carry one")] = None
    phone: Annotated[Phone, Field(description="digits and hyphens, optionally a leading +")] = ""

    code: ClassVar[str] = "patient.fields"
    field_codes: ClassVar[dict[str, str]] = {
        "name": "name.invalid", "birth_date": "birth_date.format", "phone": "phone.invalid",
        "document_number": "document_number.invalid"}
    refusals: ClassVar[dict[str, str]] = {"document_type": "document.type_unknown",
                                          "relation": "relation.unknown"}
    messages: ClassVar[dict[str, str]] = {
        "name": N_("姓名须为1至50个字符，不能含控制字符、不可见字符或 | ^ ~ \\ & 符号"),
        "birth_date": N_("出生日期格式应为YYYY-MM-DD"),
        "phone": N_("电话号码只能包含数字和连字符（可以+开头），最多20位"),
        "document_number": N_("请输入证件号码（最多40个字符，不能含控制字符）")}


# --- answers ----------------------------------------------------------------------------------

class Answer(BaseModel):
    """An answer's declared shape (documentation: the views build the JSON)."""

    model_config = ConfigDict(extra="forbid")


class Error(Answer):
    """The one error shape of the API."""

    error: Annotated[str, Field(description="stable machine code")]
    message: Annotated[str, Field(description="in the patient's language; never echoes input")]


class Patient(Answer):
    """A patient as the pages show them: document and phone masked."""

    id: int
    relation: Literal[RELATIONS]  # type: ignore[valid-type]
    name: str
    document_type: str
    document_number: Annotated[str, Field(description="masked")]
    birth_date: dt.date | None
    sex: Literal["F", "M", "U"]
    phone: Annotated[str, Field(description="masked")]


class SessionAnswer(Answer):
    """Signed in."""

    certified: bool
    patients: list[Patient]


class LoginUrl(Answer):
    """The wallet's sign-in page."""

    url: str
    state: str
    platform: str


class Doctor(Answer):
    """A doctor of a department."""

    code: str
    name: str
    title: str


class Department(Answer):
    """A department, its doctors and when its slots open."""

    code: str
    name: str
    location: str
    release_time: Annotated[str, Field(description="HH:MM, hospital time")]
    release_days_ahead: int
    doctors: list[Doctor]


class Departments(Answer):
    """GET /departments."""

    departments: list[Department]


class Slot(Answer):
    """A slot as a patient sees it."""

    id: int
    department_code: str
    doctor_code: str
    doctor_name: str
    doctor_title: str
    start_at: dt.datetime
    end_at: dt.datetime
    fee: Annotated[str, Field(description="yuan, two decimals")]
    fee_fen: int
    capacity: int
    remaining: int
    status: Literal["open", "full", "closed", "not_released", "past"]
    release_at: dt.datetime


class Slots(Answer):
    """GET /slots."""

    slots: list[Slot]


class BookingRefund(Answer):
    """The refund of a booking."""

    status: Literal["pending", "done"]
    amount: str


class BookingPatient(Answer):
    """Who the booking is for."""

    id: int
    name: str
    relation: str


class BookingDepartment(Answer):
    """The booking's department."""

    code: str
    name: str


class BookingDoctor(Answer):
    """The booking's doctor."""

    code: str
    name: str
    title: str


class Booking(Answer):
    """A booking as the pages show it."""

    id: str
    status: Literal["pending_payment", "confirming", "confirmed", "cancelling", "cancelled",
                    "expired", "rejected", "no_show"]
    status_text: str
    status_reason: str
    refund: BookingRefund | None
    patient: BookingPatient
    department: BookingDepartment
    doctor: BookingDoctor
    visit_date: dt.date
    start_at: dt.datetime
    end_at: dt.datetime
    fee: Annotated[str, Field(description="yuan, two decimals")]
    hold_expires_at: dt.datetime
    can_cancel: bool
    can_pay: bool


class CheckInAnswer(Answer):
    """A booking's check-in (the first one, however often it is asked for)."""

    booking_id: str
    checked_in_at: dt.datetime
    method: Literal["remote", "qr"]


class QueueWait(Answer):
    """Minutes until the call, as a range leaning pessimistic."""

    low_minutes: int
    high_minutes: int


class QueueView(Answer):
    """GET /bookings/{public_id}/queue: the booking's place in its doctor's queue."""

    booking_id: str
    state: Annotated[Literal["not_in_queue", "registered", "waiting", "called", "finished",
                             "missed", "cancelled"],
                     Field(description="not_in_queue until the HIS has the registration")]
    state_text: str
    checked_in: bool
    position: Annotated[int | None, Field(description="1 = next; null unless waiting")]
    ahead: int | None
    wait: QueueWait | None
    room: str
    updated_at: Annotated[dt.datetime | None,
                          Field(description="when the HIS last told anything of this queue")]


class Bookings(Answer):
    """GET /bookings."""

    bookings: list[Booking]


class Patients(Answer):
    """GET /patients."""

    patients: list[Patient]


class Payment(Answer):
    """The wallet trade paying a booking or a bill; cashier_url is null when the wallet pays in
    its app."""

    out_trade_no: str
    trade_no: str
    amount: Annotated[str, Field(description="yuan, two decimals: the HIS's total for a bill")]
    cashier_url: str | None
    platform: str
    pay: dict[str, Any]
    bill_id: Annotated[str | None, Field(description="the bill paid (GET /bills/{id})")] = None


REQUESTS: tuple[type[Request], ...] = (SessionBody, BookingBody, PaymentBody, NewPatient,
                                       CheckInBody)
ANSWERS: tuple[type[Answer], ...] = (Error, Patient, Patients, SessionAnswer, LoginUrl,
                                     Departments, Slots, Booking, Bookings, Payment,
                                     CheckInAnswer, QueueView)
