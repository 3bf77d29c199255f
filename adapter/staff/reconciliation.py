"""Reconciliation reports for staff: each day's outcome, a day's discrepancies with what to do,
a discrepancy marked as handled, a day reconciled again (docs/reconciliation.md).

What a run found is what adapter.reconciliation recorded (reconciliation_run and its
reconciliation_discrepancy rows); nothing here reads a wallet's bill or the HIS itself. Money
stays integer fen; pages format it with adapter.money.yuan.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adapter.flows import Services
from adapter.models import ReconciliationDiscrepancy, ReconciliationRun
from adapter.reconciliation.matching import Kind
from adapter.reconciliation.service import RunResult, reconcile_day
from adapter.refusals import Refusal
from adapter.staff.audit import Action, record

# What staff may run again from the report: a wallet's bill is kept about a year and a day
# reconciled again heals nothing twice, so only a bound against typing mistakes.
MAX_RERUN_DAYS_BACK = 400


@dataclass(frozen=True)
class Book:
    """One side's payments and refunds of the day: counts and fen."""

    payments: int = 0
    payment_fen: int = 0
    refunds: int = 0
    refund_fen: int = 0


@dataclass(frozen=True)
class DayOutcome:
    """A day's latest run of one wallet as the list shows it."""

    run_id: int
    day: dt.date
    platform: str
    status: str  # running | done | failed
    error: str
    outcome: str  # matched | mismatches | failed | running
    books: dict[str, Book]  # wallet, adapter, his
    by_kind: dict[str, int]  # discrepancies per class (adapter.reconciliation.matching.Kind)
    discrepancies: int
    healed: int
    open: int  # neither healed nor marked handled
    finished_at: dt.datetime | None
    trigger: str


@dataclass(frozen=True)
class DayReport:
    """A run and what it found; the day's other runs, newest first."""

    day: DayOutcome
    discrepancies: list[ReconciliationDiscrepancy]
    problems: dict[str, Any] = field(default_factory=dict)  # unreadable lines per side
    runs: list[ReconciliationRun] = field(default_factory=list)


def _open_counts(session: Session, run_ids: list[int]) -> dict[int, int]:
    if not run_ids:
        return {}
    rows = session.execute(
        select(ReconciliationDiscrepancy.run_id, func.count())
        .where(ReconciliationDiscrepancy.run_id.in_(run_ids),
               ReconciliationDiscrepancy.healed.is_(False),
               ReconciliationDiscrepancy.acknowledged_at.is_(None))
        .group_by(ReconciliationDiscrepancy.run_id))
    return {run_id: int(count) for run_id, count in rows}


def _outcome(run: ReconciliationRun, open_count: int) -> DayOutcome:
    summary = json.loads(run.summary or "{}")
    books = {side: Book(**{k: int(v) for k, v in summary.get(side, {}).items()
                           if k in Book.__dataclass_fields__})
             for side in ("wallet", "adapter", "his")}
    by_kind = {kind.value: int(summary.get("by_kind", {}).get(kind.value, {}).get("count", 0))
               for kind in Kind}
    if run.status != "done":
        outcome = run.status
    else:
        outcome = "mismatches" if open_count else "matched"
    return DayOutcome(run.id, run.day, run.platform, run.status, run.error, outcome, books,
                      {k: v for k, v in by_kind.items() if v}, run.discrepancies, run.healed,
                      open_count, run.finished_at, run.trigger)


def reconciliation_days(session: Session, *, limit: int = 60) -> list[DayOutcome]:
    """Each reconciled day's latest run per wallet, newest day first (at most ``limit``)."""
    latest = (select(func.max(ReconciliationRun.id))
              .group_by(ReconciliationRun.day, ReconciliationRun.platform))
    runs = list(session.scalars(select(ReconciliationRun)
                                .where(ReconciliationRun.id.in_(latest))
                                .order_by(ReconciliationRun.day.desc(),
                                          ReconciliationRun.platform).limit(limit)))
    counts = _open_counts(session, [run.id for run in runs])
    return [_outcome(run, counts.get(run.id, 0)) for run in runs]


def day_report(session: Session, run_id: int) -> DayReport:
    """A run's report: its discrepancies (open ones first) and the day's runs."""
    run = session.get(ReconciliationRun, run_id)
    if run is None:
        raise Refusal("reconciliation.unknown")
    found = list(session.scalars(
        select(ReconciliationDiscrepancy).where(ReconciliationDiscrepancy.run_id == run.id)
        .order_by(ReconciliationDiscrepancy.healed,
                  ReconciliationDiscrepancy.acknowledged_at.is_not(None),
                  ReconciliationDiscrepancy.id)))
    runs = list(session.scalars(select(ReconciliationRun).where(
        ReconciliationRun.day == run.day, ReconciliationRun.platform == run.platform)
        .order_by(ReconciliationRun.id.desc())))
    problems = json.loads(run.summary or "{}").get("problems", {})
    return DayReport(_outcome(run, _open_counts(session, [run.id]).get(run.id, 0)), found,
                     problems, runs)


def acknowledge_discrepancy(session: Session, discrepancy_id: int, *, actor: str, remote: str,
                            now: dt.datetime) -> ReconciliationDiscrepancy:
    """Mark a discrepancy as handled (who and when are kept on it); audited. Marking one
    already marked changes nothing."""
    item = session.get(ReconciliationDiscrepancy, discrepancy_id, with_for_update=True)
    if item is None:
        raise Refusal("reconciliation.unknown")
    if item.acknowledged_at is None:
        item.acknowledged_at, item.acknowledged_by = now, actor[:64]
        record(session, actor, Action.DISCREPANCY_ACKNOWLEDGED, f"discrepancy:{item.id}",
               remote, now)
    return item


def check_rerun_day(day: dt.date, today: dt.date) -> None:
    """Refuse a day that cannot have a bill: today or later, or far in the past."""
    if day >= today or day < today - dt.timedelta(days=MAX_RERUN_DAYS_BACK):
        raise Refusal("reconciliation.bad_day", days=MAX_RERUN_DAYS_BACK)


def rerun_day(services: Services, day: dt.date, *, actor: str, remote: str,
              now: dt.datetime) -> list[RunResult]:
    """Reconcile ``day`` again for every wallet, as ``hospital-adapter reconcile`` does (what
    was healed before is not healed twice); audited. Raises ReconciliationFailed (recorded on
    the run) when a book cannot be read, Refusal for a day that cannot be reconciled."""
    check_rerun_day(day, now.astimezone(services.config.tz).date())
    with services.session_factory.begin() as session:
        record(session, actor, Action.RECONCILIATION_RUN, f"reconciliation:{day.isoformat()}",
               remote, now)
    return [reconcile_day(services, wallet, services.his, day, now=now, trigger="staff")
            for wallet in services.wallets.values()]
