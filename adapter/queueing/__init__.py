"""Smart queueing (智能排队): the HIS's queue per doctor and session, built from its events and
reconciled with its snapshots, the wait estimated as a range, and wallet pushes at thresholds.

The flow's contributions: the handler of the HIS's queue events (SIU^S14, adapter.his.queue)
the ``his_arrive`` outbox kind that tells the HIS of a check-in (ADT^A10), and the job that
reconciles today's queues with the HIS's snapshot where the profile offers one.
Its pushes travel as identity's ``push`` outbox kind (link ``wallet``), each decided once per
booking and threshold (queue_notice).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from adapter.flows import Flow, OutboxKind, ScheduledJob, Services
from adapter.ports import QueueEvent
from adapter.queueing import texts  # noqa: F401 - registers the patient texts
from adapter.queueing.check_in import deliver_his_arrive
from adapter.queueing.policy import load_queue_policy
from adapter.queueing.service import record_queue_event
from adapter.queueing.snapshots import reconcile_queues


def queue_event(services: Services, session: Session, event: QueueEvent,
                now: dt.datetime) -> None:
    """Apply one queue event from the HIS."""
    record_queue_event(session, event, load_queue_policy(services.config.mappings_dir
                                                         / "queue.toml"), now)


FLOW = Flow(
    name="queueing",
    outbox={"his_arrive": OutboxKind(deliver_his_arrive, link="his")},
    events={QueueEvent: queue_event},
    jobs=(ScheduledJob("reconcile_queues", reconcile_queues,
                       interval=lambda services: services.profile.queue_snapshot_seconds,
                       enabled=lambda services: services.profile.queue_snapshot == "query"),),
)
