"""Reading Alipay's trade bill (alipay.data.dataservice.bill.downloadurl.query, bill_type trade).

The file is a zip of GBK-encoded CSV files whose member names are GBK bytes without the UTF-8
flag; the detail file (name ending 业务明细.csv, beside 业务明细(汇总).csv) has '#' comment lines
before the column header row, one row per payment (业务类型 交易) and per refund (退款, negative
amounts, the refund request number in 退款批次号/请求号), then '#' closing lines with the day's
totals (#交易合计：N笔，商家实收共X元 / #退款合计：N笔，商家实收退款共-X元). Alipay appends a tab to
id-like cells so that spreadsheets keep them as text.

The reader is bounded (zip size, member size, line length, rows) and tolerant: a line it cannot
read becomes a BillProblem with its line number and the reason, never an exception, and never
its content (a buyer's account is on every line). Columns are found by their header names, so
Alipay adding or moving a column does not shift amounts into the wrong field.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
import zipfile
from collections.abc import Iterator

from adapter.money import fen
from adapter.ports import BillEntryKind, WalletBill, WalletBillEntry, WalletUnavailable
from adapter.wallet.lines import NumberedLines, bounded_lines

logger = logging.getLogger(__name__)


MAX_ZIP_BYTES = 256 * 1024 * 1024  # a day of a big hospital is a few MB zipped
MAX_DETAIL_BYTES = 1024 * 1024 * 1024  # declared uncompressed size of the detail member
MAX_LINE_CHARS = 8192  # a line is about 300 characters; longer is not a bill line
MAX_LINES = 5_000_000
CHUNK_BYTES = 1024 * 1024

DETAIL_SUFFIX = "业务明细.csv"
SUMMARY_MARK = "汇总"
# Header names of the columns read (Alipay's own words).
COL_TRADE_NO = "支付宝交易号"
COL_OUT_TRADE_NO = "商户订单号"
COL_KIND = "业务类型"
COL_FINISHED = "完成时间"
COL_AMOUNT = "订单金额（元）"
COL_REQUEST_NO = "退款批次号/请求号"
REQUIRED = (COL_TRADE_NO, COL_OUT_TRADE_NO, COL_KIND, COL_FINISHED, COL_AMOUNT, COL_REQUEST_NO)
KINDS = {"交易": BillEntryKind.PAYMENT, "退款": BillEntryKind.REFUND}

_TOTAL = re.compile(r"#(交易|退款)合计：(\d+)笔，商家实收(?:退款)?共(-?\d+\.\d{2})元")


class BillReader(WalletBill):
    """A WalletBill read from the zip's bytes as its entries are asked for."""

    def __init__(self, day: dt.date, data: bytes) -> None:
        super().__init__(day, iter(()))
        self._widest = 0
        self._at: tuple[int, ...] = ()  # the header's positions of the cells read
        self._data = data
        self._entries = self._read()

    def _read(self) -> Iterator[WalletBillEntry]:
        if len(self._data) > MAX_ZIP_BYTES:
            raise WalletUnavailable("bill: the file is larger than a bill can be")
        try:
            archive = zipfile.ZipFile(io.BytesIO(self._data), metadata_encoding="gbk")
        except (zipfile.BadZipFile, ValueError):
            raise WalletUnavailable("bill: not a zip file") from None
        with archive:
            member = _detail_member(archive)
            if member is None:
                raise WalletUnavailable("bill: no 业务明细 file in the zip")
            if member.file_size > MAX_DETAIL_BYTES:
                raise WalletUnavailable("bill: the detail file is larger than a bill can be")
            with archive.open(member) as raw:
                yield from self._lines(bounded_lines(raw, "gbk", max_chars=MAX_LINE_CHARS,
                                                          chunk_bytes=CHUNK_BYTES))

    def _lines(self, lines: Iterator[str | None]) -> Iterator[WalletBillEntry]:
        columns: dict[str, int] | None = None
        totals: dict[str, tuple[int, int]] = {}
        numbered = NumberedLines(lines, self.report, MAX_LINES)
        try:
            for number, line in numbered:
                if line.startswith("#"):
                    match = _TOTAL.match(line)
                    if match:
                        totals[match[1]] = (int(match[2]), fen(match[3].lstrip("-")))
                    continue
                if columns is None:
                    columns = _header(line)
                    if columns is None:
                        self.report(number, "a row before the column header")
                    else:
                        self._widest = max(columns.values())
                        self._at = tuple(columns[name] for name in (
                            COL_KIND, COL_OUT_TRADE_NO, COL_TRADE_NO, COL_AMOUNT, COL_FINISHED,
                            COL_REQUEST_NO))
                    continue
                entry = self._entry(number, line)
                if entry is not None:
                    yield entry
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            # A truncated or corrupt member: what was read stands, the rest is one problem.
            self.report(numbered.number + 1, f"the file breaks off ({type(exc).__name__})")
        if columns is None:
            self.report(numbered.number, "no column header row")
        if "交易" in totals and "退款" in totals:
            self.totals = (*totals["交易"], *totals["退款"])

    def _entry(self, number: int, line: str) -> WalletBillEntry | None:
        if '"' in line:
            try:
                cells = next(csv.reader([line]))
            except csv.Error:
                self.report(number, "not a CSV row")
                return None
        else:
            # Alipay quotes nothing: a plain split reads the 100,000 lines of a big day in a
            # fraction of csv.reader's time; a quoted line still goes through csv above.
            cells = line.split(",")
        if len(cells) <= self._widest:
            self.report(number, "too few columns")
            return None

        at_kind, at_out, at_trade, at_amount, at_finished, at_request = self._at
        kind = KINDS.get(cells[at_kind].strip(" \t"))
        if kind is None:
            self.report(number, "unknown 业务类型")
            return None
        out_trade_no, trade_no = cells[at_out].strip(" \t"), cells[at_trade].strip(" \t")
        if not out_trade_no or len(out_trade_no) > 64 or not out_trade_no.isascii():
            self.report(number, "bad 商户订单号")
            return None
        if len(trade_no) > 64 or not trade_no.isascii():
            self.report(number, "bad 支付宝交易号")
            return None
        amount = cells[at_amount].strip(" \t")
        negative = amount.startswith("-")
        try:
            amount_fen = fen(amount[1:] if negative else amount)
        except ValueError:
            self.report(number, "bad amount")
            return None
        if amount_fen == 0 or negative != (kind is BillEntryKind.REFUND):
            self.report(number, "amount sign does not fit 业务类型")
            return None
        finished = cells[at_finished].strip(" \t")
        try:
            # fromisoformat reads "2026-12-02 10:00:00" ten times faster than strptime; the
            # length and separators are checked first so that nothing else passes.
            if len(finished) != 19 or finished[10] != " " or finished[4] != "-":
                raise ValueError(finished)
            at = dt.datetime.fromisoformat(finished + "+08:00")  # Beijing time
        except ValueError:
            self.report(number, "bad 完成时间")
            return None
        request_no = cells[at_request].strip(" \t") if kind is BillEntryKind.REFUND else ""
        if kind is BillEntryKind.REFUND and not request_no:
            # Alipay: a refund without out_request_no was keyed by the out_trade_no.
            request_no = out_trade_no
        if len(request_no) > 64 or not request_no.isascii():
            self.report(number, "bad 退款请求号")
            return None
        return WalletBillEntry(kind, out_trade_no, trade_no, amount_fen, at, request_no)


def _detail_member(archive: zipfile.ZipFile) -> zipfile.ZipInfo | None:
    members = [m for m in archive.infolist() if not m.is_dir()]
    for member in members:
        if member.filename.endswith(DETAIL_SUFFIX) and SUMMARY_MARK not in member.filename:
            return member
    # Names in another encoding than GBK: the largest file is the detail.
    others = [m for m in members if SUMMARY_MARK not in m.filename]
    return max(others, key=lambda m: m.file_size, default=None)


def _header(line: str) -> dict[str, int] | None:
    try:
        names = [name.strip().strip("\t") for name in next(csv.reader([line]))]
    except csv.Error:
        return None
    positions = {name: index for index, name in enumerate(names)}
    if not all(name in positions for name in REQUIRED):
        return None
    return {name: positions[name] for name in REQUIRED}


def read_trade_bill(day: dt.date, data: bytes) -> BillReader:
    """The trade bill in ``data`` (the csv.zip as downloaded), read lazily.

    Raises WalletUnavailable (while iterating) when the file is not a bill at all: not a zip,
    no detail file, over the bounds.
    """
    return BillReader(day, data)
