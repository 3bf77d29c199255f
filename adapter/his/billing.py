"""Fee payment as the adapter speaks it to the HIS (the hospital's billing profile).

HL7 v2.5 has no pre-settlement or settlement-status transaction, so this profile uses Z trigger
events of the standard query messages (QBP/RSP, v2.5 section 5.3; site-specific events, section
2.7.1) over standard segments (QPD, QAK, PID, PV1, FT1) and two Z segments (ZRC receipt, ZSL
settlement list line). Charges and refunds the HIS starts arrive as DFT^P03 (chapter 6.4.3) on
the listener. docs/hl7-profile.md ("Fee payment") gives every field; the HIS's side is
adapter.his.simulator.cashier_wire.

Out: QBP^ZB1 unpaid charges, ZB2 pre-settle (lock), ZB3 commit, ZB4 status, ZB5 release,
ZB6 settlement list of a day. In: their RSP^ZBn, and DFT^P03 (FT1-6 CG charges, CD refunds).
"""

from __future__ import annotations

import datetime as dt
import re

import hl7

from adapter.his.codes import (
    ACCEPT_ACK_CODES,
    DATA_TYPE_ERROR,
    TABLE_VALUE_NOT_FOUND,
)
from adapter.his.header import escape
from adapter.his.profile import Hl7Profile
from adapter.his.segments import (
    MessageError,
    Seg,
    build_segments,
    control_id_of,
    dtm,
    get,
    has,
    one,
    outcome_error,
    parse_dtm,
    parse_message,
    repetition_count,
    required,
)
from adapter.ports_billing import (
    ChargeLine,
    ChargesReported,
    HisRefundLine,
    PreSettled,
    Receipt,
    RefundsRequested,
    SettlementAtHis,
    SettlementKind,
    SettlementRecord,
    SettlementState,
)

QUERIES = {
    "ZB1": "Unpaid charges",
    "ZB2": "Pre-settle",
    "ZB3": "Commit settlement",
    "ZB4": "Settlement status",
    "ZB5": "Release settlement",
    "ZB6": "Settlement list",
}
CODING = "99HIS"  # the HIS's local coding system (v2.5 table 0396: 99zzz local)
CHARGE, CREDIT, PAYMENT, REFUND = "CG", "CD", "PY", "RF"  # FT1-6 (table 0017), ZSL-6
DFT_P03 = "DFT^P03"

# Money as written in FT1-11/12 (CP: the MO quantity, "25.00&CNY") and ZSL-5: yuan with at
# most two decimals. Read to fen with integer arithmetic (DESIGN invariant 2): never a float.
_YUAN = re.compile(r"^([0-9]{1,9})(?:\.([0-9]{1,2}))?$")  # ASCII digits only


def to_fen(value: str, where: str) -> int:
    """Yuan text (``25``, ``25.5``, ``25.00``) to fen; MessageError 102 otherwise."""
    match = _YUAN.match(value.strip())
    if not match:
        raise MessageError(DATA_TYPE_ERROR, f"{where} is not an amount in yuan")
    return int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))


def yuan_text(fen: int) -> str:
    """Fen to the yuan text written in messages."""
    return f"{fen // 100}.{fen % 100:02d}"


def money(fen: int) -> str:
    """CP/MO of an amount in yuan (FT1-11, FT1-12)."""
    return f"{yuan_text(fen)}&CNY"


# --------------------------------------------------------------------------------------------
# Queries out


def build_query(profile: Hl7Profile, control_id: str, now: dt.datetime, event: str,
                params: list[tuple[str, str]]) -> str:
    """QBP^<event>^QBP_Q11 with QPD-3 ``@ZB.<NAME>^value`` pairs (one repetition each)."""
    qpd = Seg("QPD", {1: f"{event}^{QUERIES[event]}^{CODING}", 2: escape(control_id),
                      3: [f"@ZB.{name}^{escape(value)}" for name, value in params]})
    return build_segments(profile, f"QBP^{event}^QBP_Q11", control_id, now,
                          [qpd, Seg("RCP", {1: "I"})])


