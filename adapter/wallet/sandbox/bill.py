"""The day's trade bill as Alipay ships it: a zip of GBK-encoded CSV files.

Layout of the detail file ("业务明细"), as in bills downloaded from Alipay: four '#' header lines,
the 25-column header row, one row per payment (业务类型 交易) and per refund (退款, negative
amounts), the closing marker and '#' totals. Alipay appends a tab to id-like values (交易号,
订单号, 业务类型, 门店, 操作员, 终端号, 对方账户, 退款请求号, and one amount column) so that
spreadsheet programs keep them as text; the sandbox does the same, so a parser must strip them.
The zip also holds the summary file ("业务明细(汇总)"), and its member names are GBK bytes
without the UTF-8 flag, as Alipay's are: open it with ``zipfile.ZipFile(..., metadata_encoding=
"gbk")``. The sandbox charges no service fee (服务费 0.00).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import zipfile

from adapter.wallet.sandbox.money import yuan
from adapter.wallet.sandbox.protocol import BEIJING, TIME_FORMAT
from adapter.wallet.sandbox.state import SandboxState
from adapter.wallet.sandbox.trades import Trade

logger = logging.getLogger(__name__)

COLUMNS = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
    "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,"
    "商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,"
    "退款批次号/请求号,服务费（元）,分润（元）,备注"
)
RULE = "#" + "-" * 41 + "业务明细列表" + "-" * 40
END_RULE = "#" + "-" * 41 + "业务明细列表结束" + "-" * 36


def _cn_date(value: dt.datetime) -> str:
    return value.strftime("%Y年%m月%d日 %H:%M:%S")


def _clean(text: str) -> str:
    # A CSV without quoting (Alipay quotes nothing): keep commas and newlines out of free text.
    return text.replace(",", "，").replace("\r", " ").replace("\n", " ")


def _row(trade: Trade, kind: str, finished: dt.datetime, fen: int, request_no: str,
         account: str) -> str:
    amount = yuan(fen)
    cells = [
        f"{trade.trade_no}\t", f"{trade.out_trade_no}\t", f"{kind}\t", _clean(trade.subject),
        trade.created_at.strftime(TIME_FORMAT), finished.strftime(TIME_FORMAT),
        "\t", "\t", "\t", "\t", f"{account}\t",
        amount, amount, "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00\t", "0.00",
        f"{request_no}\t", "0.00", "0.00", _clean(trade.subject),
    ]
    return ",".join(cells)


def detail_lines(state: SandboxState, bill_date: dt.date) -> list[str]:
    """The detail CSV's lines (without line ends) for one day, Beijing time."""
    start = dt.datetime.combine(bill_date, dt.time(0), BEIJING)
    end = start + dt.timedelta(days=1)
    payments: list[tuple[dt.datetime, str]] = []
    refunds: list[tuple[dt.datetime, str]] = []
    pay_fen = refund_fen = 0
    with state.lock:
        for trade in state.trades.values():
            user = state.users.get(trade.buyer_id)
            account = user.logon_id if user else ""
            if trade.paid_at and start <= trade.paid_at < end:
                payments.append((trade.paid_at, _row(trade, "交易", trade.paid_at,
                                                     trade.total_fen, "", account)))
                pay_fen += trade.total_fen
            for refund in trade.refunds.values():
                if start <= refund.at < end:
                    refunds.append((refund.at, _row(trade, "退款", refund.at, -refund.refund_fen,
                                                    refund.out_request_no, account)))
                    refund_fen += refund.refund_fen
    rows = [line for _, line in sorted(payments + refunds, key=lambda item: item[0])]
    return [
        "#支付宝业务明细查询",
        f"#账号：[{state.seller_id}0156]",
        f"#起始日期：[{_cn_date(start)}]   终止日期：[{_cn_date(end)}]",
        RULE,
        COLUMNS,
        *rows,
        END_RULE,
        f"#交易合计：{len(payments)}笔，商家实收共{yuan(pay_fen)}元，商家优惠共0.00元",
        f"#退款合计：{len(refunds)}笔，商家实收退款共{yuan(-refund_fen)}元，商家优惠退款共0.00元",
        f"#导出时间：[{_cn_date(state.now())}]",
    ]


def summary_lines(state: SandboxState, bill_date: dt.date, detail: list[str]) -> list[str]:
    """A short summary file, as Alipay puts beside the detail (its totals only)."""
    start = dt.datetime.combine(bill_date, dt.time(0), BEIJING)
    totals = [line for line in detail if line.startswith(("#交易合计", "#退款合计"))]
    return [
        "#支付宝业务汇总查询",
        f"#账号：[{state.seller_id}0156]",
        f"#起始日期：[{_cn_date(start)}]   终止日期：[{_cn_date(start + dt.timedelta(days=1))}]",
        *totals,
        f"#导出时间：[{_cn_date(state.now())}]",
    ]


class _GbkName(zipfile.ZipInfo):
    """A member whose name is stored as GBK bytes without the UTF-8 flag, as Alipay does."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # noqa: N802 (zipfile's name)
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


def bill_zip(state: SandboxState, bill_date: dt.date) -> tuple[str, bytes]:
    """(zip file name, zip bytes) of the day's trade bill."""
    detail = detail_lines(state, bill_date)
    stem = f"{state.seller_id}0156_{bill_date:%Y%m%d}"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, lines in ((f"{stem}_业务明细.csv", detail),
                            (f"{stem}_业务明细(汇总).csv",
                             summary_lines(state, bill_date, detail))):
            info = _GbkName(name, date_time=state.now().timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, ("\r\n".join(lines) + "\r\n").encode("gbk"))
    logger.info("wallet sandbox: bill for %s built (%d lines)", bill_date, len(detail))
    return f"{stem}.csv.zip", buffer.getvalue()
