"""The worker's APScheduler: the outbox and inbound runners, the link checker and every flow's
scheduled jobs.

Each job opens its own session; work items are claimed in the database (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL) so two workers never apply the same message twice.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from adapter.failures import safe_code
from adapter.models import JobRun
from adapter.worker.inbound import drain_inbound
from adapter.worker.links import check_links
from adapter.worker.outbox import deliver_outbox, wake_runs
from adapter.worker.wakeup import OutboxWakeup

logger = logging.getLogger(__name__)


def record_job_run(runtime: Any, name: str, started_at: dt.datetime,  # noqa: ANN401
                   milliseconds: int, error: str) -> None:
    """Count one run of a job (every worker adds to the same row); never raises."""
    try:
        with runtime.session_factory.begin() as session:
            dialect = session.get_bind().dialect.name
            # The adapter runs on PostgreSQL and SQLite: both have INSERT ... ON CONFLICT.
            upsert = postgresql_insert if dialect == "postgresql" else sqlite_insert
            values = {"last_started_at": started_at, "last_milliseconds": milliseconds,
                      "last_ok": not error, "last_error": error[:200]}
            statement = upsert(JobRun).values(name=name, runs=1, failures=int(bool(error)),
                                              **values)
            session.execute(statement.on_conflict_do_update(
                index_elements=[JobRun.name],
                set_={"runs": JobRun.runs + 1,
                      "failures": JobRun.failures + int(bool(error)), **values}))
    except Exception as exc:  # noqa: BLE001 - a count must never stop the job it counts
        logger.warning("job %s: run not recorded (%s)", name, safe_code(exc))


def recorded(runtime: Any, name: str, func: Callable[..., Any]) -> Callable[..., Any]:  # noqa: ANN401
    """``func`` with each run counted in job_run (/metrics: adapter_job_runs...)."""

    @functools.wraps(func)
    def run(*args: Any) -> Any:  # noqa: ANN401
        started_at, started = runtime.clock.now(), time.monotonic()
        error = ""
        try:
            return func(*args)
        except Exception as exc:
            error = safe_code(exc)
            raise
        finally:
            record_job_run(runtime, name, started_at,
                           round((time.monotonic() - started) * 1000), error)

    return run


def make_scheduler(runtime: Any, *, blocking: bool) -> BackgroundScheduler | BlockingScheduler:  # noqa: ANN401
    """The worker's scheduler with the runners and every merged flow's jobs registered."""
    scheduler = (BlockingScheduler if blocking else BackgroundScheduler)(
        timezone=runtime.config.tz)
    merged = runtime.flows

    def add(job_id: str, func: Any, seconds: float, args: tuple,  # noqa: ANN401
            at_start: bool = False) -> None:
        scheduler.add_job(recorded(runtime, job_id, func), "interval", seconds=seconds,
                          args=args, id=job_id,
                          max_instances=1, coalesce=True,
                          **({"next_run_time": dt.datetime.now(runtime.config.tz)}
                             if at_start else {}))

    add("deliver_outbox", deliver_outbox, 1, (runtime, merged.outbox))
    add("process_inbound", drain_inbound, 2, (runtime,))
    add("check_links", check_links, runtime.config.link_check_interval, (runtime,),
        at_start=True)
    for job in merged.jobs:
        if job.enabled(runtime):
            add(job.name, job.run, job.every(runtime), (runtime,), job.run_at_start)
    if runtime.engine.dialect.name == "postgresql":
        _wake_on_new_work(scheduler, runtime)
    return scheduler


def _wake_on_new_work(scheduler: BackgroundScheduler | BlockingScheduler,
                      runtime: Any) -> None:  # noqa: ANN401
    """New outbox work wakes a run under way, or starts one now (not at the next second)."""

    def wake() -> None:
        if wake_runs() or not scheduler.running:
            return
        try:
            scheduler.modify_job("deliver_outbox", next_run_time=dt.datetime.now(
                runtime.config.tz))
        except JobLookupError:
            pass

    wakeup = OutboxWakeup(runtime.engine, wake)
    scheduler.add_listener(lambda _event: wakeup.stop(), EVENT_SCHEDULER_SHUTDOWN)
    wakeup.start()
