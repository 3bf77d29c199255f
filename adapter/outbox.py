"""The outbox: work for the HIS or the wallet, committed with the state change that needs it.

DESIGN invariant 3. Each flow declares its kinds (adapter/flows.py); adapter/worker/outbox.py
delivers them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

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
    return message


def finish(session: Session, job: OutboxJob, now: dt.datetime) -> None:
    """Mark a leased outbox item delivered, in the transaction that records its answer."""
    message = session.get(OutboxMessage, job.id)
    message.status, message.done_at, message.last_error = OutboxStatus.DONE, now, ""
