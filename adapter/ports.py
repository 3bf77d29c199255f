"""The ports through which use cases reach the HIS and the wallets.

The use-case modules import only this module's types, never hl7apy, sockets or HTTP clients:
adapter/his/ implements :class:`HisGateway` over HL7 v2.5/MLLP, each package of adapter/wallet/
implements :class:`WalletGateway` for its platform, and tests pass fakes. The wallet's types
speak the adapter's words; a platform's own statuses and method names stay in its package.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple, Protocol


@dataclass(frozen=True)
class PatientIdentity:
    """A person as the HIS knows them (PID segment)."""

    name: str
    sex: str  # HL7 table 0001 code: F, M, U
    birth_date: dt.date
    document_type: str  # mappings/document_types.csv code, e.g. RESIDENT_ID
    document_number: str
    phone: str = ""
    his_patient_id: str = ""  # PID-3 with the HIS's own assigning authority, once known


@dataclass(frozen=True)
class SlotRecord:
    """One bookable slot of the pool the HIS allots to the wallet channel (SQR^S25 / SIU)."""

    his_slot_id: str
    department_code: str
    doctor_code: str
    service_code: str  # registration type; its fee item is in mappings/fee_items.csv
    start_at: dt.datetime  # timezone-aware
    end_at: dt.datetime
    capacity: int
    available: int
    fee_fen: int
    status: str = "open"  # open | closed (clinic stopped)


@dataclass(frozen=True)
class AppointmentRequest:
    """What the adapter asks the HIS to book (SRM^S01)."""

    placer_appointment_id: str  # our booking id, SCH-1
    his_slot_id: str
    his_patient_id: str
    department_code: str
    doctor_code: str
    service_code: str
    start_at: dt.datetime
    end_at: dt.datetime


@dataclass(frozen=True)
class ArrivalNotice:
    """A patient checked in through the wallet (ADT^A10, patient arriving)."""

    placer_appointment_id: str  # our booking id
    filler_appointment_id: str  # the HIS's appointment (SCH-2 of its SRR^S01)
    his_patient_id: str  # PID-3
    location: str  # the clinic's HIS point of care, PV1-3.1
    visit_number: str  # the HIS's registration number, when a queue event named it (PV1-19)
    arrived_at: dt.datetime  # aware; EVN-6


@dataclass(frozen=True)
class HisOutcome:
    """The HIS's answer to a request: accepted, or refused with a code the patient can be told."""

    accepted: bool
    filler_appointment_id: str = ""  # SCH-2, kept for cancellation
    error_code: str = ""  # HL7 table 0357 code, or the HIS's own in ERR-5
    error_text: str = ""
    details: dict[str, str] = field(default_factory=dict)


class HisUnavailable(Exception):
    """The HIS could not be reached or did not answer in time; the outcome is unknown."""


class HisRefused(Exception):
    """The HIS answered and refused; ``outcome`` says why."""

    def __init__(self, outcome: HisOutcome) -> None:
        super().__init__(outcome.error_code or "refused")
        self.outcome = outcome


class SettlementKind(StrEnum):
    """What a line of the HIS's settlement list records."""

    PAYMENT = "payment"  # the HIS took a payment (posted a fee, issued a receipt)
    REFUND = "refund"  # the HIS gave money back (a cancelled registration, a cancelled test)


class SettlementChannel(StrEnum):
    """Where the money of a settlement moved."""

    WALLET = "wallet"  # through the adapter's wallet channel
    WINDOW = "window"  # at a cashier's window (cash, card): not the wallet's money


@dataclass(frozen=True)
class HisSettlement:
    """One line of the HIS's settlement list for a day (docs/hl7-profile.md, RTB^K13)."""

    receipt_no: str  # the HIS's receipt (or refund receipt) number, unique in its list
    kind: SettlementKind
    channel: SettlementChannel
    amount_fen: int  # always positive
    at: dt.datetime  # aware
    out_trade_no: str = ""  # the wallet trade it was paid with, when the HIS knows it
    placer_id: str = ""  # what it settles in our words: a booking's placer id, a bill's id


@dataclass(frozen=True)
class SettlementList:
    """The HIS's settlement list of one day, and the rows of it that could not be read."""

    day: dt.date
    entries: tuple[HisSettlement, ...]
    problems: tuple[BillProblem, ...] = ()


