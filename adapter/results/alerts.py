"""Critical values for staff: raised at once, open until a staff user acknowledges them (who
and when are kept), escalated when nobody has within the policy's time."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.models import CriticalAlert, Result
from adapter.refusals import Refusal

logger = logging.getLogger(__name__)


def raise_alert(session: Session, result: Result, now: dt.datetime) -> CriticalAlert:
    """Raise a critical value of ``result`` for staff, unless one is still open for it."""
    open_alert = session.scalar(select(CriticalAlert).where(
        CriticalAlert.result_id == result.id, CriticalAlert.acknowledged_at.is_(None)))
    if open_alert is not None:
        open_alert.result_version = result.version  # staff see the latest values
        return open_alert
    alert = CriticalAlert(result_id=result.id, result_version=result.version, raised_at=now)
    session.add(alert)
    session.flush()
    # Ids only: the value, the test and the patient stay out of the log.
    logger.warning("critical value: alert %s raised for result %s", alert.id, result.id)
    return alert


def acknowledge_alert(session: Session, alert_id: int, staff_user: str,
                      now: dt.datetime) -> CriticalAlert:
    """A staff user has seen a critical value; the first acknowledgment is the one kept."""
    alert = session.get(CriticalAlert, alert_id, with_for_update=True)
    if alert is None:
        raise Refusal("alert.unknown")
    if alert.acknowledged_at is None:
        alert.acknowledged_by, alert.acknowledged_at = staff_user[:64], now
        logger.info("critical alert %s acknowledged by staff user %s", alert.id,
                    alert.acknowledged_by)
    return alert


def escalate_alerts(session: Session, after: dt.timedelta, now: dt.datetime) -> list[int]:
    """Escalate the alerts nobody acknowledged within ``after``: marked for the status page and
    raised again; returns their ids."""
    due = list(session.scalars(
        select(CriticalAlert)
        .where(CriticalAlert.acknowledged_at.is_(None), CriticalAlert.escalated_at.is_(None),
               CriticalAlert.raised_at <= now - after)
        .order_by(CriticalAlert.id)
        .with_for_update(skip_locked=True)
    ))
    for alert in due:
        alert.escalated_at = now
        logger.error("critical alert %s (result %s) unacknowledged after %d min: escalated",
                     alert.id, alert.result_id, after.total_seconds() // 60)
    return [alert.id for alert in due]


def open_alerts(session: Session) -> list[CriticalAlert]:
    """The alerts still waiting for a staff user, oldest first (escalated ones marked)."""
    return list(session.scalars(select(CriticalAlert).where(
        CriticalAlert.acknowledged_at.is_(None)).order_by(CriticalAlert.raised_at)))
