"""The ports through which use cases reach the HIS (and, later, the wallet).

The use-case modules import only this module's types, never hl7apy or sockets: adapter/his/
implements :class:`HisGateway` over HL7 v2.5/MLLP and tests pass fakes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol


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


class InboundRefused(Exception):
    """A stored inbound message is refused for good: unreadable, or refused by its handler
    (shown to admins, not retried)."""


# --------------------------------------------------------------------------------------------
# The wallet


@dataclass(frozen=True)
class WalletUser:
    """A wallet user as the platform certifies them (alipay.user.info.share)."""

    user_id: str  # the platform's id of the user (Alipay user_id / open_id)
    is_certified: bool  # real-name certified by the platform
    name: str = ""
    document_type: str = ""  # mappings/document_types.csv code, from the platform's cert_type
    document_number: str = ""
    sex: str = ""  # F, M or "" (HL7 table 0001 codes)
    mobile: str = ""


@dataclass(frozen=True)
class TradeStatus:
    """A wallet trade as the platform reports it (alipay.trade.query / close)."""

    out_trade_no: str
    status: str  # WAIT_BUYER_PAY, TRADE_CLOSED, TRADE_SUCCESS, TRADE_FINISHED, NOT_FOUND
    trade_no: str = ""
    total_fen: int = 0
    buyer_id: str = ""

    @property
    def paid(self) -> bool:
        """Only TRADE_SUCCESS and TRADE_FINISHED mean the money was taken."""
        return self.status in ("TRADE_SUCCESS", "TRADE_FINISHED")


@dataclass(frozen=True)
class RefundResult:
    """A refund as the platform reports it (alipay.trade.refund / fastpay.refund.query)."""

    out_trade_no: str
    out_request_no: str
    refund_fen: int
    done: bool  # the money is on its way back (REFUND_SUCCESS / fund_change=Y)


class WalletUnavailable(Exception):
    """The platform did not answer or answered SYSTEM_ERROR: the outcome is unknown; query."""


class WalletRefused(Exception):
    """The platform answered and refused (code / sub_code as documented by the platform)."""

    def __init__(self, code: str, sub_code: str = "", message: str = "") -> None:
        super().__init__(f"{code} {sub_code} {message}".strip())
        self.code = code
        self.sub_code = sub_code
        self.message = message


class WalletGateway(Protocol):
    """What the adapter needs from the wallet platform."""

    def exchange_auth_code(self, auth_code: str) -> WalletUser:
        """alipay.system.oauth.token, then alipay.user.info.share."""
        ...

    def create_trade(
        self, out_trade_no: str, total_fen: int, subject: str, buyer_id: str,
        expire_at: dt.datetime,
    ) -> str:
        """alipay.trade.create (JSAPI_PAY); returns the platform's trade_no."""
        ...

    def query_trade(self, out_trade_no: str) -> TradeStatus:
        """alipay.trade.query."""
        ...

    def close_trade(self, out_trade_no: str) -> TradeStatus:
        """alipay.trade.close; when the trade was paid meanwhile, says so instead of closing."""
        ...

    def refund(
        self, out_trade_no: str, refund_fen: int, out_request_no: str, reason: str
    ) -> RefundResult:
        """alipay.trade.refund; the same out_request_no on retry never refunds twice."""
        ...

    def query_refund(self, out_trade_no: str, out_request_no: str) -> RefundResult:
        """alipay.trade.fastpay.refund.query."""
        ...

    def push_message(self, user_id: str, text: str, url: str = "") -> None:
        """A service-window message to the user (alipay.open.public.message.single.send)."""
        ...

    def download_bill(self, bill_date: dt.date) -> bytes:
        """The day's trade bill (alipay.data.dataservice.bill.downloadurl.query): csv.zip bytes."""
        ...


@dataclass(frozen=True)
class PaymentNotice:
    """A wallet's asynchronous payment notification whose signature has been verified."""

    notify_id: str
    app_id: str
    seller_id: str
    out_trade_no: str
    trade_no: str
    trade_status: str
    total_fen: int
    buyer_id: str = ""
    paid_at: dt.datetime | None = None