class HisGateway(Protocol):
    """What the adapter needs from the HIS."""

    def find_patient(self, document_type: str, document_number: str) -> PatientIdentity | None:
        """Look a patient up by document (QBP^Q22 -> RSP^K22)."""
        ...

    def register_patient(self, patient: PatientIdentity) -> PatientIdentity:
        """Add a person to the HIS patient index (ADT^A28) and return them with their HIS id."""
        ...

    def book_appointment(self, request: AppointmentRequest) -> HisOutcome:
        """Ask the HIS to book (SRM^S01 -> SRR^S01)."""
        ...

    def cancel_appointment(
        self, placer_appointment_id: str, filler_appointment_id: str, his_slot_id: str
    ) -> HisOutcome:
        """Ask the HIS to cancel (SRM^S04 or SIU^S15, per the hospital's HL7 profile)."""
        ...

    def query_slot_pool(self, start: dt.date, end: dt.date) -> list[SlotRecord]:
        """Read the wallet channel's slot pool for a date range (SQM^S25 -> SQR^S25)."""
        ...

    def settlement_list(self, day: dt.date) -> SettlementList:
        """The HIS's settlements of one day in the hospital's zone (QBP^Q13 -> RTB^K13)."""
        ...

    def patient_arrived(self, notice: ArrivalNotice) -> HisOutcome:
        """Tell the HIS a patient checked in (ADT^A10 -> ACK)."""
        ...

    def query_queue(self, doctor_code: str, visit_date: dt.date, session: str) -> QueueSnapshot:
        """The HIS's whole queue of a doctor's session now (SQM^S25 -> SQR^S25, QRD-9 QUEUE)."""
        ...


# Events the HIS tells the adapter about, read from stored inbound messages by adapter/his/
# inbound.py and handled by the flows that declare a handler for them (adapter/flows.py).


@dataclass(frozen=True)
class SlotOffered:
    """The HIS opened or changed a slot of the wallet channel's pool (SIU^S12/S13/S14)."""

    slot: SlotRecord


@dataclass(frozen=True)
class SlotWithdrawn:
    """The HIS stopped a slot (clinic cancelled, SIU^S15/S17)."""

    his_slot_id: str


@dataclass(frozen=True)
class AppointmentMissed:
    """The patient did not come to an appointment (SIU^S26)."""

    filler_appointment_id: str


class QueueEventKind(StrEnum):
    """What happened to a registration in a doctor's queue, in the adapter's words (the HIS's
    codes are mapped in mappings/queue.toml)."""

    REGISTERED = "registered"  # in the HIS's queue (a wallet booking, the window, a walk-in)
    ARRIVED = "arrived"  # checked in (签到): waiting to be called
    CALLED = "called"  # called to the room (叫号)
    FINISHED = "finished"  # the consult ended
    NO_SHOW = "no_show"  # called and absent (过号), or never came
    RECALLED = "recalled"  # a missed patient is back in the line
    CANCELLED = "cancelled"  # the registration was withdrawn (退号)


# A session is the morning (am) or the afternoon (pm): a registration's time before this hour
# in the hospital's zone is the morning's.
AFTERNOON_FROM = 12


def session_of(moment: dt.datetime, tz: dt.tzinfo) -> str:
    """The session ("am" or "pm") a registration's time falls in."""
    return "am" if moment.astimezone(tz).hour < AFTERNOON_FROM else "pm"


@dataclass(frozen=True)
class QueueEvent:
    """One change to a doctor's queue for a session (SIU^S14 with SCH-25, docs/hl7-profile.md)."""

    event_id: str  # the HIS's id of the event (MSH-10): a replay carries the same id
    doctor_code: str
    visit_date: dt.date  # in the hospital's zone
    session: str  # "am" or "pm"
    visit_number: str  # the HIS's registration number (SCH-2): one line of the queue
    kind: QueueEventKind
    occurred_at: dt.datetime  # aware
    sequence: int = 0  # the HIS's event sequence number (MSH-13); 0 when it sends none
    queue_number: int = 0  # 号序 (SCH-3), the order the HIS calls in
    his_patient_id: str = ""  # PID-3, when the HIS knows the person
    placer_id: str = ""  # our booking's public id (SCH-1), for registrations made through us
    room: str = ""  # PV1-3.2, the consulting room
    slot_start: dt.datetime | None = None  # TQ1-7: the registration's time


