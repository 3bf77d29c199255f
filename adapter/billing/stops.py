"""Where to go after paying: mappings/next_stop.csv, keyed by the fee item's kind
(fee_items.csv) and, where a department has its own place, by kind and department."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from adapter.mappings import FEE_KINDS

FILE = "next_stop.csv"
COLUMNS = ("kind", "department", "place_zh", "place_en", "location")


class NextStopError(ValueError):
    """next_stop.csv cannot be used (file, line and problem)."""


@dataclass(frozen=True)
class NextStop:
    """A place the patient goes to next."""

    kind: str
    place_zh: str
    place_en: str
    location: str

    def place(self, locale: str) -> str:
        """The place's name in the patient's language."""
        return self.place_en if locale.startswith("en") and self.place_en else self.place_zh


@cache
def load_next_stops(mappings_dir: Path) -> dict[tuple[str, str], NextStop]:
    """(kind, department or "") -> place; a missing file gives none."""
    path = mappings_dir / FILE
    if not path.exists():
        return {}
    stops: dict[tuple[str, str], NextStop] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise NextStopError(f"{path}: columns must be {','.join(COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            key = (row["kind"].strip(), row["department"].strip())
            if not key[0] or not row["place_zh"].strip():
                raise NextStopError(f"{path}:{line}: kind and place_zh are required")
            if key[0] not in FEE_KINDS:
                raise NextStopError(f"{path}:{line}: kind must be one of {', '.join(FEE_KINDS)}")
            if key in stops:
                raise NextStopError(f"{path}:{line}: {key[0]} {key[1]} given twice")
            stops[key] = NextStop(key[0], row["place_zh"].strip(), row["place_en"].strip(),
                                  row["location"].strip())
    return stops


def next_stops(stops: dict[tuple[str, str], NextStop],
               charges: Iterable[tuple[str, str]]) -> list[NextStop]:
    """The places for (kind, department) pairs of paid charges, each once, in order."""
    out: list[NextStop] = []
    for kind, department in charges:
        stop = stops.get((kind, department)) or stops.get((kind, "")) or stops.get(("other", ""))
        if stop is not None and stop not in out:
            out.append(stop)
    return out
