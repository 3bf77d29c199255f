"""The archive of pruned rows: gzip'd JSON lines, one file per table, day and batch, under
ADAPTER_ARCHIVE_DIR/<table>/<YYYY-MM-DD>/, written whole and fsynced before the rows are
deleted (a crash in between leaves the rows in place; the next run archives them again).

Nothing the database keeps encrypted goes into the archive in plaintext: kept bytes (HL7 as
received, a notice's body) are decoded and every ID number and mobile number in them, and in
every other text column, is masked (adapter/his/masking.py, adapter/protection.py). Files are
readable by their owner only; the directory belongs on the hospital's own encrypted storage.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import tempfile
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from adapter.his.header import CHARSETS
from adapter.his.masking import mask_id_numbers
from adapter.protection import fsync_directory, mask_phone

# A mainland mobile number standing alone (PID-13, a note): masked like the stored phones.
MOBILE_SHAPE = re.compile(r"(?<![0-9])(1[3-9]\d{9})(?![0-9])")


def masked(text: str, document_types: Collection[str]) -> str:
    """``text`` with its ID numbers and mobile numbers masked."""
    text = mask_id_numbers(text, document_types)
    return MOBILE_SHAPE.sub(lambda match: mask_phone(match.group(1)), text)


def archived_row(row: Any, document_types: Collection[str]) -> dict[str, Any]:  # noqa: ANN401
    """A row as one JSON object: its columns, times in ISO 8601, bytes decoded (as MSH-18
    declares, for an inbound message) and every text masked."""
    charset = CHARSETS.get(str(getattr(row, "charset", "") or "").upper(), "utf-8")
    values: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        if isinstance(value, bytes):
            value = masked(value.decode(charset, errors="replace"), document_types)
        elif isinstance(value, str):
            value = masked(value, document_types)
        elif isinstance(value, dt.datetime | dt.date):
            value = value.isoformat()
        values[column.name] = value
    return values


def write_archive(directory: Path, table: str, day: dt.date, first_id: object,
                  last_id: object, lines: Iterable[dict[str, Any]]) -> Path:
    """Write one batch's rows of one day as ``<table>-<first>-<last>.jsonl.gz``, whole or not
    at all (a temporary file, fsynced, renamed, the directory fsynced); its path."""
    folder = directory / table / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = folder / f"{table}-{first_id}-{last_id}.jsonl.gz"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            with gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0) as packed:
                for line in lines:
                    packed.write(json.dumps(line, ensure_ascii=False, sort_keys=True)
                                 .encode("utf-8") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        fsync_directory(folder)
    finally:
        tmp.unlink(missing_ok=True)
    return target
