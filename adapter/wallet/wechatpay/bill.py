"""Reading WeChat Pay's trade bill (GET /v3/bill/tradebill, bill_type ALL, not compressed).

The file is UTF-8 CSV: a column header row (交易时间,公众账号ID,商户号,...), one row per payment
(交易状态 SUCCESS) and per refund (交易状态 REFUND, the refund in 商户退款单号 / 退款金额), then a
summary header (总交易单数,应结订单总金额,退款总金额,...) and its one line. WeChat writes every
value of the data and summary lines with a leading backtick (`2026-11-26 10:00:04) so that
spreadsheets keep ids as text; amounts are yuan with two decimals.

The reader is bounded and tolerant like the Alipay one: a line it cannot read is a BillProblem
with its number and reason (never its content: a buyer's openid is on every line), never an
exception; columns are found by their header names. The summary is checked against the lines
read: when every line was readable and the sums disagree, that is a problem of the bill.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

from adapter.money import fen
from adapter.ports import BillEntryKind, WalletBill, WalletBillEntry, WalletUnavailable
from adapter.wallet.lines import NumberedLines, bounded_lines

logger = logging.getLogger(__name__)

MAX_BILL_BYTES = 512 * 1024 * 1024
MAX_LINE_CHARS = 8192
MAX_LINES = 5_000_000

# Header names of the columns read (WeChat's own words).
COL_AT = "交易时间"
COL_TRADE_NO = "微信订单号"
COL_OUT_TRADE_NO = "商户订单号"
COL_STATE = "交易状态"
COL_SETTLED = "应结订单金额"
COL_REFUND_NO = "商户退款单号"
COL_REFUNDED = "退款金额"
COL_TOTAL = "订单金额"  # newer bills: the order's amount before coupons
COL_REFUND_ASKED = "申请退款金额"  # newer bills: the refund asked for before coupons
REQUIRED = (COL_AT, COL_TRADE_NO, COL_OUT_TRADE_NO, COL_STATE, COL_SETTLED, COL_REFUND_NO,
            COL_REFUNDED)
SUMMARY_FIRST = "总交易单数"
WIDTH = ""  # the header's number of columns, kept beside the positions
STATES = {"SUCCESS": BillEntryKind.PAYMENT, "REFUND": BillEntryKind.REFUND}


def _cell(value: str) -> str:
    return value.strip().removeprefix("`").strip()


def _summary_fen(text: str) -> int:
    """A summary amount: WeChat writes "0.02", but also "0.0" or "0" there."""
    try:
        value = Decimal(text) * 100
    except InvalidOperation:
        raise ValueError(text) from None
    if value != value.to_integral_value() or value < 0:
        raise ValueError(text)
    return int(value)


class WechatBillReader(WalletBill):
    """A WalletBill read from the file's bytes as its entries are asked for."""

    def __init__(self, day: dt.date, data: bytes) -> None:
        super().__init__(day, iter(()))
        self._data = data
        self._entries = self._read()
        self.rows = 0  # data rows met (read or not)
        self._settled_fen = 0
        self._refunded_fen = 0

    def _read(self) -> Iterator[WalletBillEntry]:
        if len(self._data) > MAX_BILL_BYTES:
            raise WalletUnavailable("bill: the file is larger than a bill can be")
        raw = io.BytesIO(self._data.removeprefix(b"\xef\xbb\xbf"))
        yield from self._lines(bounded_lines(raw, "utf-8", max_chars=MAX_LINE_CHARS))

    def _lines(self, lines: Iterator[str | None]) -> Iterator[WalletBillEntry]:
        columns: dict[str, int] | None = None
        summary_at = 0  # the summary header's line number, once met
        numbered = NumberedLines(lines, self.report, MAX_LINES)
        for number, line in numbered:
            if summary_at:
                if number > summary_at + 1:
                    self.report(number, "a line after the summary")
                else:
                    self._check_summary(number, line)
                continue
            if columns is None:
                columns = _header(line)
                if columns is None:
                    self.report(number, "a row before the column header")
                continue
            if line.startswith(SUMMARY_FIRST):
                summary_at = number
                continue
            self.rows += 1
            entry = self._entry(number, line.split(","), columns)
            if entry is not None:
                yield entry
        if columns is None:
            self.report(numbered.number, "no column header row")
        elif not summary_at:
            self.report(numbered.number, "no summary: the file may be cut short")

    def _entry(self, number: int, cells: list[str], at: dict[str, int]) -> WalletBillEntry | None:
        # WeChat quotes nothing and backticks every value; a goods name with a comma in it
        # shifts only the columns after it, and the columns read come before 商品名称.
        # The last cells may be left off when empty; the ones read may not.
        if len(cells) < at[WIDTH] - 2 or len(cells) <= max(at[n] for n in REQUIRED):
            self.report(number, "too few columns")
            return None
        kind = STATES.get(_cell(cells[at[COL_STATE]]))
        if kind is None:
            self.report(number, "交易状态 is neither SUCCESS nor REFUND")
            return None
        out_trade_no, trade_no = _cell(cells[at[COL_OUT_TRADE_NO]]), _cell(cells[at[COL_TRADE_NO]])
        if not out_trade_no or len(out_trade_no) > 64 or not out_trade_no.isascii():
            self.report(number, "bad 商户订单号")
            return None
        if not trade_no or len(trade_no) > 64 or not trade_no.isascii():
            self.report(number, "bad 微信订单号")
            return None
        try:
            settled = fen(_cell(cells[at[COL_SETTLED]]))
            refunded = fen(_cell(cells[at[COL_REFUNDED]]))
            amount = self._amount(kind, cells, at, settled, refunded)
        except ValueError:
            self.report(number, "bad amount")
            return None
        if amount == 0:
            self.report(number, "amount zero for its 交易状态")
            return None
        stamp = _cell(cells[at[COL_AT]])
        try:
            if len(stamp) != 19 or stamp[10] != " " or stamp[4] != "-":
                raise ValueError(stamp)
            moment = dt.datetime.fromisoformat(stamp + "+08:00")  # Beijing time
        except ValueError:
            self.report(number, "bad 交易时间")
            return None
        request_no = ""
        if kind is BillEntryKind.REFUND:
            request_no = _cell(cells[at[COL_REFUND_NO]])
            if not request_no or len(request_no) > 64 or not request_no.isascii():
                self.report(number, "bad 商户退款单号")
                return None
        self._settled_fen += settled
        self._refunded_fen += refunded
        return WalletBillEntry(kind, out_trade_no, trade_no, amount, moment, request_no)

    @staticmethod
    def _amount(kind: BillEntryKind, cells: list[str], at: dict[str, int], settled: int,
                refunded: int) -> int:
        # The order's own amount (订单金额 / 申请退款金额) where the bill has it: what we asked
        # for, before any coupon; older bills have only the settled amounts.
        # They come after 商品名称: a name with a comma in it pushes them right, so they are
        # counted from the row's end when the row is wider than the header.
        column = COL_TOTAL if kind is BillEntryKind.PAYMENT else COL_REFUND_ASKED
        if column in at:
            index = at[column] + max(0, len(cells) - at[WIDTH])
            if index < len(cells) and _cell(cells[index]):
                return fen(_cell(cells[index]))
        return settled if kind is BillEntryKind.PAYMENT else refunded

    def _check_summary(self, number: int, line: str) -> None:
        cells = [_cell(c) for c in line.split(",")]
        try:
            count, settled, refunded = int(cells[0]), _summary_fen(cells[1]), _summary_fen(
                cells[2])
        except (IndexError, ValueError):
            self.report(number, "the summary line is not readable")
            return
        if self.problem_count == 0 and (count, settled, refunded) != (
                self.rows, self._settled_fen, self._refunded_fen):
            logger.warning("bill %s: the summary disagrees with the lines", self.day)
            self.report(number, "the summary disagrees with the lines")


def _header(line: str) -> dict[str, int] | None:
    names = [name.strip().removeprefix("\ufeff") for name in line.split(",")]
    positions = {name: index for index, name in enumerate(names)}
    if not all(name in positions for name in REQUIRED):
        return None
    columns = {name: positions[name] for name in (*REQUIRED, COL_TOTAL, COL_REFUND_ASKED)
               if name in positions}
    columns[WIDTH] = len(names)
    return columns


def read_trade_bill(day: dt.date, data: bytes) -> WechatBillReader:
    """The trade bill in ``data`` (the file as downloaded), read lazily."""
    return WechatBillReader(day, data)