def query_params(message: hl7.Message) -> list[tuple[str, str]]:
    """The QPD-3 parameters of a query, in order (a name may repeat: @ZB.CHARGE)."""
    qpd = one(message, "QPD")
    out = []
    for rep in range(1, repetition_count(qpd, 3) + 1):
        name = get(qpd, 3, rep, 1)
        if name.startswith("@ZB."):
            out.append((name[4:], get(qpd, 3, rep, 2)))
    return out


# --------------------------------------------------------------------------------------------
# Answers and DFT^P03 in


def _accepted(text: str, event: str) -> hl7.Message:
    """The RSP of ``event``, or MessageError carrying the HIS's refusal (ERR-5 code)."""
    message = parse_message(text, (f"RSP^{event}", f"ACK^{event}", "ACK^"))
    if get(one(message, "MSA"), 1) not in ACCEPT_ACK_CODES:
        hl7_code, app_code, err_text = outcome_error(message)
        error = MessageError(hl7_code, err_text or app_code or "refused")
        error.app_code = app_code  # type: ignore[attr-defined]
        error.parameter = _err_parameter(message)  # type: ignore[attr-defined]
        raise error
    return message


def _err_parameter(message: hl7.Message) -> str:
    """ERR-6, the application error parameter (the charge a refusal is about)."""
    for err in message.segments("ERR") if has(message, "ERR") else []:
        return get(err, 6)
    return ""


def _charge(ft1: hl7.Segment, his_patient_id: str, visit: str, tz: dt.tzinfo) -> ChargeLine:
    ordered = get(ft1, 4)
    return ChargeLine(
        his_charge_id=required(get(ft1, 2), "FT1-2 transaction id"),
        his_patient_id=his_patient_id, visit_number=visit,
        item_code=required(get(ft1, 7), "FT1-7 transaction code"),
        item_name=get(ft1, 7, 1, 2) or get(ft1, 8),
        quantity=_quantity(get(ft1, 10) or "1"),
        unit_price_fen=to_fen(get(ft1, 12) or get(ft1, 11), "FT1-12"),
        amount_fen=to_fen(required(get(ft1, 11), "FT1-11 extended amount"), "FT1-11"),
        department_code=get(ft1, 13),
        group_code=get(ft1, 3),
        ordered_at=parse_dtm(ordered, "FT1-4", tz) if ordered else None,
    )


def _quantity(value: str) -> str:
    if not re.fullmatch(r"[0-9]{1,7}(\.[0-9]{1,4})?", value):
        raise MessageError(DATA_TYPE_ERROR, "FT1-10 is not a quantity")
    return value


def _lines(message: hl7.Message) -> list[tuple[str, hl7.Segment]]:
    """The FT1 segments, each with the visit number (PV1-19) of the PV1 before it."""
    visit, out = "", []
    for segment in message:
        name = str(segment[0])
        if name == "PV1":
            visit = get(segment, 19)
        elif name == "FT1":
            out.append((visit, segment))
    return out


def parse_charges(text: str, tz: dt.tzinfo, his_patient_id: str = "") -> list[ChargeLine]:
    """The unpaid charges of an RSP^ZB1 (CG lines; PID-3 names the patient)."""
    message = _accepted(text, "ZB1")
    if has(message, "PID"):
        his_patient_id = get(message.segment("PID"), 3) or his_patient_id
    return [_charge(ft1, his_patient_id, visit, tz) for visit, ft1 in _lines(message)
            if get(ft1, 6) in ("", CHARGE)]


