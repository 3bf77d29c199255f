"""The simulated HIS's cash desk (收费处): charges after a consultation, pre-settlement locks,
commits with receipts and e-invoices, status queries, the window's own payments (which can
race the wallet: a knob), refunds of cancelled tests, and the day's settlement list.

Its state lives under the simulator's lock (HisSimulator.handle); answers are built by
cashier_wire. Knobs, changeable while it runs: ``window_races`` (the window takes a charge the
wallet has locked, as a HIS that does not honour its own locks would), ``refuse_commit_with``
(an ERR-5 code for every commit), ``lose_commit_answers`` (the next commits are made and their
answers lost on the wire; HisSimulator drops the connection).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from adapter.his.billing import to_fen
from adapter.his.codes import REQUIRED_FIELD_MISSING
from adapter.his.header import Header
from adapter.his.profile import Hl7Profile
from adapter.his.segments import MessageError, parse_dtm
from adapter.his.simulator import cashier_wire as wire
from adapter.mappings import Mappings
from adapter.ports import SettlementKind
from adapter.ports_billing import ChargeLine, Receipt, SettlementRecord

# ERR-5 reasons (adapter.billing.paying names the same codes).
CHARGE_PAID, CHARGE_CHANGED, CHARGE_UNKNOWN, CHARGE_LOCKED = (
    "CHARGE_PAID", "CHARGE_CHANGED", "CHARGE_UNKNOWN", "CHARGE_LOCKED")
NOT_LOCKED, AMOUNT_MISMATCH, REFUND_TOO_LARGE = "NOT_LOCKED", "AMOUNT_MISMATCH", "REFUND_TOO_LARGE"

# What a consultation orders, by the department: (fee item, quantity, group).
ORDERS = {
    "PED": (("LAB_CBC", "1", "LAB"), ("LAB_CRP", "1", "LAB")),
}
DEFAULT_ORDERS = (("LAB_CBC", "1", "LAB"), ("EXAM_CXR", "1", "EXAM"))


@dataclass
class HisSettlement:
    """A settlement the HIS holds: locked, then committed with a receipt."""

    settlement_no: str
    his_patient_id: str
    charge_ids: tuple[str, ...]
    lock_until: dt.datetime
    amounts: dict[str, int]
    receipt: Receipt | None = None
    posted_at: dt.datetime | None = None
    out_trade_no: str = ""
    refunded_fen: int = 0
    released: bool = False


@dataclass
class Cashier:
    """The cash desk's state and business (called under the simulator's lock)."""

    mappings: Mappings
    tz: dt.tzinfo
    profile: Hl7Profile
    clock: Callable[[], dt.datetime]
    window_races: bool = False
    refuse_commit_with: str = ""
    lose_commit_answers: int = 0
    charges: dict[str, ChargeLine] = field(default_factory=dict)
    paid: dict[str, str] = field(default_factory=dict)  # charge id -> receipt no
    settlements: dict[str, HisSettlement] = field(default_factory=dict)
    records: list[SettlementRecord] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    # -- the HIS's own side ------------------------------------------------------------

    def issue_charges(self, his_patient_id: str, visit_number: str, department_code: str,
                      orders: tuple[tuple[str, str, str], ...] = ()) -> list[ChargeLine]:
        """The doctor's orders after a consultation: one unpaid charge per fee item."""
        lines = []
        for code, quantity, group in orders or ORDERS.get(department_code, DEFAULT_ORDERS):
            item = self.mappings.fee_items[code]
            units = int(quantity) if quantity.isdigit() else 1
            line = ChargeLine(f"CH{next(self._ids):08d}", his_patient_id, visit_number, code,
                              item.name_zh, quantity, item.amount_fen,
                              item.amount_fen * units, department_code,
                              f"{visit_number}-{group}", self.clock())
            self.charges[line.his_charge_id] = line
            lines.append(line)
        return lines

    def change_amount(self, charge_id: str, amount_fen: int) -> None:
        """The doctor changed an order: the charge's amount is new."""
        line = self.charges[charge_id]
        self.charges[charge_id] = ChargeLine(**{**line.__dict__, "amount_fen": amount_fen})

    def pay_at_window(self, charge_ids: list[str]) -> str:
        """The patient pays at the window (locks are honoured unless ``window_races``)."""
        for charge_id in charge_ids:
            if charge_id in self.paid or (self._locked_by(charge_id) and not self.window_races):
                raise ValueError(f"{charge_id} is paid or locked")
        receipt = self._receipt()
        total = sum(self.charges[c].amount_fen for c in charge_ids)
        for charge_id in charge_ids:
            self.paid[charge_id] = receipt.receipt_no
        self.records.append(SettlementRecord(receipt.receipt_no, "", "", total,
                                             SettlementKind.PAYMENT, self.clock(), "window"))
        return receipt.receipt_no

    def cancel_test(self, receipt_no: str, charge_id: str = "",
                    amount_fen: int | None = None) -> tuple[str, str, str, int]:
        """A paid test is cancelled: the HIS refunds it (in full, or ``amount_fen``); returns the
        refund line for the DFT^P03 the HIS sends (refund id, receipt, charge, fen)."""
        settlement = next(s for s in self.settlements.values()
                          if s.receipt and s.receipt.receipt_no == receipt_no)
        fen = amount_fen if amount_fen is not None else (
            settlement.amounts[charge_id] if charge_id else sum(settlement.amounts.values()))
        if settlement.refunded_fen + fen > sum(settlement.amounts.values()):
            raise ValueError(REFUND_TOO_LARGE)
        settlement.refunded_fen += fen
        refund_id = f"RF{next(self._ids):08d}"
        self.records.append(SettlementRecord(receipt_no, settlement.settlement_no,
                                             settlement.out_trade_no, fen,
                                             SettlementKind.REFUND, self.clock(),
                                             refund_no=refund_id))
        return refund_id, receipt_no, charge_id, fen

    def settlement_list(self, day: dt.date) -> list[SettlementRecord]:
        """The day's payments and refunds (wallet and window), in the hospital's zone."""
        return [r for r in self.records if r.at.astimezone(self.tz).date() == day]

    # -- the wire ----------------------------------------------------------------------

    def _receipt(self) -> Receipt:
        n = next(self._ids)
        return Receipt(f"RC{n:08d}", f"EI{n:010d}", f"{(n * 7919) % 1000000:06d}",
                       f"https://einvoice.example.cn/v/EI{n:010d}")

    def _locked_by(self, charge_id: str) -> str:
        now = self.clock()
        for s in self.settlements.values():
            if charge_id in s.charge_ids and s.receipt is None and not s.released \
                    and s.lock_until > now:
                return s.settlement_no
        return ""

    def answer(self, text: str, header: Header, control_id: str) -> tuple[str, bool]:
        """Answer one billing query; (answer, lose it): a commit answer the knob loses."""
        event, tag, params = wire.read_query(text)
        now = self.clock()
        reply = lambda body, found=True: wire.answer(  # noqa: E731
            self.profile, control_id, now, header, event, tag, body, found=found)
        try:
            if event == "ZB1":
                patient = _one(params, "PATIENT")
                lines = [c for i, c in self.charges.items() if c.his_patient_id == patient
                         and i not in self.paid and not self._locked_by(i)]
                return reply(wire.charges_body(patient, lines), bool(lines)), False
            if event == "ZB2":
                return reply(self._pre_settle(params, now)), False
            if event == "ZB3":
                body = self._commit(params, now)
                lose = self.lose_commit_answers > 0
                self.lose_commit_answers -= int(lose)
                return reply(body), lose
            if event == "ZB6":
                day = dt.datetime.strptime(_one(params, "DATE"), "%Y%m%d").date()
                records = self.settlement_list(day)
                return reply([wire.zsl(n, r) for n, r in enumerate(records, 1)],
                             bool(records)), False
            settlement = self.settlements.get(_one(params, "SETTLEMENT"))
            if event == "ZB4":
                if settlement is None or (settlement.receipt is None and (
                        settlement.released or settlement.lock_until <= now)):
                    return reply([], False), False
                body = [wire.zrc(settlement.receipt, settlement.posted_at)] \
                    if settlement.receipt else []
                return reply(body), False
            if settlement is not None and settlement.receipt is None:  # ZB5
                settlement.released = True
            return reply([], settlement is not None), False
        except _Refused as refused:
            return wire.refusal(self.profile, control_id, now, header, event, tag,
                                refused.code, refused.text, refused.parameter), False

    def _pre_settle(self, params: dict[str, list[str]], now: dt.datetime) -> list:
        settlement_no, patient = _one(params, "SETTLEMENT"), _one(params, "PATIENT")
        charge_ids = tuple(params.get("CHARGE", ()))
        lock_until = parse_dtm(_one(params, "LOCK_UNTIL"), "@ZB.LOCK_UNTIL", self.tz)
        existing = self.settlements.get(settlement_no)
        if existing is not None and existing.receipt is None and existing.charge_ids == charge_ids:
            existing.lock_until, existing.released = lock_until, False  # a retry: same lock
        else:
            for charge_id in charge_ids:
                line = self.charges.get(charge_id)
                if line is None or line.his_patient_id != patient:
                    raise _Refused(CHARGE_UNKNOWN, "no such unpaid charge", charge_id)
                if charge_id in self.paid:
                    raise _Refused(CHARGE_PAID, "already paid", charge_id)
                holder = self._locked_by(charge_id)
                if holder and holder != settlement_no:
                    raise _Refused(CHARGE_LOCKED, "being paid elsewhere", charge_id)
            amounts = {c: self.charges[c].amount_fen for c in charge_ids}
            existing = HisSettlement(settlement_no, patient, charge_ids, lock_until, amounts)
            self.settlements[settlement_no] = existing
        return [wire.ft1(n, self.charges[c]) for n, c in enumerate(existing.charge_ids, 1)]

    def _commit(self, params: dict[str, list[str]], now: dt.datetime) -> list:
        settlement = self.settlements.get(_one(params, "SETTLEMENT"))
        if settlement is None:
            raise _Refused(NOT_LOCKED, "no such settlement")
        if settlement.receipt is None:  # a commit again after a lost answer: the same receipt
            if self.refuse_commit_with:
                raise _Refused(self.refuse_commit_with, "refused by the cash desk")
            if any(c in self.paid for c in settlement.charge_ids):
                raise _Refused(CHARGE_PAID, "paid at the window meanwhile")
            if settlement.released or settlement.lock_until <= now:
                raise _Refused(NOT_LOCKED, "the lock has expired")
            total = to_fen(_one(params, "TOTAL"), "@ZB.TOTAL")
            if total != sum(settlement.amounts.values()):
                raise _Refused(AMOUNT_MISMATCH, "total differs from the locked amount")
            settlement.receipt, settlement.posted_at = self._receipt(), now
            settlement.out_trade_no = _one(params, "OUT_TRADE_NO")
            for charge_id in settlement.charge_ids:
                self.paid[charge_id] = settlement.receipt.receipt_no
            self.records.append(SettlementRecord(
                settlement.receipt.receipt_no, settlement.settlement_no,
                settlement.out_trade_no, total, SettlementKind.PAYMENT, now))
        return [wire.zrc(settlement.receipt, settlement.posted_at)]


class _Refused(Exception):
    def __init__(self, code: str, text: str, parameter: str = "") -> None:
        super().__init__(code)
        self.code, self.text, self.parameter = code, text, parameter


def _one(params: dict[str, list[str]], *names: str) -> str:
    for name in names:
        if params.get(name):
            return params[name][0]
    raise MessageError(REQUIRED_FIELD_MISSING, f"QPD-3 @ZB.{names[0]} missing")
