"""Idempotency-Key: the same key and body get the same answer, however often they are sent.

The first answer is stored with the key in the transaction that produced it; a repeat (a double
click, a retry after a lost answer) replays it, and a repeat with another body is refused.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import current_app
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.models import IdempotencyRecord
from adapter.refusals import Refusal
from adapter.web.api.errors import refused, runtime


def request_digest(body: Any) -> str:  # noqa: ANN401 - any JSON value
    """A stable digest of a JSON request body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def find(db: Session, account_id: int, key: str) -> IdempotencyRecord | None:
    """The stored answer under this account's key, if any."""
    return db.scalar(select(IdempotencyRecord).where(
        IdempotencyRecord.wallet_account_id == account_id, IdempotencyRecord.key == key))


def begin(db: Session, account_id: int, key: str, digest: str) -> IdempotencyRecord:
    """Claim the key in the caller's transaction (a concurrent twin waits on the unique key)."""
    record = IdempotencyRecord(wallet_account_id=account_id, key=key, request_digest=digest,
                               status_code=0, response="")
    db.add(record)
    db.flush()
    return record


def store(record: IdempotencyRecord, status: int, payload: Any) -> None:  # noqa: ANN401
    """Keep the answer to replay."""
    record.status_code, record.response = status, json.dumps(payload, ensure_ascii=False)


def replay_committed(account_id: int, key: str, digest: str) -> ResponseReturnValue | None:
    """The twin's committed answer, after this request lost the race for the key."""
    with runtime().session_factory() as db:
        record = find(db, account_id, key)
    return None if record is None else replayed(record, digest)


def replayed(record: IdempotencyRecord, digest: str) -> ResponseReturnValue:
    """The stored answer, or a refusal when the body differs from the first one."""
    if record.request_digest != digest:
        return refused(Refusal("idempotency.mismatch"), 422)
    return current_app.response_class(record.response, status=record.status_code,
                                      mimetype="application/json")
