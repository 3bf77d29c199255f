"""The API's answers about bills (GET /bills, GET /bills/{public_id}); requests and the shared
answer types are in adapter.web.api.schemas."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field

from adapter.web.api.schemas import Answer, BookingDepartment, BookingPatient


class Charge(Answer):
    """An unpaid charge from the HIS."""

    id: int
    item_code: str
    item_name: str
    kind: Annotated[str, Field(description="fee item kind: drug, laboratory, examination...")]
    quantity: Annotated[str, Field(description="a decimal number as text")]
    unit_price: Annotated[str, Field(description="yuan, two decimals")]
    amount: Annotated[str, Field(description="yuan, two decimals")]
    amount_fen: int
    department: BookingDepartment
    group_code: Annotated[str, Field(description=(
        "charges sharing a non-empty group code can be paid together; empty: alone"))]
    ordered_at: dt.datetime | None


class PatientBills(Answer):
    """One patient's unpaid charges."""

    patient: BookingPatient
    charges: list[Charge]


class Bills(Answer):
    """GET /bills: the unpaid charges of the account's own and verified dependants' records."""

    patients: list[PatientBills]
    current: Annotated[bool, Field(description="false: the HIS could not be asked just now")]


class BillLine(Answer):
    """A charge of a bill, at the amount the HIS locked it for."""

    charge_id: int
    item_name: str
    quantity: str
    amount: str


class BillReceipt(Answer):
    """What the HIS issued once it posted the payment."""

    receipt_no: str
    invoice_no: str
    check_code: str
    invoice_url: str


class NextStop(Answer):
    """Where to go next (mappings/next_stop.csv)."""

    kind: str
    place: str
    location: str


class Split(Answer):
    """Who pays what (yuan): cash now; the insurance parts present and zero."""

    self_pay: str
    insurance_fund: str
    personal_account: str


class Bill(Answer):
    """A bill paid or being paid, its receipt and next stops."""

    id: str
    status: Literal["pending_payment", "committing", "committed", "refunded", "expired"]
    status_text: str
    total: str
    split: Split
    refunded: str
    patient: BookingPatient
    lines: list[BillLine]
    receipt: BillReceipt | None
    next_stops: list[NextStop]
    lock_expires_at: dt.datetime


ANSWERS: tuple[type[Answer], ...] = (Bills, Bill)
