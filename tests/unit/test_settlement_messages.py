"""The settlement list query (QBP^Q13) and its tabular answer (RTB^K13), both sides, on text."""

from __future__ import annotations

import datetime as dt

import pytest

from adapter.config import load_config
from adapter.his.header import decode_message
from adapter.his.profile import Hl7Profile
from adapter.his.segments import MessageError
from adapter.his.settlement import build_qbp_q13, parse_rtb_k13
from adapter.his.simulator.settlement_wire import build_rtb_k13, parse_qbp_q13
from adapter.ports import HisSettlement, SettlementChannel, SettlementKind

TZ = load_config({}).tz
DAY = dt.date(2026, 12, 2)
AT = dt.datetime(2026, 12, 2, 9, 30, tzinfo=TZ)
PROFILE = Hl7Profile()


def _answer(settlements, tamper=None) -> str:
    query = build_qbp_q13(PROFILE, "C1", AT, query_tag="C1", day=DAY)
    tag, day = parse_qbp_q13(query)
    assert (tag, day) == ("C1", DAY)
    _text, header = decode_message(query.encode())
    text = build_rtb_k13(PROFILE, "H1", AT, request=header, query_tag=tag, day=day,
                         settlements=settlements, tz=TZ)
    return tamper(text) if tamper else text


def test_settlements_travel_with_their_money_in_fen_and_their_channel():
    sent = [
        HisSettlement("S1", SettlementKind.PAYMENT, SettlementChannel.WALLET, 2500, AT,
                      placer_id="BK1"),
        HisSettlement("T2", SettlementKind.REFUND, SettlementChannel.WINDOW, 1, AT,
                      out_trade_no="RBK1", placer_id="BK|1^x"),
    ]
    got = parse_rtb_k13(_answer(sent), DAY, TZ)
    assert got.entries == tuple(sent) and got.problems == ()


def test_an_empty_day_is_no_settlements():
    assert parse_rtb_k13(_answer([]), DAY, TZ).entries == ()


def test_an_unreadable_row_is_a_problem_with_its_number_and_the_others_are_read():
    good = HisSettlement("S1", SettlementKind.PAYMENT, SettlementChannel.WALLET, 2500, AT,
                         placer_id="BK1")
    rows = [good, good, good, good, good, good]

    def tamper(text: str) -> str:
        lines = text.split("\r")
        rdt = [i for i, line in enumerate(lines) if line.startswith("RDT")]
        lines[rdt[1]] = lines[rdt[1]].replace("|25.00|", "|25|")
        lines[rdt[2]] = lines[rdt[2]].replace("|PY|", "|XX|")
        lines[rdt[3]] = lines[rdt[3]].replace("|WALLET|", "|CARD|")
        lines[rdt[4]] = lines[rdt[4]].replace("|20261202", "|2026-12-02")
        lines[rdt[5]] = lines[rdt[5]].replace("|BK1", "|")
        return "\r".join(lines)

    got = parse_rtb_k13(_answer(rows, tamper), DAY, TZ)
    assert got.entries == (good,)
    assert [(p.line, p.reason) for p in got.problems] == [
        (2, "bad AMOUNT"), (3, "unknown KIND"), (4, "unknown CHANNEL"),
        (5, "SETTLED_AT is not an HL7 date/time with minutes"),
        (6, "a wallet settlement without OUT_TRADE_NO or PLACER_ID")]


def test_a_refusal_is_a_message_error():
    text = _answer([]).replace("MSA|AA|", "MSA|AE|")
    with pytest.raises(MessageError):
        parse_rtb_k13(text, DAY, TZ)
