"""Yuan strings at the protocol boundary, integer fen inside; Decimal, never float."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_YUAN = re.compile(r"^\d{1,9}(\.\d{1,2})?$")
MAX_FEN = 100_000_000_00  # Alipay: total_amount in [0.01, 100000000]


def parse_yuan(value: object) -> int:
    """``"25.00"`` (or a JSON number parsed as Decimal) to fen; ValueError when not 2-dp yuan."""
    if isinstance(value, bool) or value is None:
        raise ValueError("amount missing")
    text = str(value).strip()
    if not _YUAN.match(text):
        raise ValueError("amount is not yuan with at most two decimals")
    try:
        fen = int(Decimal(text) * 100)
    except InvalidOperation:
        raise ValueError("amount is not a number") from None
    if not 1 <= fen <= MAX_FEN:
        raise ValueError("amount out of range")
    return fen


def yuan(fen: int) -> str:
    """Fen to the two-decimal yuan string (negative for refunds in the bill)."""
    return str((Decimal(fen) / 100).quantize(Decimal("0.01")))
