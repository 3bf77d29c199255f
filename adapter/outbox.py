"""The outbox: work for the HIS or the wallet, committed with the state change that needs it.

DESIGN invariant 3. adapter/worker.py delivers it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy.orm import Session

from adapter.models import OutboxMessage


def enqueue(session: Session, kind: str, booking_id: int | None, now: dt.datetime,
            **payload: Any) -> OutboxMessage:  # noqa: ANN401
    """Add work for the worker in the caller's transaction (no personal data in payload)."""
    message = OutboxMessage(kind=kind, booking_id=booking_id, payload=json.dumps(payload),
                            next_attempt_at=now, created_at=now)
    session.add(message)
    return message
