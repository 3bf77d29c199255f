"""Money: integer fen inside (DESIGN invariant 2); yuan strings only where shown or sent."""

from __future__ import annotations


def yuan(fen: int) -> str:
    """Fen as a yuan string with two decimals: 2500 -> "25.00" (never via float)."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError("an amount is an integer number of fen")
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"