@dataclass(frozen=True)
class QueueSnapshotLine:
    """One registration of a queue snapshot, as the HIS has it now."""

    visit_number: str
    kind: QueueEventKind  # the last thing that happened to it
    queue_number: int = 0
    his_patient_id: str = ""
    placer_id: str = ""
    room: str = ""


@dataclass(frozen=True)
class QueueSnapshot:
    """The HIS's whole queue of one doctor's session at ``taken_at`` (where the HIS offers it)."""

    doctor_code: str
    visit_date: dt.date
    session: str
    taken_at: dt.datetime
    lines: tuple[QueueSnapshotLine, ...]
class ResultStatus(StrEnum):
    """Where a result order stands (OBR-25, HL7 table 0123), in the adapter's words."""

    PRELIMINARY = "preliminary"  # P (and A, R, I...: some results, not verified)
    FINAL = "final"  # F
    CORRECTED = "corrected"  # C: replaces what was sent before
    CANCELLED = "cancelled"  # X: the order was cancelled; nothing to show


# Result values, names and document numbers are kept out of repr(): a dataclass's repr can end
# up in an exception text or a log line.


@dataclass(frozen=True)
class ResultAttachment:
    """A report sent inside an OBX of type ED (a PDF), decoded; ``problem`` says why there are
    no bytes (too_large, unreadable)."""

    content_type: str
    data: bytes = field(default=b"", repr=False)
    problem: str = ""


@dataclass(frozen=True)
class Observation:
    """One OBX of a result order."""

    set_id: str
    value_type: str  # OBX-2: NM, ST, TX, FT, CWE, CE, SN, ED...
    code: str  # OBX-3.1
    name: str = field(default="", repr=False)  # OBX-3.2
    text: str = field(default="", repr=False)  # the value as shown (repetitions joined)
    number: str = field(default="", repr=False)  # NM and SN: a decimal string, never a float
    comparator: str = field(default="", repr=False)  # SN: <, >, <=, >=, =, <>
    units: str = ""  # OBX-6.1
    reference_range: str = field(default="", repr=False)  # OBX-7
    abnormal_flags: tuple[str, ...] = ()  # OBX-8, table 0078 (HH, LL, AA are critical)
    status: str = ""  # OBX-11, table 0085
    attachment: ResultAttachment | None = None


@dataclass(frozen=True)
class ResultOrder:
    """One order's results (an OBR and its OBX)."""

    placer_order: str  # OBR-2.1
    filler_order: str  # OBR-3.1
    kind: str  # OBR-4.1, the universal service id: what mappings/result_release.toml names
    kind_name: str = field(default="", repr=False)  # OBR-4.2
    observed_at: dt.datetime | None = None  # OBR-7
    status: ResultStatus = ResultStatus.FINAL  # OBR-25
    observations: tuple[Observation, ...] = ()
    ordering_provider: str = ""  # OBR-16.1, the HIS doctor code of who ordered it


@dataclass(frozen=True)
class ResultReport:
    """One patient's part of an ORU^R01: who it says it is about, and their orders."""

    his_patient_id: str  # PID-3 under the HIS's own assigning authority; "" when absent
    name: str = field(default="", repr=False)  # PID-5
    birth_date: dt.date | None = None  # PID-7
    document_type: str = ""  # a PID-3 document repetition (mappings/document_types.csv code)
    document_number: str = field(default="", repr=False)
    orders: tuple[ResultOrder, ...] = ()


@dataclass(frozen=True)
class ResultsReported:
    """The HIS (or LIS, PACS) sent results (ORU^R01)."""

    control_id: str  # MSH-10
    sender: str  # MSH-3^MSH-4
    reports: tuple[ResultReport, ...] = ()


class InboundRefused(Exception):
    """A stored inbound message is refused for good: unreadable, or refused by its handler
    (shown to admins, not retried)."""


# --------------------------------------------------------------------------------------------
# The wallet


class TradeState(StrEnum):
    """Where a wallet trade stands, in the adapter's words (each wallet maps its own statuses)."""

    CREATED = "created"  # created, waiting for the buyer
    PAID = "paid"  # the money was taken (a refund later does not undo that)
    CLOSED = "closed"  # closed unpaid, or refunded in full: the wallet takes no money for it
    NOT_FOUND = "not_found"  # the wallet has no trade with this out_trade_no


