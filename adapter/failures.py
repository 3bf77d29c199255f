"""What a failure may say in a log line or a stored error column: its type and a safe code.

The text of an exception can carry the values that caused it: hl7apy quotes the field value it
refused, SQLAlchemy appends the statement's parameters, a ValueError may repeat its input. Names,
phones and document numbers must never reach a log line or a row (DESIGN invariant 6), so
failures are described by :func:`safe_code` (the type, and a code that names no value) and
located by :func:`stack` (the frames, without any exception's message).
"""

from __future__ import annotations

import re
import traceback

# A code is a short token: an HL7 table 0357 code, a HIS's ERR-5 code, a refusal code, an SQL
# state. Anything else that an exception calls its code is not shown.
_CODE_RE = re.compile(r"[A-Za-z0-9_.\-]{1,40}")


def _code_of(exc: BaseException) -> str:
    driver_error = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's
    if isinstance(driver_error, BaseException):
        state = (getattr(driver_error, "sqlstate", None)  # psycopg 3
                 or getattr(driver_error, "sqlite_errorname", None))  # sqlite3
        code = _code_of_value(state)
        name = type(driver_error).__name__
        return f"{name} {code}" if code else name
    outcome = getattr(exc, "outcome", None)  # HisRefused
    return _code_of_value(getattr(outcome, "error_code", None) or getattr(exc, "code", None))


def _code_of_value(value: object) -> str:
    if isinstance(value, str) and _CODE_RE.fullmatch(value):
        return value
    return ""


def safe_code(exc: BaseException) -> str:
    """The exception's type and code (``MessageError 207``, ``DataError StringDataRightTruncation
    22001``), never its message."""
    code = _code_of(exc)
    return f"{type(exc).__name__} {code}" if code else type(exc).__name__


def stack(exc: BaseException) -> str:
    """Where the exception (and each exception it was raised from) happened: file, line,
    function and source line of each frame, and the type, never the message."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_tb(current.__traceback__))
        parts.append(f"{safe_code(current)}\n{frames}".rstrip())
        current = current.__cause__ or (None if current.__suppress_context__
                                         else current.__context__)
    return "\n  raised while handling or from:\n".join(parts)
