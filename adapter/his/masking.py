"""HL7 (and other kept bytes) shown to staff with ID numbers masked: the message browser lets
admins read what arrived, never a document number in full (DESIGN invariant 6).

Two passes, because a message may carry a number where no rule expects it: PID-3 repetitions
whose identifier type (PID-3.5) is a document type of mappings/document_types.csv are masked
by field, then any token shaped like a resident ID (18 characters, or the old 15 digits) is
masked wherever it stands (NK1, IN1, a Z-segment, a note).
"""

from __future__ import annotations

import re
from collections.abc import Collection

from adapter.his.header import CHARSETS
from adapter.protection import mask_document

RESIDENT_ID_SHAPE = re.compile(r"(?<![0-9A-Za-z])(\d{17}[0-9Xx]|\d{15})(?![0-9A-Za-z])")
SEGMENT_END = re.compile(r"(\r\n|\r|\n)")


def mask_id_numbers(text: str, document_types: Collection[str] = ()) -> str:
    """``text`` (an HL7 message, or any kept body) with its ID numbers masked."""
    if text.startswith("MSH") and len(text) >= 8:
        field, component, repetition = text[3], text[4], text[5]
        parts = SEGMENT_END.split(text)
        text = "".join(_mask_pid(part, field, component, repetition, document_types)
                       if part.startswith("PID" + field) else part for part in parts)
    return RESIDENT_ID_SHAPE.sub(lambda m: mask_document(m.group(1)), text)


def _mask_pid(segment: str, field: str, component: str, repetition: str,
              document_types: Collection[str]) -> str:
    fields = segment.split(field)
    if len(fields) > 3:
        repetitions = []
        for rep in fields[3].split(repetition):
            parts = rep.split(component)
            if len(parts) >= 5 and parts[4] in document_types and parts[0]:
                parts[0] = mask_document(parts[0])
            repetitions.append(component.join(parts))
        fields[3] = repetition.join(repetitions)
    return field.join(fields)


def readable(raw: bytes, charset: str, document_types: Collection[str] = ()) -> str:
    """Kept bytes as text for staff: decoded as declared (MSH-18), segments on their own
    lines, ID numbers masked. Undecodable bytes show as U+FFFD rather than failing."""
    text = raw.decode(CHARSETS.get(charset.upper(), "utf-8"), errors="replace")
    return mask_id_numbers(text, document_types).replace("\r\n", "\n").replace("\r", "\n")
