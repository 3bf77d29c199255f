"""The simulated HIS's state and business: ``HisSimulator.handle(payload) -> answer payload``.

It keeps a patient index, a pool of numbered slots (号源) allotted to the wallet channel and the
appointments made on them, and answers the registration flow's messages (docs/hl7-profile.md).
Fault knobs (latency, random AE, dropped connections, refused connections) are attributes that
tests may change while it runs.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from adapter.his.codes import (
    APPLICATION_INTERNAL_ERROR,
    TABLE_VALUE_NOT_FOUND,
    UNKNOWN_KEY,
    UNSUPPORTED_EVENT_CODE,
    UNSUPPORTED_MESSAGE_TYPE,
)
from adapter.his.header import Header, HeaderError, build_ack, build_nak, decode_message
from adapter.his.mllp import DropConnection
from adapter.his.profile import Hl7Profile
from adapter.his.queue import is_queue_query, parse_adt_a10, parse_queue_query
from adapter.his.schedule import parse_siu
from adapter.his.segments import MessageError, dtm
from adapter.his.simulator import cashier_wire, settlement_wire, wire
from adapter.his.simulator.cashier import Cashier
from adapter.his.simulator.clinic_wire import build_queue_sqr
from adapter.mappings import Doctor, Mappings
from adapter.ports import (
    ArrivalNotice,
    HisSettlement,
    PatientIdentity,
    QueueEvent,
    SettlementChannel,
    SettlementKind,
    SlotRecord,
)
from adapter.ports_billing import SettlementRecord

logger = logging.getLogger(__name__)

SLOT_TAKEN = "SLOT_TAKEN"  # ERR-5: the HIS's own window sold the slot meanwhile
CLINIC_CLOSED = "CLINIC_CLOSED"  # ERR-5: the doctor's session was stopped
SESSIONS = ((dt.time(8, 0), dt.time(12, 0)), (dt.time(14, 0), dt.time(17, 0)))

# What the simulator's MSH-3/4 say (the adapter's profile is mirrored: HIS sends as MSH-5/6).
_SIM_PROFILE = Hl7Profile(his_facility="DEMO_HOSPITAL")

_DEMO_PATIENTS = (
    PatientIdentity("张伟", "M", dt.date(1985, 6, 12), "RESIDENT_ID", "110101198506121230",
                    "13800138001"),
    PatientIdentity("李娜", "F", dt.date(1992, 11, 3), "RESIDENT_ID", "310104199211032629",
                    "13900139002"),
    PatientIdentity("阿卜杜拉·买买提", "M", dt.date(1978, 2, 28), "RESIDENT_ID",
                    "650102197802281213", "13700137003"),
    PatientIdentity("王小明", "M", dt.date(2018, 4, 9), "RESIDENT_ID", "440305201804090034"),
    PatientIdentity("SMITH JOHN", "M", dt.date(1980, 1, 15), "PASSPORT", "E12345678",
                    "13600136004"),
    # Known to the hospital, not to any wallet: binds an uncertified account by HIS match.
    PatientIdentity("陈静", "F", dt.date(1990, 3, 8), "RESIDENT_ID", "110105199003081226",
                    "13800138005"),
)


@dataclass
class Appointment:
    """One appointment the HIS holds."""

    filler_appointment_id: str
    placer_appointment_id: str
    his_slot_id: str
    his_patient_id: str
    status: str = "booked"  # booked | cancelled
    fee_fen: int = 0


class HisSimulator:
    """The demo hospital's HIS: state under one lock, ``handle(payload) -> answer payload``."""

    def __init__(
        self,
        mappings: Mappings,
        *,
        tz: dt.tzinfo,
        today: dt.date | None = None,
        days: int = 7,
        slots_per_session: int = 10,
        latency_ms: int = 0,
        ae_rate: float = 0.0,
        drop_rate: float = 0.0,
        refuse_connections: bool = False,
        seed: int | None = None,
        profile: Hl7Profile = _SIM_PROFILE,
    ) -> None:
        self.mappings = mappings
        self.tz = tz  # the hospital's zone: slot times are seeded and messages dated in it
        self.profile = profile
        self.latency_ms = latency_ms
        self.ae_rate = ae_rate
        self.drop_rate = drop_rate
        self.refuse_connections = refuse_connections
        self._rng = random.Random(seed)  # faults only; not security relevant
        self._lock = threading.RLock()
        self._hl7_types = {c: d.hl7_type for c, d in mappings.document_types.items()}
        self._by_hl7 = {d.hl7_type: c for c, d in mappings.document_types.items()}
        self._patients: dict[str, PatientIdentity] = {}
        self._by_document: dict[tuple[str, str], str] = {}
        self._slots: dict[str, SlotRecord] = {}
        self._appointments: dict[str, Appointment] = {}
        self._by_placer: dict[str, str] = {}
        # What the HIS's cashier books show: a payment per appointment booked through the
        # wallet channel, a refund per one cancelled, and what the fault helpers add.
        self._settlements: list[HisSettlement] = []
        self._receipts = itertools.count(1)
        self._answers: dict[tuple[str, str], bytes] = {}  # (sender, MSH-10) -> answer
        # HIS id -> the day the adapter found the patient in, or added them to, the HIS: a
        # visit of that day for the laboratory (adapter.his.simulator.lab).
        self._arrivals: dict[str, dt.date] = {}
        self._patient_ids = itertools.count(123)
        self._filler_ids = itertools.count(1)
        self._control_ids = itertools.count(1)
        self._routes: dict[str, Callable[[str, Header], str]] = {
            "QBP^Q22": self._find_candidates,
            "ADT^A28": self._add_person,
            "SRM^S01": self._book,
            "SRM^S04": self._cancel_srm,
            "SIU^S15": self._cancel_siu,
            "SQM^S25": self._slot_pool,
            "QBP^Q13": self._settlement_list,
            "ADT^A10": self._arrive,
            **{f"QBP^{event}": self._billing for event in cashier_wire.EVENTS},
        }
        # Check-ins heard (ADT^A10): the filler id -> the arrival. The clinic's queue (the
        # demo's clinic day, adapter.his.simulator.clinic) makes such a patient Arrived.
        self._arrivals: dict[str, ArrivalNotice] = {}
        self.arrival_listeners: list[Callable[[ArrivalNotice], None]] = []
        # Answers queue snapshot queries: (doctor, date, session) -> each line's latest event
        # (the clinic hall's, when one plays); none: an empty queue.
        self.queue_source: Callable[[str, dt.date, str], list[QueueEvent]] | None = None
        # The cash desk (charges, locks, commits, refunds, the settlement list) and its knobs.
        self.cashier = Cashier(mappings, tz, profile, self._now)
        self._lose_answer = False
        self._seed_hospital(today or dt.datetime.now(tz).date(), days,
                            slots_per_session)
        for patient in _DEMO_PATIENTS:
            self._register(patient)

    # -- seeding -----------------------------------------------------------------------

    def open_slots_soon(self, now: dt.datetime, minutes: int = 20, capacity: int = 5) -> list[str]:
        """One slot per department starting about ``minutes`` from ``now`` (the demo's visit
        today, whose check-in window is open at once); returns their ids."""
        start = now.astimezone(self.tz).replace(second=0, microsecond=0)
        start += dt.timedelta(minutes=minutes + (-start.minute) % 5)
        opened = []
        with self._lock:
            seen: set[str] = set()
            for doctor in self.mappings.doctors.values():
                if doctor.department_code in seen:
                    continue
                seen.add(doctor.department_code)
                slot_id = f"{doctor.code}-{start:%Y%m%d%H%M}-SOON"
                self._slots[slot_id] = SlotRecord(
                    his_slot_id=slot_id, department_code=doctor.department_code,
                    doctor_code=doctor.code, service_code=doctor.service_code,
                    start_at=start, end_at=start + dt.timedelta(minutes=10), capacity=capacity,
                    available=capacity, fee_fen=self.mappings.fee_fen(doctor.service_code))
                opened.append(slot_id)
        return opened

    def _seed_hospital(self, today: dt.date, days: int, per_session: int) -> None:
        doctors = list(self.mappings.doctors.values())
        for day_offset in range(days):
            day = today + dt.timedelta(days=day_offset)
            for n, doctor in enumerate(doctors):
                # Every doctor is off one weekday (spread over the week); general clinics never.
                if not doctor.code.startswith("G") and (day.weekday() + n) % 7 == 6:
                    continue
                for session, (begin, finish) in enumerate(SESSIONS):
                    self._seed_session(doctor, day, session, begin, finish, per_session)
        # One doctor's clinic is closed on the third day (a "停诊" the wallet must show).
        if doctors and days > 2:
            self.close_clinic(doctors[0].code, today + dt.timedelta(days=2))

    def _seed_session(
        self, doctor: Doctor, day: dt.date, session: int, begin: dt.time, finish: dt.time,
        per_session: int,
    ) -> None:
        start = dt.datetime.combine(day, begin, self.tz)
        minutes = int((dt.datetime.combine(day, finish) - dt.datetime.combine(day, begin))
                      .total_seconds() // 60)
        step = max(minutes // per_session, 5)
        fee = self.mappings.fee_fen(doctor.service_code)
        for number in range(1, per_session + 1):
            slot_start = start + dt.timedelta(minutes=step * (number - 1))
            half_day = "AP"[session]
            slot_id = f"{doctor.code}-{day:%Y%m%d}-{half_day}{number:02d}"
            self._slots[slot_id] = SlotRecord(
                his_slot_id=slot_id,
                department_code=doctor.department_code,
                doctor_code=doctor.code,
                service_code=doctor.service_code,
                start_at=slot_start,
                end_at=slot_start + dt.timedelta(minutes=step),
                capacity=1,
                available=1,
                fee_fen=fee,
            )

    def _register(self, patient: PatientIdentity) -> PatientIdentity:
        key = (patient.document_type, patient.document_number)
        if key in self._by_document:
            return self._patients[self._by_document[key]]
        his_id = f"P{next(self._patient_ids):06d}"
        stored = replace(patient, his_patient_id=his_id)
        self._patients[his_id] = stored
        self._by_document[key] = his_id
        return stored

    # -- helpers for tests ---------------------------------------------------------------

    @property
    def patients(self) -> dict[str, PatientIdentity]:
        """Patients by HIS id (a copy)."""
        with self._lock:
            return dict(self._patients)

    @property
    def appointments(self) -> dict[str, Appointment]:
        """Appointments by filler id (a copy)."""
        with self._lock:
            return dict(self._appointments)

    @property
    def slots(self) -> dict[str, SlotRecord]:
        """The wallet channel's pool by HIS slot id (a copy)."""
        with self._lock:
            return dict(self._slots)

    def day_visitors(self, day: dt.date) -> list[PatientIdentity]:
        """The patients seen on ``day``: an appointment that day, or arrived through the
        adapter (found or added) that day; in the order the HIS met them."""
        with self._lock:
            ids = [his_id for his_id, arrived in self._arrivals.items() if arrived == day]
            for appointment in self._appointments.values():
                slot = self._slots.get(appointment.his_slot_id)
                if (appointment.status == "booked" and slot is not None
                        and slot.start_at.astimezone(self.tz).date() == day
                        and appointment.his_patient_id not in ids):
                    ids.append(appointment.his_patient_id)
            return [self._patients[his_id] for his_id in ids if his_id in self._patients]

    def take_slot_in_his(self, his_slot_id: str) -> None:
        """The HIS's own window sold the slot: it is no longer available."""
        with self._lock:
            self._slots[his_slot_id] = replace(self._slots[his_slot_id], available=0)

    @property
    def arrivals(self) -> dict[str, ArrivalNotice]:
        """The check-ins heard, by filler appointment id."""
        with self._lock:
            return dict(self._arrivals)

    def close_clinic(self, doctor_code: str, date: dt.date) -> int:
        """Stop a doctor's clinic on a date (停诊); returns how many slots were closed."""
        with self._lock:
            closed = 0
            for slot_id, slot in self._slots.items():
                if slot.doctor_code == doctor_code and slot.start_at.date() == date:
                    self._slots[slot_id] = replace(slot, status="closed", available=0)
                    closed += 1
            return closed

    def bill_settlement_list(self, day: dt.date) -> list[SettlementRecord]:
        """The cash desk's payments and refunds of a day (bills; QBP^ZB6)."""
        with self._lock:
            return self.cashier.settlement_list(day)

    def consultation_finished(self, his_patient_id: str, visit_number: str,
                              department_code: str) -> bytes:
        """The doctor's orders after a consult: charges issued, and the DFT^P03 the HIS sends
        the adapter's listener about them."""
        with self._lock:
            lines = self.cashier.issue_charges(his_patient_id, visit_number, department_code)
            return cashier_wire.build_dft_charges(
                self.profile, self._next_control_id(), self._now(), his_patient_id,
                lines).encode("utf-8")

    # -- MLLP entry points ---------------------------------------------------------------

    def on_connect(self, conn: socket.socket, peer: tuple) -> bool:
        """MllpServer hook: refuse connections while ``refuse_connections`` is set."""
        return not self.refuse_connections

    def handle(self, payload: bytes) -> bytes:
        """Answer one message; retransmissions (same sender and MSH-10) get the same answer."""
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        try:
            text, header = decode_message(payload)
        except HeaderError as exc:
            logger.info("HIS simulator: unreadable message (%s)", exc.code)
            return self._encode(self._nak(exc))
        key = (header.sender, header.control_id)
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                logger.info("HIS simulator: retransmission of %s answered again",
                            header.control_id)
            elif self.ae_rate and self._rng.random() < self.ae_rate:
                # A transient failure with no effect: not remembered, a retransmission retries.
                logger.info("HIS simulator: injected AE for %s", header.control_id)
                answer = self._encode(
                    self._ack(header, "AE", APPLICATION_INTERNAL_ERROR, "simulated HIS failure")
                )
            else:
                answer = self._encode(self._answer(text, header))
                self._answers[key] = answer
            lose, self._lose_answer = self._lose_answer, False  # a commit answer the knob loses
        if lose or (self.drop_rate and self._rng.random() < self.drop_rate):
            # The answer is kept: the retransmission after reconnecting gets it (no second effect).
            raise DropConnection(answer[: len(answer) // 2])
        return answer

    def _answer(self, text: str, header: Header) -> str:
        route = self._routes.get(header.message_type)
        if route is None:
            known = {r.split("^")[0] for r in self._routes}
            code = (UNSUPPORTED_EVENT_CODE if header.message_code in known
                    else UNSUPPORTED_MESSAGE_TYPE)
            logger.info("HIS simulator: %s %s not supported", header.message_type,
                        header.control_id)
            return self._ack(header, "AR", code, f"{header.message_type} not supported")
        try:
            answer = route(text, header)
        except MessageError as exc:
            logger.info("HIS simulator: %s %s refused (%s)", header.message_type,
                        header.control_id, exc.code)
            return self._ack(header, "AE", exc.code, exc.text)
        logger.info("HIS simulator: answered %s %s", header.message_type, header.control_id)
        return answer

    def _encode(self, text: str) -> bytes:
        return text.encode("utf-8")

    def _next_control_id(self) -> str:
        return f"HIS{next(self._control_ids):08d}"

    def _now(self) -> dt.datetime:
        return dt.datetime.now(self.tz)

    def _ack(self, header: Header, code: str, error_code: str = "", error_text: str = "") -> str:
        return build_ack(
            header, code, sending_application=self.profile.his_application,
            sending_facility=self.profile.his_facility, error_code=error_code,
            error_text=error_text, control_id=self._next_control_id(),
            timestamp=dtm(self._now()), charset=self.profile.charset,
        )

    def _nak(self, exc: HeaderError) -> str:
        if exc.header is not None and exc.header.control_id:
            return self._ack(exc.header, "AE", exc.code, exc.message)
        return build_nak(
            sending_application=self.profile.his_application,
            sending_facility=self.profile.his_facility, error_code=exc.code,
            error_text=exc.message, control_id=self._next_control_id(),
            timestamp=dtm(self._now()), charset=self.profile.charset,
        )

    # -- the HIS's business --------------------------------------------------------------

    def _find_candidates(self, text: str, header: Header) -> str:
        query_tag, id_type, number = wire.parse_qbp_q22(text)
        document_type = self._by_hl7.get(id_type)
        error = None
        found: list[PatientIdentity] = []
        if document_type is None:
            error = MessageError(TABLE_VALUE_NOT_FOUND, f"identifier type {id_type} unknown")
        else:
            his_id = self._by_document.get((document_type, number))
            found = [self._patients[his_id]] if his_id else []
            if his_id:
                self._arrivals.setdefault(his_id, self._now().date())
        return wire.build_rsp_k22(
            self.profile, self._next_control_id(), self._now(), request=header,
            query_tag=query_tag, patients=found, hl7_id_types=self._hl7_types, error=error,
        )

    def _add_person(self, text: str, header: Header) -> str:
        # A person already in the index (same document) is answered AA and kept as one record,
        # as most HIS do: the sender cannot tell a retry from a duplicate, and a QBP^Q22 then
        # returns the one HIS id.
        patient = wire.parse_adt_a28(text, self._by_hl7)
        stored = self._register(replace(patient, his_patient_id=""))
        self._arrivals.setdefault(stored.his_patient_id, self._now().date())
        logger.info("HIS simulator: patient %s in index (%s)", stored.his_patient_id,
                    header.control_id)
        return self._ack(header, "AA")

    def _srr_refused(self, header: Header, placer: str, code: str, text: str,
                     trigger: str = "S01") -> str:
        return wire.build_srr(
            self.profile, self._next_control_id(), self._now(), request=header,
            trigger=trigger, accepted=False, placer_appointment_id=placer, error_code=code,
            error_text=text,
        )

    def _book(self, text: str, header: Header) -> str:
        request = wire.parse_srm(text, self.tz)
        placer = request.placer_appointment_id
        existing = self._by_placer.get(placer)
        if existing and self._appointments[existing].status == "booked":
            # Same booking sent again under a new MSH-10: idempotent on the placer id.
            appointment = self._appointments[existing]
            return self._srr_ok(header, "S01", appointment)
        if request.his_patient_id not in self._patients:
            return self._srr_refused(header, placer, UNKNOWN_KEY, "unknown patient")
        slot = self._slots.get(request.his_slot_id)
        if slot is None:
            return self._srr_refused(header, placer, UNKNOWN_KEY, "unknown slot")
        if slot.status == "closed":
            return self._srr_refused(header, placer, CLINIC_CLOSED, "clinic closed")
        if slot.available <= 0:
            return self._srr_refused(header, placer, SLOT_TAKEN, "slot already taken")
        appointment = Appointment(
            filler_appointment_id=f"A{next(self._filler_ids):08d}",
            placer_appointment_id=placer,
            his_slot_id=slot.his_slot_id,
            his_patient_id=request.his_patient_id,
        )
        self._appointments[appointment.filler_appointment_id] = appointment
        self._by_placer[placer] = appointment.filler_appointment_id
        self._slots[slot.his_slot_id] = replace(slot, available=slot.available - 1)
        appointment.fee_fen = slot.fee_fen
        self._settle(SettlementKind.PAYMENT, appointment)
        logger.info("HIS simulator: booked %s on %s", appointment.filler_appointment_id,
                    slot.his_slot_id)
        return self._srr_ok(header, "S01", appointment)

    def _srr_ok(self, header: Header, trigger: str, appointment: Appointment) -> str:
        return wire.build_srr(
            self.profile, self._next_control_id(), self._now(), request=header,
            trigger=trigger, accepted=True,
            placer_appointment_id=appointment.placer_appointment_id,
            filler_appointment_id=appointment.filler_appointment_id,
            his_slot_id=appointment.his_slot_id,
        )

    def _release(self, filler_id: str) -> Appointment | None:
        """Cancel an appointment and free its slot; None when unknown. Idempotent."""
        appointment = self._appointments.get(filler_id)
        if appointment is None:
            return None
        if appointment.status == "booked":
            appointment.status = "cancelled"
            self._settle(SettlementKind.REFUND, appointment)
            slot = self._slots.get(appointment.his_slot_id)
            if slot is not None and slot.status == "open":
                self._slots[slot.his_slot_id] = replace(
                    slot, available=min(slot.capacity, slot.available + 1)
                )
            logger.info("HIS simulator: cancelled %s", filler_id)
        return appointment

    def _cancel_srm(self, text: str, header: Header) -> str:
        request = wire.parse_srm(text, self.tz)
        appointment = self._release(request.filler_appointment_id)
        if appointment is None:
            return self._srr_refused(header, request.placer_appointment_id, UNKNOWN_KEY,
                                     "unknown appointment", trigger="S04")
        return self._srr_ok(header, "S04", appointment)

    def _cancel_siu(self, text: str, header: Header) -> str:
        event = parse_siu(text, self.tz)
        if self._release(event.filler_appointment_id) is None:
            return self._ack(header, "AE", UNKNOWN_KEY, "unknown appointment")
        return self._ack(header, "AA")

    def _arrive(self, text: str, header: Header) -> str:
        notice = parse_adt_a10(text, self.tz)
        filler = notice.filler_appointment_id or self._by_placer.get(
            notice.placer_appointment_id, "")
        appointment = self._appointments.get(filler)
        if appointment is None or appointment.status != "booked":
            return self._ack(header, "AE", UNKNOWN_KEY, "unknown appointment")
        first = filler not in self._arrivals
        self._arrivals.setdefault(filler, notice)
        if first:
            for listener in self.arrival_listeners:
                listener(notice)
        return self._ack(header, "AA")
    def _billing(self, text: str, header: Header) -> str:
        answer, self._lose_answer = self.cashier.answer(text, header, self._next_control_id())
        return answer

    def _slot_pool(self, text: str, header: Header) -> str:
        if is_queue_query(text):
            doctor, date, session = parse_queue_query(text)
            lines = self.queue_source(doctor, date, session) if self.queue_source else []
            return build_queue_sqr(self.profile, self._next_control_id(), self._now(),
                                   request=header, doctor_code=doctor, lines=lines)
        query_tag, start, end = wire.parse_sqm_s25(text)
        slots = sorted(
            (s for s in self._slots.values() if start <= s.start_at.date() <= end),
            key=lambda s: (s.start_at, s.his_slot_id),
        )
        locations = {c: d.location for c, d in self.mappings.departments.items()}
        return wire.build_sqr_s25(
            self.profile, self._next_control_id(), self._now(), request=header,
            query_tag=query_tag, slots=slots, locations=locations,
        )

    # -- the cashier's books: settlements and their faults -------------------------------

    def _settle(self, kind: SettlementKind, appointment: Appointment,
                channel: SettlementChannel = SettlementChannel.WALLET) -> HisSettlement:
        with self._lock:
            entry = HisSettlement(
                f"{'S' if kind is SettlementKind.PAYMENT else 'T'}{next(self._receipts):08d}",
                kind, channel, appointment.fee_fen, self._now(),
                placer_id=appointment.placer_appointment_id)
            self._settlements.append(entry)
            return entry

    @property
    def settlements(self) -> list[HisSettlement]:
        """Every settlement so far (a copy)."""
        with self._lock:
            return list(self._settlements)

    def window_refund(self, placer_id: str) -> HisSettlement:
        """The patient cancelled at the window and was paid back in cash (退号 at the window):
        the appointment is cancelled and the refund is the window's, not the wallet's."""
        with self._lock:
            appointment = self._appointments[self._by_placer[placer_id]]
            appointment.status = "cancelled"
            return self._settle(SettlementKind.REFUND, appointment, SettlementChannel.WINDOW)

    def drop_settlement(self, placer_id: str) -> int:
        """Forget the payments posted for a placer id (a posting lost in the HIS); how many."""
        with self._lock:
            kept = [e for e in self._settlements
                    if not (e.placer_id == placer_id and e.kind is SettlementKind.PAYMENT)]
            dropped = len(self._settlements) - len(kept)
            self._settlements = kept
            return dropped

    def add_settlement(self, entry: HisSettlement) -> None:
        """A settlement the HIS books by itself (a posting with no wallet money behind it)."""
        with self._lock:
            self._settlements.append(entry)

    def _settlement_list(self, text: str, header: Header) -> str:
        query_tag, day = settlement_wire.parse_qbp_q13(text)
        with self._lock:
            entries = [e for e in self._settlements if e.at.astimezone(self.tz).date() == day]
            # The cash desk's bills (wallet and window) are on the same list, as in a HIS.
            entries += [HisSettlement(
                receipt_no=r.receipt_no, kind=r.kind, channel=SettlementChannel(r.channel),
                amount_fen=r.amount_fen, at=r.at, out_trade_no=r.out_trade_no,
                placer_id=r.settlement_no) for r in self.cashier.settlement_list(day)]
        return settlement_wire.build_rtb_k13(
            self.profile, self._next_control_id(), self._now(), request=header,
            query_tag=query_tag, day=day, settlements=entries, tz=self.tz)
