"""The periodic queue snapshot (where the profile says ``queue_snapshot = "query"``): each
session of today that still has patients in line is asked of the HIS as a whole and
reconciled with what the events built (``reconcile_queue``), so a cancelled registration that
never sent its event leaves, and a lost event is repaired."""

from __future__ import annotations

import logging

from sqlalchemy import select

from adapter.flows import Services
from adapter.models import QueueEventRecord
from adapter.ports import HisRefused, HisUnavailable
from adapter.queueing.policy import load_queue_policy
from adapter.queueing.service import load_queue, reconcile_queue

logger = logging.getLogger(__name__)


def reconcile_queues(services: Services) -> int:
    """Ask the HIS for each of today's open queues and repair ours; returns events added."""
    now = services.clock.now()
    today = now.astimezone(services.config.tz).date()
    policy = load_queue_policy(services.config.mappings_dir / "queue.toml")
    with services.session_factory() as session:
        sessions = session.execute(select(
            QueueEventRecord.doctor_code, QueueEventRecord.session).where(
            QueueEventRecord.visit_date == today).distinct()).all()
        open_ones = [(doctor, code) for doctor, code in sorted(sessions)
                     if any(not line.state.done for line in load_queue(
                         session, doctor, today, code, policy).lines.values())]
    added = 0
    for doctor, code in open_ones:
        try:
            snapshot = services.his.query_queue(doctor, today, code)  # outside a transaction
        except HisRefused as exc:
            logger.warning("queue snapshot %s %s refused (%s)", doctor, code,
                           exc.outcome.error_code)
            continue
        except HisUnavailable as exc:
            logger.warning("queue snapshots skipped: HIS unavailable (%s)", type(exc).__name__)
            break
        with services.session_factory.begin() as session:
            added += reconcile_queue(session, snapshot, policy, services.clock.now())
    return added
