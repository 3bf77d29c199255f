"""Stored inbound HL7 messages as neutral events (adapter.ports) for the flows to handle.

The listener has already stored and ACKed each message; here a routed type is parsed in full
and turned into the event it tells of. No business rule lives here: the flows declare handlers
for the events (adapter/flows.py) and the worker's inbound runner calls them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from adapter.his.billing import DFT_P03, parse_dft_p03
from adapter.his.header import Header, HeaderError, decode_message
from adapter.his.profile import Hl7Profile
from adapter.his.queue import QUEUE_TRIGGER, is_queue_event, parse_queue_event
from adapter.his.results import ORU_R01, parse_oru_r01
from adapter.his.results import ordering_key as result_ordering_key
from adapter.his.schedule import parse_siu
from adapter.his.segments import MessageError
from adapter.ports import (
    AppointmentMissed,
    InboundRefused,
    QueueEvent,
    ResultsReported,
    SlotOffered,
    SlotWithdrawn,
)
from adapter.ports_billing import ChargesReported, RefundsRequested

# SIU triggers (HL7 v2.5 chapter 10.4) that change the wallet channel's slot pool.
SLOT_OPENED = ("S12", "S13", "S14")
SLOT_CLOSED = ("S15", "S17")
NO_SHOW = "S26"

HisEvent = (SlotOffered | SlotWithdrawn | AppointmentMissed | QueueEvent | ResultsReported
            | ChargesReported | RefundsRequested)


def routed_types(profile: Hl7Profile) -> dict[str, type]:
    """Message type -> the event it becomes, for the types this hospital's profile routes."""
    routes: dict[str, type] = {f"SIU^{NO_SHOW}": AppointmentMissed,
                               f"SIU^{QUEUE_TRIGGER}": QueueEvent, ORU_R01: ResultsReported,
                               # Charges (FT1-6 CG) or, one kind per message, refunds (CD).
                               DFT_P03: ChargesReported}
    if profile.slot_sync in ("notify", "both"):
        # SIU^S14 carries both slot changes and queue events (told apart by SCH-6): routed as
        # either, it is read as what it says.
        routes.update({f"SIU^{t}": SlotOffered for t in SLOT_OPENED if t not in routes})
        routes.update({f"SIU^{t}": SlotWithdrawn for t in SLOT_CLOSED})
    return {kind: event for kind, event in routes.items() if kind in profile.inbound}


def ordering_key(text: str, header: Header, profile: Hl7Profile) -> str:
    """The key a stored message keeps its place in line by: messages with one key are applied
    in arrival order, messages with different keys in parallel; "" (schedule and queue
    messages, whose order matters across the whole pool) are applied one at a time, in
    arrival order, by one worker (adapter.worker.inbound)."""
    if header.message_type == ORU_R01:
        return result_ordering_key(text, header, profile)
    return ""


def read_event(raw: bytes, tz: dt.tzinfo, fee_of: Callable[[str], int], *,
               profile: Hl7Profile | None = None,
               document_types_by_hl7: dict[str, str] | None = None) -> HisEvent:
    """The event a stored message tells of; raises InboundRefused when it cannot say one."""
    try:
        text, header = decode_message(raw)
    except HeaderError as exc:  # stored as received, so this would be a listener bug
        raise InboundRefused(f"undecodable ({exc.code})") from None
    if header.message_type == ORU_R01:
        try:
            return parse_oru_r01(text, header, profile or Hl7Profile(), tz=tz,
                                 document_types_by_hl7=document_types_by_hl7 or {})
        except MessageError as exc:  # its text names fields, never their values
            raise InboundRefused(f"{exc.code} {exc.text}") from None
    if header.message_type == DFT_P03:
        try:
            return parse_dft_p03(text, tz)
        except MessageError as exc:
            raise InboundRefused(f"{exc.code} {exc.text}") from None
    if is_queue_event(text):
        try:
            return parse_queue_event(text, tz, (profile or Hl7Profile()).queue_statuses)
        except MessageError as exc:
            raise InboundRefused(f"{exc.code} {exc.text}") from None
    try:
        siu = parse_siu(text, tz, fee_of)
    except MessageError as exc:
        raise InboundRefused(f"{exc.code} {exc.text}") from None
    except KeyError as exc:
        raise InboundRefused(f"service code {exc.args[0]} has no fee item") from None
    if siu.trigger == NO_SHOW:
        return AppointmentMissed(siu.filler_appointment_id)
    if siu.trigger in SLOT_CLOSED:
        return SlotWithdrawn(siu.his_slot_id)
    if siu.trigger in SLOT_OPENED:
        if siu.slot is None:
            raise InboundRefused("SIU without timing, AIS and AIP cannot describe a slot")
        return SlotOffered(siu.slot)
    raise InboundRefused(f"SIU^{siu.trigger} is not routed")
