"""The outbox: work for the HIS or the wallet, committed with the state change that needs it.

DESIGN invariant 3. Each flow declares its kinds (adapter/flows.py); adapter/worker/outbox.py
delivers them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from adapter.models import OutboxMessage, OutboxStatus

if TYPE_CHECKING:
    from adapter.flows import OutboxJob


def enqueue(session: Session, kind: str, subject: tuple[str, object], now: dt.datetime,
            **payload: Any) -> OutboxMessage:  # noqa: ANN401
    """Add work about ``subject`` (type, id) in the caller's transaction (no personal data in
    the payload)."""
    subject_type, subject_id = subject
    message = OutboxMessage(kind=kind, subject_type=subject_type, subject_id=str(subject_id),
                            payload=json.dumps(payload), next_attempt_at=now, created_at=now)
    session.add(message)
    session.info[_WAKE] = True
    return message


# PostgreSQL tells listening workers of new work when the transaction that queued it commits
# (NOTIFY is delivered at commit, and only then; adapter/worker/wakeup.py listens): a paid
# booking's SRM^S01 leaves within milliseconds instead of at the worker's next poll.
CHANNEL = "adapter_outbox"
_WAKE = "outbox_wake"


@event.listens_for(Session, "before_commit")
def _notify_workers(session: Session) -> None:
    if session.info.pop(_WAKE, False) and session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))


@event.listens_for(Session, "after_rollback")
def _forget_wake(session: Session) -> None:
    session.info.pop(_WAKE, None)


def finish(session: Session, job: OutboxJob, now: dt.datetime) -> None:
    """Mark a leased outbox item delivered, in the transaction that records its answer."""
    message = session.get(OutboxMessage, job.id)
    message.status, message.done_at, message.last_error = OutboxStatus.DONE, now, ""
