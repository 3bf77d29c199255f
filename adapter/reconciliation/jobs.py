"""The scheduled reconciliation: yesterday, once the day's clock passes ADAPTER_RECONCILE_AT.

An interval job rather than a cron trigger: a worker that was down at 10:00 still reconciles
when it comes back, and the day is claimed in the database (reconciliation_run.schedule_key),
so however many workers run it, a day is reconciled once by the schedule.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import update

from adapter.flows import Services
from adapter.models import ReconciliationRun
from adapter.reconciliation.service import AlreadyReconciled, ReconciliationFailed, reconcile_day

logger = logging.getLogger(__name__)

CHECK_SECONDS = 300  # how often the worker looks whether yesterday is due
# A scheduled run still "running" this long died with its worker: the day is free again.
STALE_AFTER = dt.timedelta(hours=2)


def reconcile_yesterday(services: Services) -> int:
    """Reconcile yesterday for each wallet not yet reconciled by the schedule; how many ran."""
    now = services.clock.now()
    local = now.astimezone(services.config.tz)
    due = services.config.reconcile_at
    if due is None or local.time() < due:
        return 0
    day = local.date() - dt.timedelta(days=1)
    with services.session_factory.begin() as session:
        session.execute(update(ReconciliationRun).where(
            ReconciliationRun.status == "running", ReconciliationRun.schedule_key.is_not(None),
            ReconciliationRun.started_at < now - STALE_AFTER).values(
                status="failed", error="abandoned", schedule_key=None))
    ran = 0
    for wallet in services.wallets.values():
        try:
            reconcile_day(services, wallet, services.his, day, now=now, trigger="schedule")
            ran += 1
        except AlreadyReconciled:
            continue
        except ReconciliationFailed:
            continue  # recorded on the run; the next check tries again (the bill may be late)
    return ran
