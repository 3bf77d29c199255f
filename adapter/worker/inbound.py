"""The inbound runner: apply stored HIS messages through the handlers the flows declare for the
events they tell of, each ordering key's messages in arrival order (adapter.his.inbound
names the keys: results by patient), different keys' in parallel across workers. No business
decision lives here."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.attributes import set_committed_value

from adapter.db import try_exclusive
from adapter.failures import safe_code, stack
from adapter.flows import BatchEventHandler, EventHandler, Services
from adapter.his.inbound import read_event, routed_types
from adapter.models import InboundMessage, InboundStatus
from adapter.ports import InboundRefused

logger = logging.getLogger(__name__)

# An inbound message whose use case keeps failing is parked after this many attempts and shown
# on the status page for reprocessing, instead of blocking the queue.
MAX_ATTEMPTS = 5

# Messages without an ordering key (schedule and queue messages) must apply in arrival order
# across the whole pool (a close then a reopen of one slot), so one worker at a time applies
# them: a PostgreSQL advisory lock, released with its transaction.
INBOUND_LOCK = 0x484C3749  # "HL7I"
SERIAL = ""  # the ordering key of those messages

# The ordering keys this process is applying now. PostgreSQL's row locks keep workers in other
# processes apart; SQLite has none, so the runner threads of one process claim keys here.
_in_flight: set[str] = set()
_in_flight_lock = threading.Lock()


def _claim_keys(keys: list[str], limit: int) -> list[str]:
    with _in_flight_lock:
        claimed = []
        for key in keys:
            if key not in _in_flight and key not in claimed and len(claimed) < limit:
                claimed.append(key)
        _in_flight.update(claimed)
        return claimed


def _release_keys(keys: list[str]) -> None:
    with _in_flight_lock:
        _in_flight.difference_update(keys)


def _first_of_its_key() -> ColumnElement[bool]:
    """No earlier message of the same key waits: each key's messages go one at a time, in
    arrival order (an earlier one still retrying holds the later ones back)."""
    earlier = aliased(InboundMessage)
    return ~exists().where(earlier.ordering_key == InboundMessage.ordering_key,
                           earlier.status == InboundStatus.RECEIVED,
                           earlier.id < InboundMessage.id)


def claim_inbound(session: Session, types: list[str], limit: int, *,
                  keyed: bool = False) -> list[InboundMessage]:
    """Lock up to ``limit`` received messages of ``types`` that no other worker holds: the
    unkeyed ones in arrival order, or (``keyed``) the first waiting message of each key."""
    query = (
        select(InboundMessage)
        .where(
            InboundMessage.status == InboundStatus.RECEIVED,
            InboundMessage.message_type.in_(types),
        )
        .order_by(InboundMessage.id)
        .limit(limit)
    )
    if keyed:
        query = query.where(InboundMessage.ordering_key != SERIAL, _first_of_its_key())
    else:
        query = query.where(InboundMessage.ordering_key == SERIAL)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=InboundMessage)
    return list(session.scalars(query))


def claim_keys(session: Session, types: list[str], keys: set[str],
               limit: int) -> list[InboundMessage]:
    """Every waiting message of keys this worker holds, in arrival order (locked): nobody
    else takes them, since each waits behind its key's first, which this worker holds."""
    query = (select(InboundMessage)
             .where(InboundMessage.status == InboundStatus.RECEIVED,
                    InboundMessage.message_type.in_(types),
                    InboundMessage.ordering_key.in_(sorted(keys)))
             .order_by(InboundMessage.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return list(session.scalars(query))


@dataclass(frozen=True)
class Handlers:
    """Who applies each event type: handlers of one event, or one handler of a run of them."""

    each: Mapping[type, list[EventHandler]]
    batches: Mapping[type, BatchEventHandler] = field(default_factory=dict)

    def handles(self, event_type: type) -> bool:
        return bool(self.each.get(event_type)) or event_type in self.batches


def process_inbound(services: Services,
                    handlers: Mapping[type, list[EventHandler]] | None = None) -> int:
    """Apply received messages of the routed types; returns how many.

    Messages with an ordering key (results, by patient) are applied in parallel across
    workers, each key's in arrival order; the others one worker at a time, in arrival order.
    ``handlers`` defaults to the merged flows' event handlers (and batch handlers); types with
    no handler stay ``received`` until a flow handles them.
    """
    routes = (Handlers(services.flows.events, services.flows.batches) if handlers is None
              else Handlers(handlers))
    types = sorted(kind for kind, event in routed_types(services.profile).items()
                   if routes.handles(event))
    if not types:
        return 0
    return _process_keyed(services, routes, types) + _process_serial(services, routes, types)


def drain_inbound(services: Services,
                  handlers: Mapping[type, list[EventHandler]] | None = None, *,
                  budget_seconds: float = 5.0) -> int:
    """Apply batches while there are messages, for up to ``budget_seconds``; returns how many.

    The worker's job: under a backlog (a HIS outage ending) one batch per scheduler tick would
    cap each worker at a batch every two seconds.
    """
    deadline = time.monotonic() + budget_seconds
    total = 0
    while True:
        done = process_inbound(services, handlers)
        total += done
        if not done or time.monotonic() >= deadline:
            return total


def _process_serial(services: Services, handlers: Handlers,
                    types: list[str]) -> int:
    if not _claim_keys([SERIAL], 1):
        return 0  # another thread of this process applies them
    try:
        with services.session_factory() as session:
            if not try_exclusive(session, INBOUND_LOCK):
                return 0  # another worker is applying them: they go in arrival order
            messages = claim_inbound(session, types, services.config.inbound_batch_size)
            done = _apply(services, session, handlers, messages)
            session.commit()
            return done
    finally:
        _release_keys([SERIAL])


def _process_keyed(services: Services, handlers: Handlers,
                   types: list[str]) -> int:
    batch = services.config.inbound_batch_size
    with services.session_factory() as session:
        if session.get_bind().dialect.name == "postgresql":
            # Row locks (SKIP LOCKED) keep workers apart; an earlier message of a key that
            # another worker holds is still received, so the later ones wait for it.
            firsts = claim_inbound(session, types, batch, keyed=True)
            held = {message.ordering_key for message in firsts}
            done = _apply(services, session, handlers,
                          claim_keys(session, types, held, batch) if held else [])
            session.commit()
            return done
        # SQLite: read the candidates, claim their keys in this process, then read them again
        # in a fresh transaction, which sees whatever the key's previous holder committed.
        candidates = session.execute(
            select(InboundMessage.id, InboundMessage.ordering_key)
            .where(InboundMessage.status == InboundStatus.RECEIVED,
                   InboundMessage.message_type.in_(types),
                   InboundMessage.ordering_key != SERIAL, _first_of_its_key())
            .order_by(InboundMessage.id).limit(batch * 4)).all()
    keys = _claim_keys([key for _, key in candidates], batch)
    if not keys:
        return 0
    try:
        with services.session_factory() as session:
            messages = claim_keys(session, types, set(keys), batch)
            done = _apply(services, session, handlers, messages)
            session.commit()
            return done
    finally:
        _release_keys(keys)


def _handle(services: Services, session: Session, handlers: Handlers,
            messages: list[InboundMessage], document_types_by_hl7: dict[str, str]) -> None:
    """Read the messages' events and apply them in arrival order: each run of one type that
    has a batch handler at once, the others one by one."""
    run: list[object] = []

    def flush_run() -> None:
        if run:
            handlers.batches[type(run[0])](services, session, list(run), services.clock.now())
            run.clear()

    for message in messages:
        event = read_event(message.raw, services.config.tz, services.mappings.fee_fen,
                           profile=services.profile, document_types_by_hl7=document_types_by_hl7)
        if run and type(event) is not type(run[0]):
            flush_run()
        if type(event) in handlers.batches:
            run.append(event)
            continue
        now = services.clock.now()
        for handle in handlers.each.get(type(event), ()):
            handle(services, session, event, now)
    flush_run()


def _apply_together(services: Services, session: Session,
                    handlers: Handlers, messages: list[InboundMessage],
                    document_types_by_hl7: dict[str, str]) -> list[InboundMessage] | None:
    """All of them in one savepoint (two round trips a message fewer than one savepoint
    each); None, with nothing kept, as soon as one fails or is refused."""
    try:
        with session.begin_nested():
            _handle(services, session, handlers, messages, document_types_by_hl7)
    except Exception:  # noqa: BLE001 - told apart message by message in _apply_each
        return None
    return messages


def _apply_each(services: Services, session: Session,
                handlers: Handlers, messages: list[InboundMessage],
                document_types_by_hl7: dict[str, str]) -> list[InboundMessage]:
    """Each in its own savepoint: a refused one is failed for good, one that raised is
    retried later (and holds back the later messages of its key)."""
    processed: list[InboundMessage] = []
    held_back: set[str] = set()  # keys whose earlier message will be retried: the rest waits
    for message in messages:
        if message.ordering_key != SERIAL and message.ordering_key in held_back:
            continue
        try:
            with session.begin_nested():
                _handle(services, session, handlers, [message], document_types_by_hl7)
            processed.append(message)
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
            else:
                held_back.add(message.ordering_key)
    return processed


def _apply(services: Services, session: Session, handlers: Handlers,
           messages: list[InboundMessage]) -> int:
    """Apply claimed messages in the session's transaction: together in one savepoint, or,
    when one of them fails, each in its own.

    The attempt counts and the processed marks are written for the whole batch at once (one
    statement each, in the same transaction): two round trips a message fewer under a backlog.
    """
    if not messages:
        return 0
    document_types_by_hl7 = {d.hl7_type: code
                             for code, d in services.mappings.document_types.items()}
    taken = list(messages)
    session.execute(update(InboundMessage)
                    .where(InboundMessage.id.in_([m.id for m in taken]))
                    .values(attempts=InboundMessage.attempts + 1)
                    .execution_options(synchronize_session=False))
    for message in taken:
        set_committed_value(message, "attempts", message.attempts + 1)
    processed = _apply_together(services, session, handlers, taken, document_types_by_hl7)
    if processed is None:  # one of them failed: each on its own, so the others still apply
        processed = _apply_each(services, session, handlers, taken, document_types_by_hl7)
    if processed:
        done_at = services.clock.now()
        session.execute(update(InboundMessage)
                        .where(InboundMessage.id.in_([m.id for m in processed]))
                        .values(status=InboundStatus.PROCESSED, processed_at=done_at)
                        .execution_options(synchronize_session=False))
        for message in processed:
            set_committed_value(message, "status", InboundStatus.PROCESSED)
            set_committed_value(message, "processed_at", done_at)
    return len(processed)
