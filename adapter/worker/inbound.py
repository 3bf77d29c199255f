"""The inbound runner: apply stored HIS messages, in arrival order, through the handlers the
flows declare for the events they tell of. No business decision lives here."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from adapter.failures import safe_code, stack
from adapter.flows import EventHandler, Services
from adapter.his.inbound import read_event, routed_types
from adapter.models import InboundMessage, InboundStatus
from adapter.ports import InboundRefused

logger = logging.getLogger(__name__)

# An inbound message whose use case keeps failing is parked after this many attempts and shown
# on the status page for reprocessing, instead of blocking the queue.
MAX_ATTEMPTS = 5

# Schedule messages must apply in arrival order (a close then a reopen of one slot), so one
# worker at a time applies them: a PostgreSQL advisory lock, released with its transaction.
INBOUND_LOCK = 0x484C3749  # "HL7I"


def claim_inbound(session: Session, types: list[str], limit: int) -> list[InboundMessage]:
    """Lock up to ``limit`` received messages of ``types`` that no other worker holds."""
    query = (
        select(InboundMessage)
        .where(
            InboundMessage.status == InboundStatus.RECEIVED,
            InboundMessage.message_type.in_(types),
        )
        .order_by(InboundMessage.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def process_inbound(services: Services,
                    handlers: Mapping[type, list[EventHandler]] | None = None) -> int:
    """Apply received messages of the routed types, in arrival order; returns how many.

    ``handlers`` defaults to the merged flows' event handlers; types with no handler stay
    ``received`` until a flow handles them.
    """
    handlers = services.flows.events if handlers is None else handlers
    routes = {kind: event for kind, event in routed_types(services.profile).items()
              if handlers.get(event)}
    if not routes:
        return 0
    tz, fee_of = services.config.tz, services.mappings.fee_fen
    document_types_by_hl7 = {d.hl7_type: code
                             for code, d in services.mappings.document_types.items()}
    done = 0
    with services.session_factory() as session:
        if session.get_bind().dialect.name == "postgresql" and not session.scalar(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": INBOUND_LOCK}):
            return 0  # another worker is applying inbound messages: they go in arrival order
        for message in claim_inbound(session, sorted(routes), services.config.inbound_batch_size):
            message.attempts += 1
            try:
                with session.begin_nested():
                    event = read_event(message.raw, tz, fee_of, profile=services.profile,
                                       document_types_by_hl7=document_types_by_hl7)
                    now = services.clock.now()
                    for handle in handlers.get(type(event), ()):
                        handle(services, session, event, now)
                message.status = InboundStatus.PROCESSED
                message.processed_at = services.clock.now()
                done += 1
            except InboundRefused as exc:
                message.status = InboundStatus.FAILED
                message.error_text = str(exc)[:200]
                logger.warning("inbound %s (%s) refused: %s", message.id, message.message_type,
                               exc)
            except Exception as exc:  # noqa: BLE001 - retried, then parked
                # The type and a safe code only: an error's text may quote a field's value.
                logger.error("inbound %s (%s) failed (attempt %d): %s\n%s", message.id,
                             message.message_type, message.attempts, safe_code(exc),
                             stack(exc))
                if message.attempts >= MAX_ATTEMPTS:
                    message.status = InboundStatus.FAILED
                    message.error_text = safe_code(exc)
        session.commit()
    return done
