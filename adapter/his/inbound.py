"""Routing of stored inbound HL7 messages to their use cases (run by the worker).

The listener has already stored and ACKed each message; here each routed type is parsed in full
and handed to a use case. Types with no applier yet stay ``received`` until one exists.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.db import utcnow
from adapter.his.header import HeaderError, decode_message
from adapter.his.schedule import parse_siu
from adapter.his.segments import MessageError
from adapter.models import Booking, InboundMessage
from adapter.registration import cancel_for_closed_slot
from adapter.runtime import Runtime
from adapter.slots import apply_slot_record, close_slot
from adapter.worker import InboundApplier, InboundRefused

logger = logging.getLogger(__name__)

# SIU triggers (HL7 v2.5 chapter 10.4) that change the wallet channel's slot pool.
SLOT_OPENED = ("S12", "S13", "S14")
SLOT_CLOSED = ("S15", "S17")


def _text(message: InboundMessage) -> str:
    try:
        return decode_message(message.raw)[0]
    except HeaderError as exc:  # stored as received, so this would be a listener bug
        raise InboundRefused(f"undecodable ({exc.code})") from None


def schedule_notification_applier(runtime: Runtime) -> InboundApplier:
    """SIU^S12/S13/S14 open or change a pool slot; SIU^S15/S17 close it."""
    tz = runtime.config.tz
    fee_of: Callable[[str], int] = runtime.mappings.fee_fen

    def apply(session: Session, message: InboundMessage) -> None:
        try:
            event = parse_siu(_text(message), tz, fee_of)
        except MessageError as exc:
            raise InboundRefused(f"{exc.code} {exc.text}") from None
        except KeyError as exc:
            raise InboundRefused(f"service code {exc.args[0]} has no fee item") from None
        if event.trigger == "S26":
            # Patient did not show up: counts toward the no-show ban (booking_rules.toml).
            booking = session.scalar(select(Booking).where(
                Booking.filler_appointment_id == event.filler_appointment_id))
            if booking is None:
                return  # an appointment made elsewhere (the HIS window): not ours to count
            booking.status, booking.updated_at = "no_show", utcnow()
            return
        if event.trigger in SLOT_CLOSED:
            def cancel(s: Session, slot: object) -> None:
                cancel_for_closed_slot(s, slot, mappings=runtime.mappings, tz=tz, now=utcnow())

            if not close_slot(session, event.his_slot_id, on_closed=cancel):
                logger.info("SIU^%s for unknown slot %s ignored", event.trigger,
                            event.his_slot_id)
            return
        if event.slot is None:
            raise InboundRefused("SIU without timing, AIS and AIP cannot describe a slot")
        apply_slot_record(session, event.slot, utcnow())

    return apply


def inbound_appliers(runtime: Runtime) -> dict[str, InboundApplier]:
    """Message type -> applier, for the types this release applies."""
    appliers: dict[str, InboundApplier] = {}
    apply = schedule_notification_applier(runtime)
    triggers = ("S26",)
    if runtime.profile.slot_sync in ("notify", "both"):
        triggers += SLOT_OPENED + SLOT_CLOSED
    for trigger in triggers:
        if f"SIU^{trigger}" in runtime.profile.inbound:
            appliers[f"SIU^{trigger}"] = apply
    return appliers
