"""The demo's consulting hall: the HIS's queue moving after a wallet check-in.

When the adapter tells the simulator that a patient arrived (ADT^A10), the HIS puts them in
their doctor's queue behind the patients already waiting there (walk-ins and window
registrations), then the doctor calls the line, one consult after another: consult lengths
are drawn from the doctor's skewed (lognormal) law of the clinic day generator
(adapter.his.simulator.clinic), played ``time_scale`` times faster than life. Each change goes
to the adapter's listener as the SIU^S14 the HIS would send (clinic_wire), so the patient's
page and pushes follow the queue exactly as they would in a hospital.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
import random
import threading
import time
from collections.abc import Callable

from adapter.his.profile import Hl7Profile
from adapter.his.simulator.clinic import clinic_doctors
from adapter.his.simulator.clinic_wire import build_queue_siu
from adapter.ports import ArrivalNotice, QueueEvent, QueueEventKind, session_of

logger = logging.getLogger(__name__)

# What the HIS's own messages say in MSH-3..6 (the adapter's profile, mirrored).
HIS_SIDE = Hl7Profile(sending_application="HIS", sending_facility="DEMO_HOSPITAL",
                      his_application="FHA", his_facility="WALLET")
K = QueueEventKind


class ClinicHall:
    """Plays a doctor's queue for each wallet check-in the simulator hears."""

    def __init__(self, simulator: object, send: Callable[[str], object], *, tz: dt.tzinfo,
                 time_scale: float = 60.0, ahead: int = 3, seed: int | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.simulator, self.send, self.tz = simulator, send, tz
        self.time_scale, self.ahead, self.sleep = time_scale, ahead, sleep
        self._rng = random.Random(seed)  # the demo's consult lengths; not security relevant
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # one send at a time on the shared connection
        # (doctor, date, session) -> visit -> its latest event: the HIS's queue now, which
        # answers a queue snapshot query (SQM^S25, QRD-9 QUEUE).
        self.queues: dict[tuple[str, dt.date, str], dict[str, QueueEvent]] = {}

    def snapshot(self, doctor_code: str, visit_date: dt.date, session: str) -> list[QueueEvent]:
        """Each registration of the session with its latest event."""
        with self._lock:
            return list(self.queues.get((doctor_code, visit_date, session), {}).values())

    def on_arrival(self, notice: ArrivalNotice) -> None:
        """The simulator's arrival listener: play the queue in the background (the ADT^A10's
        ACK must not wait for the whole session)."""
        threading.Thread(target=self.play, args=(notice,), daemon=True,
                         name="clinic-hall").start()

    def play(self, notice: ArrivalNotice) -> int:
        """The queue of the patient's doctor, from their check-in to the end of their consult;
        returns how many events were sent."""
        appointment = self.simulator.appointments.get(notice.filler_appointment_id)
        slot = self.simulator.slots.get(appointment.his_slot_id) if appointment else None
        if slot is None:
            logger.info("clinic hall: no appointment %s", notice.filler_appointment_id)
            return 0
        doctor = clinic_doctors(1, codes=(slot.doctor_code,))[0]
        stamp = f"{dt.datetime.now(dt.UTC):%H%M%S}"
        tag = f"{slot.start_at.astimezone(self.tz):%Y%m%d}{slot.doctor_code}{stamp}"
        sent = 0

        def tell(number: int, kind: QueueEventKind, placer: str = "", patient: str = "") -> None:
            nonlocal sent
            event = QueueEvent(
                f"H{tag}{next(self._ids):04d}", slot.doctor_code,
                slot.start_at.astimezone(self.tz).date(), session_of(slot.start_at, self.tz),
                f"{tag}{number:03d}", kind, dt.datetime.now(self.tz), 0, number,
                his_patient_id=patient or f"P{900000 + number}", placer_id=placer,
                room=doctor.room, slot_start=slot.start_at)
            with self._lock:
                self.queues.setdefault((event.doctor_code, event.visit_date, event.session),
                                       {})[event.visit_number] = event
                self.send(build_queue_siu(HIS_SIDE, event, location=notice.location,
                                          department_code=slot.department_code))
            sent += 1

        def minutes(length: float) -> None:
            if self.time_scale:
                self.sleep(length * 60 / self.time_scale)

        for number in range(1, self.ahead + 1):  # already in the line: the window, walk-ins
            tell(number, K.REGISTERED)
            tell(number, K.ARRIVED)
        ours = self.ahead + 1
        tell(ours, K.REGISTERED, notice.placer_appointment_id, notice.his_patient_id)
        tell(ours, K.ARRIVED, notice.placer_appointment_id, notice.his_patient_id)
        for number in range(1, ours + 1):
            placer = notice.placer_appointment_id if number == ours else ""
            patient = notice.his_patient_id if number == ours else ""
            minutes(doctor.gap_minutes)
            tell(number, K.CALLED, placer, patient)
            minutes(doctor.consult_median * math.exp(self._rng.gauss(0, doctor.consult_sigma)))
            tell(number, K.FINISHED, placer, patient)
        # The doctor's orders after the consult: the cash desk's charges, sent as DFT^P03.
        charges = self.simulator.consultation_finished(
            notice.his_patient_id, f"{tag}{ours:03d}", slot.department_code)
        with self._lock:
            self.send(charges.decode("utf-8"))
        logger.info("clinic hall: played %d queue events for %s", sent,
                    notice.placer_appointment_id)
        return sent
