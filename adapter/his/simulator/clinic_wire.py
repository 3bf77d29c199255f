"""The HIS's side of the queue: a clinic day's events as SIU^S14, played over MLLP.

The mirror of adapter.his.queue. ``play`` sends a day's events in the order they happened,
waiting between them ``time_scale`` times faster than the clinic lived them (0: no waiting).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable

from adapter.his.codes import QUEUE_REASON, QUEUE_STATUSES
from adapter.his.header import Header, escape
from adapter.his.profile import Hl7Profile
from adapter.his.segments import Grp, Seg, build_message, dtm, person
from adapter.ports import QueueEvent

STATUS_OF = {kind: status.capitalize() for status, kind in QUEUE_STATUSES.items()}


def build_queue_siu(profile: Hl7Profile, event: QueueEvent, *, location: str = "",
                    department_code: str = "") -> str:
    """One queue event as the HIS sends it (MSH-10 the event id, MSH-13 its sequence)."""
    start = dtm(event.slot_start or event.occurred_at)
    sch = Seg("SCH", {
        1: f"{escape(event.placer_id)}^{escape(profile.his_application)}"
        if event.placer_id else "",
        2: f"{escape(event.visit_number)}^{escape(profile.sending_application)}",
        3: str(event.queue_number) if event.queue_number else "",
        6: f"{QUEUE_REASON}^Queue event",
        16: person(profile),
        20: person(profile),
        25: STATUS_OF[event.kind.value],
    })
    patient: list[Seg | Grp] = []
    pid = Seg("PID", {1: "1", 3: f"{escape(event.his_patient_id)}^^^HIS^PI"
                      if event.his_patient_id else "", 5: "^^^^^^U"})
    pv1 = Seg("PV1", {1: "1", 2: "O", 3: f"{escape(location)}^{escape(event.room)}"})
    patient.append(Grp("SIU_S12_PATIENT", [pid, pv1]))
    resources = Grp("SIU_S12_RESOURCES", [
        Seg("RGS", {1: "1"}),
        Grp("SIU_S12_LOCATION_RESOURCE", [Seg("AIL", {
            1: "1", 3: escape(location), 4: "C", 5: escape(department_code)})]),
        Grp("SIU_S12_PERSONNEL_RESOURCE", [Seg("AIP", {
            1: "1", 3: escape(event.doctor_code), 4: "D^Doctor"})]),
    ])
    text = build_message(profile, "SIU^S14^SIU_S12", event.event_id, event.occurred_at,
                         [sch, Seg("TQ1", {1: "1", 7: start}), *patient, resources])
    if event.sequence:  # MSH-13, the HIS's sequence number (v2.5 section 2.14.9.13)
        header, rest = text.split("\r", 1)
        fields = header.split("|")
        fields += [""] * (19 - len(fields))
        fields[12] = str(event.sequence)
        text = "|".join(fields).rstrip("|") + "\r" + rest
    return text


def play(events: Iterable[QueueEvent], send: Callable[[str], object], profile: Hl7Profile, *,
         time_scale: float = 0.0, sleep: Callable[[float], None] = time.sleep,
         location: str = "", department_code: str = "") -> int:
    """Send the events in order; returns how many were sent."""
    sent, last = 0, None
    for event in events:
        if time_scale and last is not None:
            sleep(max((event.occurred_at - last).total_seconds(), 0) / time_scale)
        last = event.occurred_at
        send(build_queue_siu(profile, event, location=location,
                             department_code=department_code))
        sent += 1
    return sent


def build_queue_sqr(profile: Hl7Profile, control_id: str, now: dt.datetime, *,
                    request: Header, doctor_code: str, lines: list[QueueEvent]) -> str:
    """SQR^S25 answering a queue query: each registration's latest event, one SCH group each."""
    body: list[Seg | Grp] = [
        Seg("MSA", {1: "AA", 2: escape(request.control_id)}),
        Seg("QAK", {1: escape(request.control_id), 2: "OK" if lines else "NF"}),
    ]
    for event in lines:
        body.append(Grp("SQR_S25_SCHEDULE", [
            Seg("SCH", {1: escape(event.placer_id), 2: escape(event.visit_number),
                        3: str(event.queue_number) if event.queue_number else "",
                        6: f"{QUEUE_REASON}^Queue event", 16: person(profile, application=False),
                        20: person(profile, application=False),
                        25: STATUS_OF[event.kind.value]}),
            Seg("TQ1", {1: "1", 7: dtm(event.slot_start or event.occurred_at)}),
            Grp("SQR_S25_PATIENT", [
                Seg("PID", {1: "1", 3: f"{escape(event.his_patient_id)}^^^HIS^PI"
                            if event.his_patient_id else "", 5: "^^^^^^U"}),
                Seg("PV1", {1: "1", 2: "O", 3: f"^{escape(event.room)}"})]),
            Grp("SQR_S25_RESOURCES", [Seg("RGS", {1: "1"}), Grp(
                "SQR_S25_PERSONNEL_RESOURCE", [Seg("AIP", {
                    1: "1", 3: escape(doctor_code), 4: "D^Doctor"})])]),
        ]))
    return build_message(profile, "SQR^S25^SQR_S25", control_id, now, body, to_his=False,
                         sample_groups=3)
