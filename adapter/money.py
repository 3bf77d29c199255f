"""Money at the wallet boundary: integer fen inside, yuan strings with exactly two decimals out.

DESIGN invariant 2: no floats; "25.00" only where a wallet's protocol or a page shows yuan.
"""

from __future__ import annotations

from decimal import Decimal

_CENT = Decimal("0.01")


def yuan(fen: int) -> str:
    """12345 -> "123.45"; refuses anything that is not a non-negative int."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"fen must be int, not {type(fen).__name__}")
    if fen < 0:
        raise ValueError("amount must not be negative")
    return str(Decimal(fen).scaleb(-2).quantize(_CENT))  # exact: an int shifted two places


def fen(yuan_text: str) -> int:
    """ "123.45" -> 12345; refuses anything but digits, a dot and exactly two decimals."""
    if not isinstance(yuan_text, str):
        raise TypeError(f"yuan must be str, not {type(yuan_text).__name__}")
    whole, dot, cents = yuan_text.partition(".")
    if (
        not dot
        or len(cents) != 2
        or not whole
        or not (whole.isascii() and whole.isdigit())
        or not (cents.isascii() and cents.isdigit())
    ):
        raise ValueError(f"not a yuan amount with two decimals: {yuan_text!r}")
    # ASCII digits on both sides of the dot, exactly two after it: whole fen by integers
    # alone (exact, and several times faster than Decimal on a bill of 100,000 lines).
    return int(whole) * 100 + int(cents)
