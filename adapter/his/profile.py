"""The hospital's HL7 profile: which message types and fields this HIS uses.

Read from ``mappings/hl7_profile.toml`` so that a hospital changes data, not code, when its HIS
speaks another dialect (docs/hl7-profile.md describes every key).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from adapter.his.codes import QUEUE_STATUSES

CANCEL_MESSAGES = ("SRM^S04", "SIU^S15")
SLOT_SYNC_MODES = ("query", "notify", "both")


class ProfileError(ValueError):
    """The HL7 profile file is missing a key or has a value the adapter cannot use."""


@dataclass(frozen=True)
class Hl7Profile:
    """Message types, application names and identifier conventions of one hospital's HIS."""

    version: str = "2.5"
    sending_application: str = "FHA"  # MSH-3 of what the adapter sends
    sending_facility: str = "WALLET"  # MSH-4
    his_application: str = "HIS"  # MSH-5
    his_facility: str = "HOSPITAL"  # MSH-6
    processing_id: str = "P"  # MSH-11: P production, T training, D debugging
    charset: str = "UNICODE UTF-8"  # MSH-18 of what the adapter sends (HL7 table 0211)
    his_assigning_authority: str = "HIS"  # PID-3.4 of the HIS's own patient id
    his_identifier_type: str = "PI"  # PID-3.5 of the HIS's patient id (table 0203)
    booking_message: str = "SRM^S01"
    cancel_message: str = "SRM^S04"  # or SIU^S15
    slot_sync: str = "query"  # query (SQM^S25), notify (SIU^S12/S15/S17) or both
    slot_sync_days: int = 7
    # How the worker checks that the HIS application answers: "query" (a QBP^Q22 for a document
    # number no patient has; any answer, AE included, proves it is up) or "none".
    link_check: str = "query"
    # Where unpaid charges come from: "notify" (DFT^P03 on the listener), "query" (QBP^ZB1
    # when the patient opens their bills) or "both".
    charge_source: str = "notify"
    # The phones of the HIS's patient index were confirmed by the hospital itself (a code at
    # the registration window): a real-name binding that matches name, document and phone
    # against it needs no SMS code of ours (adapter/identity/binding.py).
    patient_phone_confirmed: bool = False
    # Largest report (OBX of type ED, e.g. a PDF) kept from an ORU^R01, in decoded bytes.
    result_attachment_max_bytes: int = 8 * 1024 * 1024
    # Inbound message types the listener accepts (AA); anything else is answered AR.
    inbound: tuple[str, ...] = field(
        default=("ORU^R01", "SIU^S12", "SIU^S13", "SIU^S14", "SIU^S15", "SIU^S17",
                 "SIU^S26", "DFT^P03", "ADT^A08", "ADT^A31")
    )

    # SCH-25 filler status of a queue event (lower case) -> what happened (QueueEventKind's
    # value): mappings/queue.toml [sch25], read by load_queue_statuses.
    queue_statuses: Mapping[str, str] = field(default_factory=lambda: dict(QUEUE_STATUSES))
    # The HIS's whole queue of a session, to repair what events missed: "query" (SQM^S25 with
    # QRD-9 QUEUE, answered SQR^S25, every queue_snapshot_seconds) or "none".
    queue_snapshot: str = "none"
    queue_snapshot_seconds: int = 120

    def validate(self) -> None:
        """Raise ProfileError naming the first unusable value."""
        if self.cancel_message not in CANCEL_MESSAGES:
            raise ProfileError(
                f"cancel_message must be one of {', '.join(CANCEL_MESSAGES)}, "
                f"not {self.cancel_message!r}"
            )
        if self.booking_message != "SRM^S01":
            # SIU^S12 booking (for a HIS that takes notifications only) is not built yet.
            raise ProfileError(f"booking_message must be SRM^S01, not {self.booking_message!r}")
        if self.slot_sync not in SLOT_SYNC_MODES:
            raise ProfileError(f"slot_sync must be one of {', '.join(SLOT_SYNC_MODES)}")
        if self.charge_source not in ("notify", "query", "both"):
            raise ProfileError("charge_source must be notify, query or both")
        if self.link_check not in ("query", "none"):
            raise ProfileError("link_check must be query or none")
        if self.queue_snapshot not in ("query", "none"):
            raise ProfileError("queue_snapshot must be query or none")
        if not 10 <= self.queue_snapshot_seconds <= 3600:
            raise ProfileError("queue_snapshot_seconds must be between 10 and 3600")
        if self.processing_id not in ("P", "T", "D"):
            raise ProfileError("processing_id must be P, T or D (HL7 table 0103)")
        if not 1 <= self.slot_sync_days <= 60:
            raise ProfileError("slot_sync_days must be between 1 and 60")
        if not 0 < self.result_attachment_max_bytes <= 16 * 1024 * 1024:
            raise ProfileError("result_attachment_max_bytes must be between 1 and 16777216")
        for mtype in self.inbound:
            code, _, event = mtype.partition("^")
            if len(code) != 3 or len(event) != 3:
                raise ProfileError(f"inbound message type {mtype!r} is not of the form ORU^R01")


def load_profile(path: Path) -> Hl7Profile:
    """Read and validate a profile file; a missing file gives the defaults."""
    if not path.exists():
        profile = Hl7Profile()
        profile.validate()
        return profile
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: {exc}") from exc
    known = set(Hl7Profile.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ProfileError(f"{path}: unknown key(s) {', '.join(unknown)}")
    if "inbound" in data:
        data["inbound"] = tuple(data["inbound"])
    try:
        profile = Hl7Profile(**data)
        profile.validate()
    except (TypeError, ProfileError) as exc:
        raise ProfileError(f"{path}: {exc}") from exc
    return profile


QUEUE_EVENT_KINDS = frozenset(QUEUE_STATUSES.values())


def load_queue_statuses(profile: Hl7Profile, path: Path) -> Hl7Profile:
    """The profile with the SCH-25 mapping of ``path``'s ``[sch25]`` table (mappings/queue.toml;
    the rest of that file is queueing's). Without the file or the table, the defaults stay."""
    if not path.exists():
        return profile
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("sch25")
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: {exc}") from exc
    if table is None:
        return profile
    if not isinstance(table, dict) or not table:
        raise ProfileError(f"{path}: [sch25] must map SCH-25 values to queue events")
    statuses: dict[str, str] = {}
    for code, kind in table.items():
        if not isinstance(kind, str) or kind not in QUEUE_EVENT_KINDS:
            raise ProfileError(f"{path}: [sch25] {code} must be one of "
                               f"{', '.join(sorted(QUEUE_EVENT_KINDS))}")
        statuses[code.lower()] = kind
    return replace(profile, queue_statuses=statuses)
