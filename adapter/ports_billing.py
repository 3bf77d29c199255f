"""The billing part of the ports: charges, pre-settlement, commit, status, settlement list.

Kept beside adapter/ports.py (same rules: neutral types, no HL7 or wallet words) so that file
stays one screenful per concern. adapter/his/ implements :class:`BillingHis` over HL7
(docs/hl7-profile.md, "Fee payment"); tests pass fakes. Amounts are integer fen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from adapter.ports import SettlementKind


@dataclass(frozen=True)
class ChargeLine:
    """One unpaid charge as the HIS lists it (an FT1 of type CG)."""

    his_charge_id: str  # FT1-2: the HIS's id of the line, stable across messages
    his_patient_id: str  # PID-3
    visit_number: str  # PV1-19 (or QPD): the visit it was ordered in
    item_code: str  # FT1-7.1 fee item
    item_name: str  # FT1-7.2
    quantity: str  # FT1-10, a decimal string (0.5 box is a quantity): never a float
    unit_price_fen: int  # FT1-12
    amount_fen: int  # FT1-11: what the HIS charges for the line
    department_code: str  # FT1-13: the ordering department
    group_code: str = ""  # FT1-3: lines of one group can be paid together; "" alone
    ordered_at: dt.datetime | None = None  # FT1-4


@dataclass(frozen=True)
class ChargesReported:
    """The HIS sent new or changed unpaid charges (DFT^P03, FT1-6 CG)."""

    control_id: str
    his_patient_id: str
    lines: tuple[ChargeLine, ...]


@dataclass(frozen=True)
class HisRefundLine:
    """The HIS cancelled (part of) a paid charge and asks for the money back (FT1-6 CD)."""

    his_refund_id: str  # FT1-2: unique at the HIS; a resend carries the same id
    receipt_no: str  # FT1-3: the receipt the refund is against
    his_charge_id: str  # FT1-23.1 filler order: the charge cancelled ("" for the receipt)
    amount_fen: int  # FT1-11: what to give back


@dataclass(frozen=True)
class RefundsRequested:
    """The HIS asks for refunds of paid charges (a cancelled test: DFT^P03 with CD lines)."""

    control_id: str
    lines: tuple[HisRefundLine, ...]


@dataclass(frozen=True)
class PreSettleRequest:
    """Lock a set of charges for one payment (the settlement no is ours, reused on retry)."""

    settlement_no: str
    his_patient_id: str
    his_charge_ids: tuple[str, ...]
    lock_until: dt.datetime


@dataclass(frozen=True)
class PreSettled:
    """The HIS locked the charges: its amount per line and the total (the HIS's, never ours)."""

    settlement_no: str
    amounts_fen: dict[str, int]  # his_charge_id -> amount
    total_fen: int


@dataclass(frozen=True)
class CommitRequest:
    """Post a paid settlement in the HIS; the split says who pays what (fen)."""

    settlement_no: str
    his_patient_id: str
    out_trade_no: str
    trade_no: str
    total_fen: int
    self_pay_fen: int
    insurance_fund_fen: int = 0
    personal_account_fen: int = 0
    paid_at: dt.datetime | None = None


@dataclass(frozen=True)
class Receipt:
    """What the HIS issued for a committed settlement."""

    receipt_no: str
    invoice_no: str = ""  # the electronic invoice (电子票据), where the HIS issues one
    check_code: str = ""
    invoice_url: str = ""


class SettlementState(StrEnum):
    """A settlement as the HIS has it (the answer to a status query)."""

    COMMITTED = "committed"  # posted: a receipt exists
    LOCKED = "locked"  # pre-settled, not committed
    NOT_FOUND = "not_found"  # not committed, no lock (released, expired or never made)


@dataclass(frozen=True)
class SettlementAtHis:
    """A status query's answer."""

    state: SettlementState
    receipt: Receipt | None = None


@dataclass(frozen=True)
class SettlementRecord:
    """One line of the HIS's settlement list for a day (what the reconciliation reads)."""

    receipt_no: str
    settlement_no: str  # ours ("" for what the window took)
    out_trade_no: str  # the wallet trade ("" at the window)
    amount_fen: int  # positive for payments and refunds alike
    kind: SettlementKind
    at: dt.datetime
    channel: str = "wallet"  # wallet | window
    refund_no: str = ""  # the HIS's refund id (refunds)
    extra: dict[str, str] = field(default_factory=dict)


class BillingHis(Protocol):
    """What fee payment needs from the HIS (the same gateway object as HisGateway)."""

    def query_charges(self, his_patient_id: str, visit_number: str = "") -> list[ChargeLine]:
        """The patient's unpaid charges (QBP^ZB1 -> RSP^ZB1)."""
        ...

    def pre_settle(self, request: PreSettleRequest) -> PreSettled:
        """Lock the charges and return the HIS's total (QBP^ZB2); HisRefused names why not."""
        ...

    def commit_settlement(self, request: CommitRequest) -> Receipt:
        """Post the payment (QBP^ZB3); HisRefused when refused for good."""
        ...

    def settlement_status(self, settlement_no: str) -> SettlementAtHis:
        """Whether a settlement was committed (QBP^ZB4): decides a commit whose answer was lost."""
        ...

    def release_settlement(self, settlement_no: str) -> None:
        """Release the lock of a settlement never paid (QBP^ZB5); unknown ones are fine."""
        ...

    def bill_settlement_list(self, day: dt.date) -> list[SettlementRecord]:
        """The HIS's settlements of a day in its zone (QBP^ZB6), payments and refunds."""
        ...
