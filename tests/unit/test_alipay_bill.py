"""Reading Alipay's trade bill: the sandbox's bill (the real layout) round trip, and malformed
input reported line by line, never raised."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest

from adapter.ports import BillEntryKind, WalletUnavailable
from adapter.wallet.alipay.bill import MAX_LINE_CHARS, read_trade_bill
from adapter.wallet.alipay.signing import generate_key_pair
from adapter.wallet.sandbox import SandboxState
from adapter.wallet.sandbox.bill import COLUMNS, END_RULE, RULE, bill_zip

DAY = dt.date(2026, 12, 2)
HEAD = ["#支付宝业务明细查询", "#账号：[20880000000000010156]",
        "#起始日期：[2026年12月02日 00:00:00]   终止日期：[2026年12月03日 00:00:00]", RULE, COLUMNS]


def _row(trade_no="2026120222001000000000000001", out="RB1", kind="交易",
         finished="2026-12-02 10:00:00", amount="25.00", request_no="") -> str:
    return ",".join([
        f"{trade_no}\t", f"{out}\t", f"{kind}\t", "挂号费 儿科", "2026-12-02 09:59:00", finished,
        "\t", "\t", "\t", "\t", "abc***@example.com\t", amount, amount, "0.00", "0.00", "0.00",
        "0.00", "0.00", "", "0.00\t", "0.00", f"{request_no}\t", "0.00", "0.00", "挂号费"])


def _zip(lines: list[str], name: str = "20880000000000010156_20261202_业务明细.csv") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, ("\r\n".join(lines) + "\r\n").encode("gbk"))
        archive.writestr(name.replace("业务明细", "业务明细(汇总)"), "#汇总\r\n".encode("gbk"))
    return buffer.getvalue()


def _read(lines: list[str]):
    bill = read_trade_bill(DAY, _zip(lines))
    return list(bill.entries()), bill


def test_the_sandbox_bill_reads_back_as_its_payments_and_refunds():
    state = SandboxState(app_public_key=generate_key_pair()[1], seed=1)
    try:
        buyer = next(iter(state.users))
        for n, fee in enumerate((2500, 5000, 1)):
            state.create_trade({"out_trade_no": f"RB{n}", "subject": "挂号费, 儿科",
                                "total_amount": f"{fee / 100:.2f}", "buyer_id": buyer})
            state.pay(out_trade_no=f"RB{n}")
        state.refund({"out_trade_no": "RB1", "refund_amount": "20.00", "out_request_no": "RB1-R1"})
        _name, data = bill_zip(state, state.now().date())
        bill = read_trade_bill(state.now().date(), data)
        entries = list(bill.entries())
    finally:
        state.close()
    assert bill.problems == []
    payments = {e.out_trade_no: e.amount_fen for e in entries if e.kind is BillEntryKind.PAYMENT}
    assert payments == {"RB0": 2500, "RB1": 5000, "RB2": 1}
    [refund] = [e for e in entries if e.kind is BillEntryKind.REFUND]
    assert (refund.out_trade_no, refund.out_request_no, refund.amount_fen) == ("RB1", "RB1-R1",
                                                                              2000)
    assert all(e.at.utcoffset() == dt.timedelta(hours=8) and e.trade_no for e in entries)
    assert bill.totals == (3, 7501, 1, 2000)


def test_malformed_lines_are_reported_with_their_number_and_the_rest_is_read():
    lines = HEAD + [
        _row(out="RB1"),
        _row(out="RB2", amount="25.5"),  # one decimal
        _row(out="RB3", amount="abc"),
        _row(out="RB4", kind="其他"),
        _row(out="RB5", finished="2026/12/02 10:00"),
        "RB6,too,few",
        _row(out=""),
        _row(out="RB8", kind="退款", amount="25.00"),  # a refund must be negative
        _row(out="RB9", kind="退款", amount="-5.00", request_no="RB9-R1"),
        _row(out="RB10", amount="0.00"),
        _row(out="单号"),  # not ASCII
        "x" * (MAX_LINE_CHARS + 50),
        _row(out="RB13", amount="1.01"),
        END_RULE,
        "#交易合计：2笔，商家实收共26.01元，商家优惠共0.00元",
        "#退款合计：1笔，商家实收退款共-5.00元，商家优惠退款共0.00元",
    ]
    entries, bill = _read(lines)
    assert [(e.out_trade_no, e.amount_fen) for e in entries] == [("RB1", 2500), ("RB9", 500),
                                                                 ("RB13", 101)]
    first = len(HEAD) + 1
    assert [(p.line - first, p.reason) for p in bill.problems] == [
        (1, "bad amount"), (2, "bad amount"), (3, "unknown 业务类型"), (4, "bad 完成时间"),
        (5, "too few columns"), (6, "bad 商户订单号"), (7, "amount sign does not fit 业务类型"),
        (9, "amount sign does not fit 业务类型"), (10, "bad 商户订单号"), (11, "line too long"),
    ]
    # no problem names what was on the line
    assert not any("abc" in p.reason or "example" in p.reason for p in bill.problems)
    assert bill.totals == (2, 2601, 1, 500)


def test_a_bill_without_its_header_row_reports_it():
    entries, bill = _read(["#支付宝业务明细查询", _row(), "#导出时间：[2026年12月03日 09:00:00]"])
    assert entries == []
    assert [p.reason for p in bill.problems] == ["a row before the column header",
                                                 "no column header row"]


def test_a_bad_byte_in_a_goods_name_loses_nothing():
    good = _row(out="RB1").encode("gbk").replace("儿科".encode("gbk"), b"\xff\xfe")
    head = ("\r\n".join(HEAD) + "\r\n").encode("gbk")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x_业务明细.csv", head + good + b"\r\n")
    bill = read_trade_bill(DAY, buffer.getvalue())
    assert [e.out_trade_no for e in bill.entries()] == ["RB1"] and bill.problems == []


@pytest.mark.parametrize("data", [b"", b"not a zip at all", b"PK\x03\x04broken"])
def test_a_file_that_is_no_bill_is_the_wallet_unavailable_not_a_crash(data):
    with pytest.raises(WalletUnavailable):
        list(read_trade_bill(DAY, data).entries())


def test_a_line_longer_than_a_read_chunk_is_one_problem_and_the_next_lines_are_read():
    entries, bill = _read(HEAD + ["y" * (3 * 1024 * 1024), _row(out="RB1"), _row(out="RB2")])
    assert [e.out_trade_no for e in entries] == ["RB1", "RB2"]
    assert [(p.line, p.reason) for p in bill.problems] == [(len(HEAD) + 1, "line too long")]
