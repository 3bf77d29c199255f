"""The worker role: APScheduler jobs, safe to run as many instances as wanted.

Each job opens its own session; work items are claimed in the database (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL) so two workers never apply the same message twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.db import utcnow
from adapter.models import InboundMessage, InboundStatus, LinkState
from adapter.ports import HisGateway, HisUnavailable
from adapter.runtime import Runtime
from adapter.slots import sync_slot_pool

logger = logging.getLogger(__name__)

# An inbound message whose use case keeps failing is parked after this many attempts and shown
# on the status page for reprocessing, instead of blocking the queue.
MAX_ATTEMPTS = 5

InboundApplier = Callable[[Session, InboundMessage], None]


class InboundRefused(Exception):
    """The use case refused an inbound message for good (shown to admins, not retried)."""


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


def process_inbound(runtime: Runtime, appliers: dict[str, InboundApplier]) -> int:
    """Apply received messages of the routed types, in arrival order; returns how many."""
    done = 0
    with runtime.session_factory() as session:
        for message in claim_inbound(session, sorted(appliers), runtime.config.inbound_batch_size):
            message.attempts += 1
            try:
                with session.begin_nested():
                    appliers[message.message_type](session, message)
                message.status = InboundStatus.PROCESSED
                message.processed_at = utcnow()
                done += 1
            except InboundRefused as exc:
                message.status = InboundStatus.FAILED
                message.error_text = str(exc)[:200]
                logger.warning("inbound %s (%s) refused: %s", message.id, message.message_type,
                               exc)
            except Exception as exc:  # noqa: BLE001 - retried, then parked
                logger.exception("inbound %s (%s) failed (attempt %d)", message.id,
                                 message.message_type, message.attempts)
                if message.attempts >= MAX_ATTEMPTS:
                    message.status = InboundStatus.FAILED
                    message.error_text = type(exc).__name__
        session.commit()
    return done


def record_link(runtime: Runtime, name: str, up: bool, detail: str) -> None:
    """Remember the last known state of a link for the status page and /readyz."""
    with runtime.session_factory.begin() as session:
        state = session.get(LinkState, name) or LinkState(name=name)
        state.up, state.detail, state.checked_at = up, detail[:500], utcnow()
        session.add(state)


def sync_slots_job(runtime: Runtime, his: HisGateway) -> None:
    """Pull the wallet channel's slot pool for the coming days from the HIS."""
    tz = runtime.config.tz
    today = dt.datetime.now(tz).date()
    end = today + dt.timedelta(days=runtime.profile.slot_sync_days)
    try:
        with runtime.session_factory.begin() as session:
            sync_slot_pool(session, his, today, end, tz)
    except HisUnavailable as exc:
        logger.warning("slot pool sync skipped: HIS unavailable (%s)", type(exc).__name__)
        record_link(runtime, "his", False, type(exc).__name__)
        return
    record_link(runtime, "his", True, "slot pool synced")


def make_scheduler(
    runtime: Runtime, *, blocking: bool, his: HisGateway | None = None
) -> BackgroundScheduler | BlockingScheduler:
    """The worker's scheduler with every job of this release registered."""
    from adapter.his.gateway import MllpHisGateway
    from adapter.his.inbound import inbound_appliers

    his = his or MllpHisGateway.from_runtime(runtime)
    scheduler_cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = scheduler_cls(timezone=runtime.config.tz)
    appliers = inbound_appliers(runtime)
    scheduler.add_job(
        process_inbound, "interval", seconds=2, args=(runtime, appliers),
        id="process_inbound", max_instances=1, coalesce=True,
    )
    if runtime.profile.slot_sync in ("query", "both"):
        scheduler.add_job(
            sync_slots_job, "interval", seconds=runtime.config.slot_sync_interval,
            args=(runtime, his), id="sync_slots", max_instances=1, coalesce=True,
            next_run_time=dt.datetime.now(runtime.config.tz),
        )
    return scheduler
