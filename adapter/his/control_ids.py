"""MSH-10 values the adapter sends: unique across processes and restarts, short, sortable."""

from __future__ import annotations

import itertools
import os
import threading

from adapter.db import utcnow

# One counter per prefix in the process: two instances made in the same second (a command's
# gateway after another's) share the prefix, so they must share the sequence too, else the
# HIS answers the second one's messages with the first one's stored answers.
_COUNTERS: dict[str, itertools.count] = {}
_COUNTERS_LOCK = threading.Lock()


class ControlIds:
    """A thread-safe source of message control ids (HL7 ST, at most 199 characters)."""

    def __init__(self, prefix: str) -> None:
        # prefix + process id + start time keeps instances and restarts apart without a
        # database round trip on the hot path; the counter orders ids within a process.
        self._prefix = f"{prefix}{os.getpid() % 100000:05d}{utcnow():%y%m%d%H%M%S}"
        with _COUNTERS_LOCK:
            self._counter = _COUNTERS.setdefault(self._prefix, itertools.count(1))
        self._lock = _COUNTERS_LOCK

    def next(self) -> str:
        """A fresh control id."""
        with self._lock:
            return f"{self._prefix}{next(self._counter):07d}"
