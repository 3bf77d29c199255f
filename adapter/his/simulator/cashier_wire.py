"""The HIS's side of fee payment: the billing profile's queries read and answered, and the
DFT^P03 the HIS sends (charges after a consultation, refunds of cancelled tests).

The mirror of adapter.his.billing; docs/hl7-profile.md ("Fee payment") gives every field.
"""

from __future__ import annotations

import datetime as dt

from adapter.his.billing import CHARGE, CODING, CREDIT, DFT_P03, money, query_params, yuan_text
from adapter.his.codes import APPLICATION_INTERNAL_ERROR, ERROR_TEXTS, UNSUPPORTED_EVENT_CODE
from adapter.his.header import Header, escape
from adapter.his.profile import Hl7Profile
from adapter.his.segments import (
    MessageError,
    Seg,
    build_segments,
    dtm,
    get,
    one,
    parse_message,
)
from adapter.ports import SettlementKind
from adapter.ports_billing import ChargeLine, Receipt, SettlementRecord

EVENTS = ("ZB1", "ZB2", "ZB3", "ZB4", "ZB5", "ZB6")


def read_query(text: str) -> tuple[str, str, dict[str, list[str]]]:
    """(event, query tag, parameters by name: a list, @ZB.CHARGE repeats) of a QBP^ZBn."""
    message = parse_message(text, tuple(f"QBP^{e}" for e in EVENTS))
    event = get(message.segment("MSH"), 9, 1, 2)
    if get(one(message, "QPD"), 1) != event:
        raise MessageError(UNSUPPORTED_EVENT_CODE, "QPD-1 does not name the message's query")
    params: dict[str, list[str]] = {}
    for name, value in query_params(message):
        params.setdefault(name, []).append(value)
    return event, get(one(message, "QPD"), 2), params


def ft1(set_id: int, line: ChargeLine, kind: str = CHARGE) -> Seg:
    """An FT1 of a charge line."""
    fields: dict[int, str | list[str]] = {
        1: str(set_id), 2: escape(line.his_charge_id), 3: escape(line.group_code),
        4: dtm(line.ordered_at) if line.ordered_at else "", 6: kind,
        7: f"{escape(line.item_code)}^{escape(line.item_name)}^{CODING}",
        10: line.quantity, 11: money(line.amount_fen), 12: money(line.unit_price_fen),
        13: f"{escape(line.department_code)}^^{CODING}" if line.department_code else ""}
    return Seg("FT1", fields)


def _head(request: Header, event: str, tag: str, found: bool) -> list[Seg]:
    # MSA-2 echoes the request's MSH-10 (v2.5 section 2.9.2); QAK-1 the query tag.
    return [Seg("MSA", {1: "AA", 2: escape(request.control_id)}),
            Seg("QAK", {1: escape(tag), 2: "OK" if found else "NF"}),
            Seg("QPD", {1: f"{event}^^{CODING}", 2: escape(tag)})]


def answer(profile: Hl7Profile, control_id: str, now: dt.datetime, request: Header, event: str,
           tag: str, body: list[Seg], *, found: bool = True) -> str:
    """RSP^<event>^RSP_K11: MSA, QAK, QPD, then the event's segments."""
    return build_segments(profile, f"RSP^{event}^RSP_K11", control_id, now,
                          _head(request, event, tag, found) + body, to_his=False)


def refusal(profile: Hl7Profile, control_id: str, now: dt.datetime, request: Header, event: str,
            tag: str, code: str, text: str, parameter: str = "") -> str:
    """AE with ERR: ERR-3 207 and the HIS's own reason in ERR-5, the line it is about in ERR-6."""
    err: dict[int, str | list[str]] = {
        3: f"{APPLICATION_INTERNAL_ERROR}^{escape(ERROR_TEXTS[APPLICATION_INTERNAL_ERROR])}"
           "^HL70357", 4: "E", 5: f"{escape(code)}^{escape(text)}^{CODING}", 8: escape(text)}
    if parameter:
        err[6] = escape(parameter)
    body = [Seg("MSA", {1: "AE", 2: escape(request.control_id), 3: escape(text[:80])}),
            Seg("ERR", err), Seg("QAK", {1: escape(tag), 2: "AE"})]
    return build_segments(profile, f"RSP^{event}^RSP_K11", control_id, now, body, to_his=False)


def charges_body(his_patient_id: str, lines: list[ChargeLine]) -> list[Seg]:
    """PID, then per visit a PV1 (PV1-19) and its FT1 lines."""
    body = [Seg("PID", {1: "1", 3: escape(his_patient_id), 5: "^^^^^^U"})]
    visit = None
    for n, line in enumerate(lines, start=1):
        if line.visit_number != visit:
            visit = line.visit_number
            body.append(Seg("PV1", {1: "1", 2: "O", 19: escape(visit)}))
        body.append(ft1(n, line))
    return body


def zrc(receipt: Receipt, posted_at: dt.datetime) -> Seg:
    """ZRC|receipt no|e-invoice no|check code|invoice URL|posted at."""
    return Seg("ZRC", {1: escape(receipt.receipt_no), 2: escape(receipt.invoice_no),
                       3: escape(receipt.check_code), 4: escape(receipt.invoice_url),
                       5: dtm(posted_at)})


def zsl(set_id: int, record: SettlementRecord) -> Seg:
    """ZSL|set id|receipt no|settlement no|out_trade_no|amount|PY or RF|time|channel|refund no."""
    return Seg("ZSL", {1: str(set_id), 2: escape(record.receipt_no),
                       3: escape(record.settlement_no), 4: escape(record.out_trade_no),
                       5: yuan_text(record.amount_fen),
                       6: "PY" if record.kind is SettlementKind.PAYMENT else "RF",
                       7: dtm(record.at), 8: record.channel.upper(), 9: escape(record.refund_no)})


def build_dft_charges(profile: Hl7Profile, control_id: str, now: dt.datetime,
                      his_patient_id: str, lines: list[ChargeLine]) -> str:
    """DFT^P03 the HIS sends after a consultation: EVN, PID, PV1, FT1 (CG) per charge."""
    body = [Seg("EVN", {1: "P03", 2: dtm(now)}), *charges_body(his_patient_id, lines)]
    return build_segments(profile, f"{DFT_P03}^DFT_P03", control_id, now, body, to_his=False)


def build_dft_refunds(profile: Hl7Profile, control_id: str, now: dt.datetime,
                      his_patient_id: str,
                      refunds: list[tuple[str, str, str, int]]) -> str:
    """DFT^P03 with FT1-6 CD lines: (refund id, receipt no, charge id, amount fen) each."""
    body = [Seg("EVN", {1: "P03", 2: dtm(now)}),
            Seg("PID", {1: "1", 3: escape(his_patient_id), 5: "^^^^^^U"}),
            Seg("PV1", {1: "1", 2: "O"})]
    for n, (refund_id, receipt_no, charge_id, fen) in enumerate(refunds, start=1):
        body.append(Seg("FT1", {1: str(n), 2: escape(refund_id), 3: escape(receipt_no),
                                4: dtm(now), 6: CREDIT, 7: f"REFUND^^{CODING}",
                                11: money(fen), 23: escape(charge_id)}))
    return build_segments(profile, f"{DFT_P03}^DFT_P03", control_id, now, body, to_his=False)
