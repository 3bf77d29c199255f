"""The HIS's side of the settlement list: QBP^Q13 in, RTB^K13 out.

The mirror of adapter.his.settlement. hl7apy's v2.5 RDT defines only its first field, while a
tabular response has one field per column (v2.5 section 5.5.4), so the message is validated
without its rows and the RDT segments are appended to the validated text.
"""

from __future__ import annotations

import datetime as dt

from adapter.his.codes import TABLE_VALUE_NOT_FOUND
from adapter.his.header import Header, escape
from adapter.his.profile import Hl7Profile
from adapter.his.segments import (
    Grp,
    MessageError,
    Seg,
    build_message,
    dtm,
    get,
    one,
    parse_date,
    parse_message,
)
from adapter.his.settlement import CHANNEL_CODES, COLUMNS, KIND_CODES, SETTLEMENT_QUERY
from adapter.money import yuan
from adapter.ports import HisSettlement

_KIND = {kind: code for code, kind in KIND_CODES.items()}
_CHANNEL = {channel: code for code, channel in CHANNEL_CODES.items()}


def parse_qbp_q13(text: str) -> tuple[str, dt.date]:
    """(query_tag, day) of a settlement list query."""
    message = parse_message(text, ("QBP^Q13",))
    qpd = one(message, "QPD")
    if get(qpd, 1) != SETTLEMENT_QUERY.split("^")[0]:
        raise MessageError(TABLE_VALUE_NOT_FOUND, "QPD-1 is not the ZSL settlement list query")
    return get(qpd, 2), parse_date(get(qpd, 3), "QPD-3")


def build_rtb_k13(profile: Hl7Profile, control_id: str, now: dt.datetime, *, request: Header,
                  query_tag: str, day: dt.date, settlements: list[HisSettlement],
                  tz: dt.tzinfo) -> str:
    """The HIS's settlements of the day: RDF naming the columns, one RDT per settlement."""
    rdf = Seg("RDF", {1: str(len(COLUMNS)),
                      2: [f"{name}^{kind}^{width}" for name, kind, width in COLUMNS]})
    text = build_message(profile, "RTB^K13^RTB_K13", control_id, now, [
        Seg("MSA", {1: "AA", 2: escape(request.control_id)}),
        Seg("QAK", {1: escape(query_tag), 2: "OK" if settlements else "NF",
                    3: SETTLEMENT_QUERY, 4: str(len(settlements))}),
        Seg("QPD", {1: SETTLEMENT_QUERY, 2: escape(query_tag), 3: f"{day:%Y%m%d}"}),
        Grp("RTB_K13_ROW_DEFINITION", [rdf]),
    ], to_his=False)
    rows = ["|".join(["RDT", escape(s.receipt_no), _KIND[s.kind], _CHANNEL[s.channel],
                      yuan(s.amount_fen), dtm(s.at.astimezone(tz)), escape(s.out_trade_no),
                      escape(s.placer_id)])
            for s in settlements]
    return "\r".join([text, *rows])