def parse_dft_p03(text: str, tz: dt.tzinfo) -> ChargesReported | RefundsRequested:
    """A DFT^P03 from the HIS: its charges (FT1-6 CG), or its refunds (FT1-6 CD); one kind
    per message."""
    message = parse_message(text, (DFT_P03,))
    lines = _lines(message)
    kinds = {get(ft1, 6) or CHARGE for _v, ft1 in lines}
    if not lines or not kinds <= {CHARGE, CREDIT} or len(kinds) != 1:
        raise MessageError(TABLE_VALUE_NOT_FOUND,
                           "FT1-6 must be CG (charges) or CD (refunds), one kind per message")
    if kinds == {CREDIT}:
        return RefundsRequested(control_id_of(message), tuple(
            HisRefundLine(required(get(ft1, 2), "FT1-2 refund id"),
                          required(get(ft1, 3), "FT1-3 receipt number"), get(ft1, 23),
                          to_fen(required(get(ft1, 11), "FT1-11 amount"), "FT1-11"))
            for _v, ft1 in lines))
    his_patient_id = required(get(one(message, "PID"), 3), "PID-3 HIS patient id")
    return ChargesReported(control_id_of(message), his_patient_id, tuple(
        _charge(ft1, his_patient_id, visit, tz) for visit, ft1 in lines))


def parse_presettled(text: str, settlement_no: str) -> PreSettled:
    """The locked lines of an RSP^ZB2 and their total."""
    message = _accepted(text, "ZB2")
    amounts = {required(get(ft1, 2), "FT1-2"): to_fen(required(get(ft1, 11), "FT1-11"),
                                                     "FT1-11")
               for _v, ft1 in _lines(message)}
    return PreSettled(settlement_no, amounts, sum(amounts.values()))


def _receipt(zrc: hl7.Segment) -> Receipt:
    return Receipt(required(get(zrc, 1), "ZRC-1 receipt number"), get(zrc, 2), get(zrc, 3),
                   get(zrc, 4))


def parse_receipt(text: str) -> Receipt:
    """The receipt of an RSP^ZB3 (ZRC)."""
    return _receipt(one(_accepted(text, "ZB3"), "ZRC"))


def parse_status(text: str) -> SettlementAtHis:
    """An RSP^ZB4: NF not found; OK with ZRC committed; OK without it locked."""
    message = _accepted(text, "ZB4")
    if get(one(message, "QAK"), 2) == "NF":
        return SettlementAtHis(SettlementState.NOT_FOUND)
    if has(message, "ZRC"):
        return SettlementAtHis(SettlementState.COMMITTED, _receipt(message.segment("ZRC")))
    return SettlementAtHis(SettlementState.LOCKED)


def parse_released(text: str) -> None:
    """An RSP^ZB5 (OK or NF: either way no lock is held)."""
    _accepted(text, "ZB5")


def parse_settlement_list(text: str, tz: dt.tzinfo) -> list[SettlementRecord]:
    """The ZSL lines of an RSP^ZB6."""
    message = _accepted(text, "ZB6")
    out = []
    for zsl in message.segments("ZSL") if has(message, "ZSL") else []:
        kind = get(zsl, 6)
        if kind not in (PAYMENT, REFUND):
            raise MessageError(TABLE_VALUE_NOT_FOUND, "ZSL-6 must be PY or RF")
        out.append(SettlementRecord(
            receipt_no=required(get(zsl, 2), "ZSL-2 receipt number"),
            settlement_no=get(zsl, 3), out_trade_no=get(zsl, 4),
            amount_fen=to_fen(required(get(zsl, 5), "ZSL-5 amount"), "ZSL-5"),
            kind=SettlementKind.PAYMENT if kind == PAYMENT else SettlementKind.REFUND,
            at=parse_dtm(required(get(zsl, 7), "ZSL-7 time"), "ZSL-7", tz),
            channel=(get(zsl, 8) or "WALLET").lower(), refund_no=get(zsl, 9)))
    return out


def day_param(day: dt.date) -> str:
    """@ZB.DATE of the settlement list (the day in the hospital's zone)."""
    return day.strftime("%Y%m%d")


def time_param(moment: dt.datetime) -> str:
    """A time parameter (@ZB.LOCK_UNTIL, @ZB.PAID_AT)."""
    return dtm(moment)
