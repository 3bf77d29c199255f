"""Reading a wallet's bill file line by line, bounded however the file is made."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import IO


def bounded_lines(raw: IO[bytes], encoding: str, *, max_chars: int,
                  chunk_bytes: int = 1024 * 1024) -> Iterator[str | None]:
    """The file's lines (without line ends), None for one over ``max_chars``, read a chunk at
    a time: much faster than a readline per line.

    Only encodings in which a newline byte is always a newline (UTF-8, GBK: trail bytes are
    0x40-0xFE) are meant; the incremental decoder carries a character cut at a chunk's end.
    errors="replace": one bad byte in a goods name must not lose the day; the cells that
    matter (ids, amounts, times) are checked ASCII by the readers.
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    tail, skipping = "", False
    while True:
        chunk = raw.read(chunk_bytes)
        parts = (tail + decoder.decode(chunk, final=not chunk)).split("\n")
        tail = parts.pop()
        for part in parts:
            if skipping:
                skipping = False  # the end of an over-long line, already reported
            elif len(part) > max_chars:
                yield None
            else:
                yield part.rstrip("\r")
        if len(tail) > max_chars:
            if not skipping:
                yield None
            tail, skipping = "", True
        if not chunk:
            break
    if tail and not skipping:
        yield tail.rstrip("\r")