@dataclass(frozen=True)
class WalletUser:
    """A wallet user as the platform certifies them."""

    user_id: str  # the platform's id of the user
    is_certified: bool  # real-name certified by the platform
    name: str = ""
    document_type: str = ""  # mappings/document_types.csv code, from the platform's own code
    document_number: str = ""
    sex: str = ""  # F, M or "" (HL7 table 0001 codes)
    mobile: str = ""


@dataclass(frozen=True)
class WalletTrade:
    """A wallet trade as the platform reports it (queried, or closed)."""

    out_trade_no: str
    state: TradeState
    trade_no: str = ""
    total_fen: int = 0
    buyer_id: str = ""

    @property
    def paid(self) -> bool:
        """Only a paid trade means the money was taken."""
        return self.state is TradeState.PAID


@dataclass(frozen=True)
class CreatedTrade:
    """What a platform answers when it creates a trade: the reference its in-wallet payment
    call takes (``pay_reference``), and its own trade number when it gives one at creation
    ("" when it gives it only once paid: it then comes with the notification or the query)."""

    pay_reference: str
    trade_no: str = ""


@dataclass(frozen=True)
class RefundResult:
    """A refund as the platform reports it (requested, or queried)."""

    out_trade_no: str
    out_request_no: str
    refund_fen: int
    done: bool  # the money is on its way back to the buyer


@dataclass(frozen=True)
class PaymentNotice:
    """A wallet's asynchronous payment notification, verified and read by the wallet's module."""

    platform: str  # the wallet it came from (WalletGateway.platform)
    notice_id: str  # the platform's id of the notification, the same on every retry
    app_id: str  # the app it is for
    merchant_id: str  # the merchant account paid ("" when the platform does not say)
    out_trade_no: str
    trade_no: str
    state: TradeState
    total_fen: int
    buyer_id: str = ""
    paid_at: dt.datetime | None = None


class BillEntryKind(StrEnum):
    """What a line of a wallet's trade bill records."""

    PAYMENT = "payment"  # money taken for a trade
    REFUND = "refund"  # money given back (one refund request)


class WalletBillEntry(NamedTuple):
    """One payment or refund of the wallet's trade bill, in the adapter's words (a NamedTuple:
    immutable, and made 100,000 times for a big day at a third of a frozen dataclass's cost)."""

    kind: BillEntryKind
    out_trade_no: str
    trade_no: str
    amount_fen: int  # always positive: a refund's amount given back
    at: dt.datetime  # aware: when the payment or refund completed
    out_request_no: str = ""  # a refund's request number ("" for payments)


@dataclass(frozen=True)
class BillProblem:
    """A line of a bill or list that could not be read: where, and why (never its content,
    which may carry a buyer's account)."""

    line: int
    reason: str


class WalletBill:
    """A day's trade bill as it is read: ``entries()`` yields the entries one by one (a bill
    of 100,000 lines is never held as objects at once); ``problems`` fills as lines that
    cannot be read are met, and ``totals`` (the bill's own closing sums, when it has them:
    payment count, payment fen, refund count, refund fen) once they are read."""

    MAX_PROBLEMS_KEPT = 1000  # past this, problems are counted, not listed

    def __init__(self, day: dt.date, entries: Iterator[WalletBillEntry]) -> None:
        self.day = day
        self._entries = entries
        self.problems: list[BillProblem] = []
        self.problem_count = 0
        self.totals: tuple[int, int, int, int] | None = None

    def entries(self) -> Iterator[WalletBillEntry]:
        """The entries, once (the bill is streamed)."""
        return self._entries

    def report(self, line: int, reason: str) -> None:
        """A line that could not be read (kept up to MAX_PROBLEMS_KEPT, always counted)."""
        self.problem_count += 1
        if len(self.problems) < self.MAX_PROBLEMS_KEPT:
            self.problems.append(BillProblem(line, reason))


class NotificationAnswer(NamedTuple):
    """The HTTP answer a platform expects to a notification."""

    body: str
    status: int
    mimetype: str = "text/plain"


class WalletUnavailable(Exception):
    """The platform did not answer, or answered that it does not know: the outcome is unknown;
    query before acting."""


