"""A run's discrepancies as CSV and its summary as lines: yuan from fen with the one yuan
formatter, ids only (no names, accounts or ID numbers)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any

from adapter.money import yuan
from adapter.reconciliation.matching import Discrepancy, Kind
from adapter.reconciliation.texts import action_text, kind_text

CSV_COLUMNS = ("kind", "kind_text", "out_trade_no", "out_request_no", "his_receipt_no",
               "purpose", "wallet_yuan", "adapter_yuan", "his_yuan", "action", "action_text",
               "healed", "heal")


def _yuan(fen: int | None) -> str:
    return "" if fen is None else yuan(fen)


def _text(value: str) -> str:
    # Ids come from the wallet's bill and the HIS: one starting with = + - @ would run as a
    # formula in a spreadsheet (CSV injection, OWASP), so it is kept as text with a quote.
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def write_csv(items: Iterable[Discrepancy], stream: IO[str], locale: str = "zh-CN") -> int:
    """Write the discrepancies (a header row first); how many rows."""
    writer = csv.writer(stream)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for item in items:
        writer.writerow([
            item.kind.value, kind_text(item.kind, locale), _text(item.out_trade_no),
            _text(item.out_request_no), _text(item.his_receipt_no), item.purpose,
            _yuan(item.wallet_fen), _yuan(item.adapter_fen), _yuan(item.his_fen),
            item.action.value, action_text(item.action, locale),
            "yes" if item.healed else "no", item.heal])
        count += 1
    return count


def summary_lines(summary: dict[str, Any], locale: str = "zh-CN") -> list[str]:
    """The run in a few lines: each book's counts and sums, then each class found."""
    lines = [f"reconciliation {summary['day']} ({summary['platform']})"]
    for side in ("wallet", "adapter", "his"):
        book = summary[side]
        lines.append(f"  {side:8} payments {book['payments']:>7}  {yuan(book['payment_fen']):>14}"
                     f"   refunds {book['refunds']:>6}  {yuan(book['refund_fen']):>12}")
    problems = summary["problems"]
    lines.append(f"  unreadable lines: wallet {problems['wallet']}, his {problems['his']}")
    by_kind = summary.get("by_kind", {})
    total = sum(entry["count"] for entry in by_kind.values())
    lines.append(f"  discrepancies {total}, healed {summary.get('healed', 0)}")
    for kind in Kind:
        entry = by_kind.get(kind.value)
        if entry:
            lines.append(f"    {kind.value:20} {entry['count']:>6}  {yuan(entry['fen']):>12}  "
                         f"{kind_text(kind, locale)}")
    return lines
