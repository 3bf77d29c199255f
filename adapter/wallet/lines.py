"""Reading a wallet's bill file line by line, bounded however the file is made."""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
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


class NumberedLines:
    """A bill file's non-blank lines with their numbers, as its reader walks them: a line too
    long, and the lines past ``max_lines``, are reported on the bill instead (``report``, as
    WalletBill.report takes them). ``number`` is the last line's number once walked."""

    def __init__(self, lines: Iterator[str | None], report: Callable[[int, str], None],
                 max_lines: int) -> None:
        self._lines, self._report, self._max = lines, report, max_lines
        self.number = 0

    def __iter__(self) -> Iterator[tuple[int, str]]:
        for line in self._lines:
            self.number += 1
            if self.number > self._max:
                self._report(self.number, f"more than {self._max} lines: the rest not read")
                return
            if line is None:
                self._report(self.number, "line too long")
            elif line.strip():
                yield self.number, line
