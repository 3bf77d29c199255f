"""The HIS's settlement list of a day as the adapter asks for it: QBP^Q13 -> RTB^K13 (HL7 v2.5
chapter 5, query by parameter with a tabular response), for daily reconciliation.

The query is site-defined (QPD-1 ``ZSL``, docs/hl7-profile.md); the answer's RDF names its
columns and each RDT is one settlement. Columns are read by their RDF names, so a HIS may add or
reorder columns. A row that cannot be read is a problem of the list (its row number and the
reason), never an exception. The HIS's side of these messages is
adapter.his.simulator.settlement_wire.
"""

from __future__ import annotations

import datetime as dt

from adapter.his.codes import ACCEPT_ACK_CODES
from adapter.his.header import escape
from adapter.his.profile import Hl7Profile
from adapter.his.segments import (
    MessageError,
    Seg,
    build_message,
    get,
    has,
    one,
    outcome_error,
    parse_dtm,
    parse_message,
    repetition_count,
)
from adapter.money import fen
from adapter.ports import (
    BillProblem,
    HisSettlement,
    SettlementChannel,
    SettlementKind,
    SettlementList,
)

# QPD-1: a site-defined query (Z...), coding system L (local, HL7 table 0396).
SETTLEMENT_QUERY = "ZSL^Daily settlement list^L"
# The columns (RDF-2) the adapter reads, with their HL7 data types and widths.
COLUMNS = (
    ("RECEIPT_NO", "ST", 40),
    ("KIND", "ID", 2),
    ("CHANNEL", "ID", 10),
    ("AMOUNT", "NM", 12),
    ("SETTLED_AT", "DTM", 19),
    ("OUT_TRADE_NO", "ST", 64),
    ("PLACER_ID", "ST", 64),
)
KIND_CODES = {"PY": SettlementKind.PAYMENT, "RF": SettlementKind.REFUND}
CHANNEL_CODES = {"WALLET": SettlementChannel.WALLET, "WINDOW": SettlementChannel.WINDOW}
MAX_ROWS = 1_000_000


def build_qbp_q13(profile: Hl7Profile, control_id: str, now: dt.datetime, *, query_tag: str,
                  day: dt.date) -> str:
    """Ask the HIS for its settlements of one day (QPD-3, in the hospital's zone)."""
    return build_message(profile, "QBP^Q13^QBP_Q13", control_id, now, [
        Seg("QPD", {1: SETTLEMENT_QUERY, 2: escape(query_tag), 3: f"{day:%Y%m%d}"}),
        Seg("RCP", {1: "I"}),  # I immediate (table 0091)
    ])


def parse_rtb_k13(text: str, day: dt.date, tz: dt.tzinfo) -> SettlementList:
    """The settlements of an RTB^K13 (none for NF); MessageError when the HIS refused."""
    message = parse_message(text, ("RTB^K13", "ACK^Q13"))  # ACK: refused before answering
    if get(one(message, "MSA"), 1) not in ACCEPT_ACK_CODES:
        hl7_code, app_code, err_text = outcome_error(message)
        raise MessageError(hl7_code, err_text or app_code or "query refused")
    if get(one(message, "QAK"), 2) == "NF" or not has(message, "RDF"):
        return SettlementList(day, ())
    rdf = one(message, "RDF")
    names = [get(rdf, 2, rep) for rep in range(1, repetition_count(rdf, 2) + 1)]
    positions = {name.upper(): index + 1 for index, name in enumerate(names)}
    missing = [name for name, _type, _width in COLUMNS[:5] if name not in positions]
    if missing:
        raise MessageError("101", f"RDF lacks the column(s) {', '.join(missing)}")
    entries: list[HisSettlement] = []
    problems: list[BillProblem] = []
    rows = message.segments("RDT") if has(message, "RDT") else []
    for number, rdt in enumerate(rows[:MAX_ROWS], start=1):
        try:
            entries.append(_row(rdt, positions, tz))
        except (MessageError, ValueError) as exc:
            problems.append(BillProblem(number, exc.text if isinstance(exc, MessageError)
                                        else "bad AMOUNT"))
    if len(rows) > MAX_ROWS:
        problems.append(BillProblem(MAX_ROWS + 1, f"more than {MAX_ROWS} rows: the rest not read"))
    return SettlementList(day, tuple(entries), tuple(problems))


def _row(rdt: object, positions: dict[str, int], tz: dt.tzinfo) -> HisSettlement:
    def cell(name: str) -> str:
        index = positions.get(name)
        return get(rdt, index) if index is not None else ""  # type: ignore[arg-type]

    receipt = cell("RECEIPT_NO")
    if not receipt or len(receipt) > 40:
        raise MessageError("101", "bad RECEIPT_NO")
    kind = KIND_CODES.get(cell("KIND").upper())
    if kind is None:
        raise MessageError("103", "unknown KIND")
    channel = CHANNEL_CODES.get(cell("CHANNEL").upper())
    if channel is None:
        raise MessageError("103", "unknown CHANNEL")
    amount_fen = fen(cell("AMOUNT"))
    if amount_fen <= 0:
        raise MessageError("102", "AMOUNT must be positive")
    at = parse_dtm(cell("SETTLED_AT"), "SETTLED_AT", tz)
    out_trade_no, placer_id = cell("OUT_TRADE_NO"), cell("PLACER_ID")
    if len(out_trade_no) > 64 or len(placer_id) > 64:
        raise MessageError("102", "OUT_TRADE_NO or PLACER_ID too long")
    if channel is SettlementChannel.WALLET and not (out_trade_no or placer_id):
        raise MessageError("101", "a wallet settlement without OUT_TRADE_NO or PLACER_ID")
    return HisSettlement(receipt, kind, channel, amount_fen, at, out_trade_no, placer_id)
