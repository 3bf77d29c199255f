"""The ports through which use cases reach the HIS (and, later, the wallet).

The use-case modules import only this module's types, never hl7apy or sockets: adapter/his/
implements :class:`HisGateway` over HL7 v2.5/MLLP and tests pass fakes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class PatientIdentity:
    """A person as the HIS knows them (PID segment)."""

    name: str
    sex: str  # HL7 table 0001 code: F, M, U
    birth_date: dt.date
    document_type: str  # mappings/document_types.csv code, e.g. RESIDENT_ID
    document_number: str
    phone: str = ""
    his_patient_id: str = ""  # PID-3 with the HIS's own assigning authority, once known


@dataclass(frozen=True)
class SlotRecord:
    """One bookable slot of the pool the HIS allots to the wallet channel (SQR^S25 / SIU)."""

    his_slot_id: str
    department_code: str
    doctor_code: str
    service_code: str  # registration type; its fee item is in mappings/fee_items.csv
    start_at: dt.datetime  # timezone-aware
    end_at: dt.datetime
    capacity: int
    available: int
    fee_fen: int
    status: str = "open"  # open | closed (clinic stopped)


@dataclass(frozen=True)
class AppointmentRequest:
    """What the adapter asks the HIS to book (SRM^S01)."""

    placer_appointment_id: str  # our booking id, SCH-1
    his_slot_id: str
    his_patient_id: str
    department_code: str
    doctor_code: str
    service_code: str
    start_at: dt.datetime
    end_at: dt.datetime


@dataclass(frozen=True)
class HisOutcome:
    """The HIS's answer to a request: accepted, or refused with a code the patient can be told."""

    accepted: bool
    filler_appointment_id: str = ""  # SCH-2, kept for cancellation
    error_code: str = ""  # HL7 table 0357 code, or the HIS's own in ERR-5
    error_text: str = ""
    details: dict[str, str] = field(default_factory=dict)


class HisUnavailable(Exception):
    """The HIS could not be reached or did not answer in time; the outcome is unknown."""


class HisRefused(Exception):
    """The HIS answered and refused; ``outcome`` says why."""

    def __init__(self, outcome: HisOutcome) -> None:
        super().__init__(outcome.error_code or "refused")
        self.outcome = outcome


class HisGateway(Protocol):
    """What the adapter needs from the HIS."""

    def find_patient(self, document_type: str, document_number: str) -> PatientIdentity | None:
        """Look a patient up by document (QBP^Q22 -> RSP^K22)."""
        ...

    def register_patient(self, patient: PatientIdentity) -> PatientIdentity:
        """Add a person to the HIS patient index (ADT^A28) and return them with their HIS id."""
        ...

    def book_appointment(self, request: AppointmentRequest) -> HisOutcome:
        """Ask the HIS to book (SRM^S01 -> SRR^S01)."""
        ...

    def cancel_appointment(
        self, placer_appointment_id: str, filler_appointment_id: str, his_slot_id: str
    ) -> HisOutcome:
        """Ask the HIS to cancel (SRM^S04 or SIU^S15, per the hospital's HL7 profile)."""
        ...

    def query_slot_pool(self, start: dt.date, end: dt.date) -> list[SlotRecord]:
        """Read the wallet channel's slot pool for a date range (SQM^S25 -> SQR^S25)."""
        ...
