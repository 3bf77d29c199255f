"""Reading WeChat Pay's trade bill in its real format: backticks, refund lines, the summary."""

from __future__ import annotations

import datetime as dt
import time

from adapter.ports import BillEntryKind
from adapter.wallet.wechatpay.bill import read_trade_bill

DAY = dt.date(2026, 11, 26)
BEIJING = dt.timezone(dt.timedelta(hours=8))
HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
          "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
          "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
          "费率备注")
SUMMARY = ("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,"
           "申请退款总金额")


def payment(out_trade_no: str = "R20261126000001", amount: str = "25.00",
            at: str = "2026-11-26 10:00:04", goods: str = "挂号费 儿科",
            trade_no: str = "4200000000202611260000000001") -> str:
    cells = [at, "wxd678efh567hg6787", "1900000109", "0", "", trade_no, out_trade_no,
             "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "JSAPI", "SUCCESS", "OTHERS", "CNY", amount, "0.00",
             "0", "0", "0.00", "0.00", "", "", goods, "", "0.15000", "0.60%", amount, "0.00", ""]
    return ",".join("`" + cell for cell in cells)


def refund(out_trade_no: str = "R20261126000001", out_refund_no: str = "R20261126000001-1",
           amount: str = "25.00", at: str = "2026-11-26 11:30:00") -> str:
    cells = [at, "wxd678efh567hg6787", "1900000109", "0", "", "4200000000202611260000000001",
             out_trade_no, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "JSAPI", "REFUND", "OTHERS", "CNY",
             "0.00", "0.00", "50300000000202611260000000001", out_refund_no, amount, "0.00",
             "ORIGINAL", "SUCCESS", "挂号费 儿科", "", "-0.15000", "0.60%", "0.00", amount, ""]
    return ",".join("`" + cell for cell in cells)


def bill(*rows: str, summary: str | None = None) -> bytes:
    if summary is None:
        summary = "`2,`25.00,`25.00,`0.00,`0.00000,`25.00,`25.00"
    return "\r\n".join([HEADER, *rows, SUMMARY, summary, ""]).encode("utf-8")


def read(data: bytes):
    wallet_bill = read_trade_bill(DAY, data)
    return list(wallet_bill.entries()), wallet_bill


def test_payments_and_refunds_are_read_in_fen_with_their_times():
    entries, wallet_bill = read(bill(payment(), refund()))
    assert entries == [
        (BillEntryKind.PAYMENT, "R20261126000001", "4200000000202611260000000001", 2500,
         dt.datetime(2026, 11, 26, 10, 0, 4, tzinfo=BEIJING), ""),
        (BillEntryKind.REFUND, "R20261126000001", "4200000000202611260000000001", 2500,
         dt.datetime(2026, 11, 26, 11, 30, tzinfo=BEIJING), "R20261126000001-1"),
    ]
    assert wallet_bill.problems == [] and wallet_bill.problem_count == 0


def test_a_bom_and_an_older_bill_without_the_order_amount_columns_are_read():
    old_header = HEADER.rsplit(",订单金额", 1)[0]
    row = ",".join(payment().split(",")[:24])
    data = "\n".join([old_header, row, SUMMARY.split(",订单总金额")[0],
                      "`1,`25.00,`0.0,`0.0,`0"]).encode()
    entries, wallet_bill = read(b"\xef\xbb\xbf" + data)
    assert [entry.amount_fen for entry in entries] == [2500]
    assert wallet_bill.problems == []


def test_a_goods_name_with_a_comma_does_not_shift_the_amount():
    entries, wallet_bill = read(bill(payment(goods="挂号费,儿科"), refund()))
    assert [entry.amount_fen for entry in entries] == [2500, 2500]
    assert wallet_bill.problems == []


def test_bad_lines_are_problems_with_their_number_never_exceptions():
    lines = [
        payment(),
        payment(amount="25"),  # 3: not two decimals
        payment(at="2026/11/26 10:00:04"),  # 4
        payment(out_trade_no=""),  # 5
        payment().replace("`SUCCESS", "`REVOKED"),  # 6
        "`2026-11-26 10:00:00,`wx",  # 7: too few columns
        "x" * 9000,  # 8: too long
        refund(out_refund_no=""),  # 9
        payment(amount="0.00"),  # 10
        payment(trade_no="交易号"),  # 11
    ]
    entries, wallet_bill = read(bill(*lines))
    assert len(entries) == 1
    assert [(p.line, p.reason) for p in wallet_bill.problems] == [
        (3, "bad amount"), (4, "bad 交易时间"), (5, "bad 商户订单号"),
        (6, "交易状态 is neither SUCCESS nor REFUND"), (7, "too few columns"),
        (8, "line too long"), (9, "bad 商户退款单号"), (10, "amount zero for its 交易状态"),
        (11, "bad 微信订单号"),
    ]
    assert "oUpF8" not in repr(wallet_bill.problems)  # never a line's content


def test_the_summary_is_checked_against_the_lines():
    _, good = read(bill(payment(), refund()))
    assert good.problems == []
    _, bad = read(bill(payment(), refund(), summary="`2,`26.00,`25.00,`0.00,`0,`26.00,`25.00"))
    assert [(p.line, p.reason) for p in bad.problems] == [
        (5, "the summary disagrees with the lines")]
    _, garbled = read(bill(payment(), summary="`two,`x"))
    assert [p.reason for p in garbled.problems] == ["the summary line is not readable"]


def test_a_bill_cut_short_or_without_a_header_is_reported():
    data = "\n".join([HEADER, payment()]).encode()
    entries, cut = read(data)
    assert len(entries) == 1 and [p.reason for p in cut.problems] == [
        "no summary: the file may be cut short"]
    entries, headless = read("\n".join([payment(), SUMMARY]).encode())
    assert entries == [] and "no column header row" in [p.reason for p in headless.problems]


def test_a_line_after_the_summary_is_a_problem():
    _, wallet_bill = read(bill(payment(), refund()) + payment().encode())
    assert [p.reason for p in wallet_bill.problems] == ["a line after the summary"]


def test_a_large_bill_is_streamed():
    count = 100_000
    rows = "\n".join(payment(out_trade_no=f"R{n:014d}", amount="1.00") for n in range(count))
    data = "\n".join([HEADER, rows, SUMMARY,
                      f"`{count},`{count}.00,`0.00,`0.00,`0,`{count}.00,`0.00"]).encode()
    started = time.perf_counter()
    wallet_bill = read_trade_bill(DAY, data)
    entries = wallet_bill.entries()
    first = next(entries)  # read as asked for: the first entry before the rest
    assert first.out_trade_no == "R00000000000000"
    total = first.amount_fen + sum(entry.amount_fen for entry in entries)
    assert total == count * 100 and wallet_bill.problems == []
    assert time.perf_counter() - started < 10  # about 1 s here