class WalletUnreachable(WalletUnavailable):
    """The request never left (no connection could be made): nothing happened at the platform."""


class WalletRefused(Exception):
    """The platform answered and refused (code / sub_code as the platform documents them).

    ``nothing_created`` is set by a trade creation whose refusal proves that no trade exists
    under the out_trade_no (safe default: False, the trade may exist).
    """

    def __init__(self, code: str, sub_code: str = "", message: str = "", *,
                 nothing_created: bool = False) -> None:
        super().__init__(f"{code} {sub_code} {message}".strip())
        self.code = code
        self.sub_code = sub_code
        self.message = message
        self.nothing_created = nothing_created


class InvalidNotification(Exception):
    """A request that is not a notification the platform can stand by; ``reason`` says what
    failed, ``signed`` whether the platform's signature verified all the same (a signed notice
    is kept whole; anyone can send an unsigned one, so its body is not)."""

    def __init__(self, reason: str, *, signed: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.signed = signed


class WalletGateway(Protocol):
    """What the adapter needs from a wallet platform."""

    platform: str  # its name in /notify/<platform> and in the platform column of rows
    app_id: str  # our app at the platform; a notification for another app is refused
    merchant_id: str  # our merchant account; "" leaves it unchecked
    browser_marker: str  # what its in-app browser puts in the User-Agent ("": none known)

    def display_name(self, locale: str) -> str:
        """The wallet's name as patients know it, in their language (zh-CN or en)."""
        ...

    def sign_in_url(self, redirect_uri: str, state: str) -> str:
        """The platform's page where the user lets us read their identity; it comes back to
        redirect_uri with a one-time auth code and the given OAuth state."""
        ...

    def exchange_auth_code(self, auth_code: str) -> WalletUser:
        """The certified user behind a one-time auth code."""
        ...

    def create_trade(
        self, out_trade_no: str, total_fen: int, subject: str, buyer_id: str,
        expire_at: dt.datetime,
    ) -> CreatedTrade:
        """Create the trade the buyer pays inside the wallet: what paying it takes, and the
        platform's trade_no when it is known before payment. The same out_trade_no again never
        makes a second trade."""
        ...

    def pay_parameters(self, out_trade_no: str, pay_reference: str,
                       return_url: str) -> dict[str, str]:
        """What the patient page needs to pay the trade (its CreatedTrade.pay_reference): a
        ``cashier_url`` (coming back to return_url) when the platform pays on a page of its
        own, else what its in-wallet payment call takes."""
        ...

    def query_trade(self, out_trade_no: str) -> WalletTrade:
        """The trade as the platform has it (NOT_FOUND when it has none)."""
        ...

    def close_trade(self, out_trade_no: str) -> WalletTrade:
        """Close an unpaid trade; when it was paid meanwhile, says so instead of closing."""
        ...

    def refund(
        self, out_trade_no: str, refund_fen: int, out_request_no: str, reason: str
    ) -> RefundResult:
        """Refund (part of) a paid trade; the same out_request_no on retry never refunds twice."""
        ...

    def query_refund(self, out_trade_no: str, out_request_no: str) -> RefundResult:
        """A refund as the platform has it (refund_fen 0: not made)."""
        ...

    def push_message(self, user_id: str, text: str, url: str = "") -> None:
        """A message to the user inside the wallet, opening url when tapped."""
        ...

    def download_bill(self, bill_date: dt.date) -> bytes:
        """The day's trade bill as the platform ships it."""
        ...

    def download_trade_bill(self, bill_date: dt.date) -> WalletBill:
        """The day's trade bill read into entries (payments and refunds); a line that cannot
        be read is a problem of the bill, never an exception. Raises WalletUnavailable, or
        WalletRefused when the platform has no bill for the day (yet)."""
        ...

    def read_notification(self, raw: bytes, headers: Mapping[str, str]) -> PaymentNotice:
        """Decode a notification's raw body, verify it with the platform's key (over the body,
        or the body and signature headers, as the platform signs) and read it; ``headers``
        are the request's, looked up case-insensitively. Raises InvalidNotification."""
        ...

    def notification_answer(self, outcome: str) -> NotificationAnswer:
        """The answer the platform expects for outcome success, refused or error; only the
        answer to success stops its retries."""
        ...
