"""The worker's APScheduler: the outbox and inbound runners, the link checker and every flow's
scheduled jobs.

Each job opens its own session; work items are claimed in the database (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL) so two workers never apply the same message twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from adapter.worker.inbound import drain_inbound
from adapter.worker.links import check_links
from adapter.worker.outbox import deliver_outbox


def make_scheduler(runtime: Any, *, blocking: bool) -> BackgroundScheduler | BlockingScheduler:  # noqa: ANN401
    """The worker's scheduler with the runners and every merged flow's jobs registered."""
    scheduler = (BlockingScheduler if blocking else BackgroundScheduler)(
        timezone=runtime.config.tz)
    merged = runtime.flows

    def add(job_id: str, func: Any, seconds: float, args: tuple,  # noqa: ANN401
            at_start: bool = False) -> None:
        scheduler.add_job(func, "interval", seconds=seconds, args=args, id=job_id,
                          max_instances=1, coalesce=True,
                          **({"next_run_time": dt.datetime.now(runtime.config.tz)}
                             if at_start else {}))

    add("deliver_outbox", deliver_outbox, 1, (runtime, merged.outbox))
    add("process_inbound", drain_inbound, 2, (runtime, merged.events))
    add("check_links", check_links, runtime.config.link_check_interval, (runtime,),
        at_start=True)
    for job in merged.jobs:
        if job.enabled(runtime):
            add(job.name, job.run, job.every(runtime), (runtime,), job.run_at_start)
    return scheduler
