"""The audit trail of staff actions: every sign-in (and failed one), release, acknowledgment,
view of a result and change made through /admin/ writes one row, in the transaction of the
action itself, so an action that did not happen leaves no row and one that did cannot lose it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adapter.models import StaffAudit


class Action(StrEnum):
    """What a staff user did (the audit row's ``action``)."""

    SIGN_IN = "sign_in"
    SIGN_IN_FAILED = "sign_in_failed"
    LOCKED_OUT = "locked_out"
    SIGN_OUT = "sign_out"
    ACCOUNT_CREATED = "account_created"
    ACCOUNT_DISABLED = "account_disabled"
    RESULT_VIEWED = "result_viewed"
    RESULT_RELEASED = "result_released"
    ALERT_ACKNOWLEDGED = "alert_acknowledged"
    PATIENT_SEARCHED = "patient_searched"
    MESSAGE_VIEWED = "message_viewed"
    MESSAGE_REPROCESSED = "message_reprocessed"
    MESSAGE_ACKNOWLEDGED = "message_acknowledged"
    DISCREPANCY_ACKNOWLEDGED = "discrepancy_acknowledged"
    SETTLEMENT_ACKNOWLEDGED = "settlement_acknowledged"
    RECONCILIATION_RUN = "reconciliation_run"
    MESSAGES_PRUNED = "messages_pruned"  # by the retention job or `prune`: counts only


def record(session: Session, actor: str, action: Action, target: str, remote: str,
           now: dt.datetime) -> StaffAudit:
    """Write one audit row: ``target`` names ids or codes ("result:42"), never personal data."""
    row = StaffAudit(at=now, actor=actor[:64], action=action.value, target=target[:120],
                     remote=remote[:64])
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class AuditQuery:
    """A search of the trail; every field is optional."""

    actor: str = ""
    action: str = ""
    target: str = ""  # a prefix: "result:" finds every result action
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = 200


def search_audit(session: Session, query: AuditQuery) -> tuple[list[StaffAudit], int]:
    """The newest rows matching ``query`` (at most ``limit``) and how many match in all."""
    conditions = []
    if query.actor:
        conditions.append(StaffAudit.actor == query.actor)
    if query.action:
        conditions.append(StaffAudit.action == query.action)
    if query.target:
        conditions.append(StaffAudit.target.startswith(query.target, autoescape=True))
    if query.since is not None:
        conditions.append(StaffAudit.at >= query.since)
    if query.until is not None:
        conditions.append(StaffAudit.at < query.until)
    total = session.scalar(select(func.count()).select_from(StaffAudit).where(*conditions))
    rows = list(session.scalars(select(StaffAudit).where(*conditions)
                                .order_by(StaffAudit.id.desc()).limit(query.limit)))
    return rows, int(total or 0)
