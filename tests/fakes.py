"""Fakes of the ports, for use-case tests."""

from __future__ import annotations

import datetime as dt

from adapter.ports import (
    AppointmentRequest,
    HisOutcome,
    HisUnavailable,
    PatientIdentity,
    SlotRecord,
)


class FakeHis:
    """An in-memory HisGateway."""

    def __init__(self, slots: list[SlotRecord] | None = None) -> None:
        self.slots = list(slots or [])
        self.patients: dict[tuple[str, str], PatientIdentity] = {}
        self.down = False
        self.booked: list[AppointmentRequest] = []

    def _check(self) -> None:
        if self.down:
            raise HisUnavailable("fake HIS is down")

    def find_patient(self, document_type: str, document_number: str) -> PatientIdentity | None:
        self._check()
        return self.patients.get((document_type, document_number))

    def register_patient(self, patient: PatientIdentity) -> PatientIdentity:
        self._check()
        stored = PatientIdentity(**{**patient.__dict__,
                                    "his_patient_id": f"P{len(self.patients) + 1:06d}"})
        self.patients[(patient.document_type, patient.document_number)] = stored
        return stored

    def book_appointment(self, request: AppointmentRequest) -> HisOutcome:
        self._check()
        self.booked.append(request)
        return HisOutcome(True, filler_appointment_id=f"F{len(self.booked)}")

    def cancel_appointment(self, placer_appointment_id: str, filler_appointment_id: str,
                           his_slot_id: str) -> HisOutcome:
        self._check()
        return HisOutcome(True, filler_appointment_id=filler_appointment_id)

    def query_slot_pool(self, start: dt.date, end: dt.date) -> list[SlotRecord]:
        self._check()
        return [s for s in self.slots if start <= s.start_at.date() <= end]


class FakeWallet:
    """An in-memory WalletGateway with users behind auth codes."""

    def __init__(self) -> None:
        from adapter.ports import WalletUser

        self.users: dict[str, WalletUser] = {}
        self.trades: dict[str, dict] = {}
        self.messages: list[tuple[str, str]] = []
        self.down = False
        self._user_type = WalletUser

    def add_user(self, auth_code: str, **fields) -> None:
        self.users[auth_code] = self._user_type(**fields)

    def exchange_auth_code(self, auth_code: str):
        from adapter.ports import WalletRefused, WalletUnavailable

        if self.down:
            raise WalletUnavailable("fake wallet down")
        user = self.users.pop(auth_code, None)  # single use, like the platform's
        if user is None:
            raise WalletRefused("40002", "isv.code-invalid", "invalid auth code")
        return user

    def push_message(self, user_id: str, text: str, url: str = "") -> None:
        self.messages.append((user_id, text))
