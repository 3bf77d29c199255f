"""The outbox runner: lease due items one at a time, deliver each by its kind's declared
delivery function, and retry, park or give up by its kind's declared policy. No business
decision lives here; the flows declare them (adapter/flows.py).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.failures import safe_code, stack
from adapter.flows import OutboxJob, OutboxKind, Services
from adapter.models import OutboxMessage, OutboxStatus
from adapter.ports import HisUnavailable, WalletUnavailable

logger = logging.getLogger(__name__)


def backoff(attempts: int, cap_seconds: int = 600) -> dt.timedelta:
    """2 s, 4 s, 8 s... capped (10 minutes by default)."""
    return dt.timedelta(seconds=min(2 ** min(attempts, 30), cap_seconds))


def claim_outbox(session: Session, now: dt.datetime, limit: int) -> list[OutboxMessage]:
    """Lock due outbox messages no other worker holds."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.PENDING,
               OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def lease_seconds(services: Services) -> float:
    """How long a leased message is left alone: longer than the slowest delivery (a new
    patient's booking makes four HIS exchanges: QBP^Q22, ADT^A28, QBP^Q22, SRM^S01)."""
    config = services.config
    return 4 * (config.his_connect_timeout + config.his_ack_timeout) + 10


def lease_outbox(services: Services, now: dt.datetime) -> OutboxJob | None:
    """Take the oldest due message for this worker and commit that at once.

    The HIS or wallet exchange then runs outside any transaction (no row lock, and on SQLite
    no write lock, held across the network). A worker that dies mid-exchange leaves the lease
    to run out, and the message is sent again: every delivery is idempotent at the far end
    (the placer id at the HIS, out_request_no and out_trade_no at the wallet).
    """
    with services.session_factory.begin() as session:
        claimed = claim_outbox(session, now, 1)
        if not claimed:
            return None
        message = claimed[0]
        message.attempts += 1
        message.next_attempt_at = now + dt.timedelta(seconds=lease_seconds(services))
        return OutboxJob(message.id, message.kind, message.subject_type, message.subject_id,
                         json.loads(message.payload), message.attempts)


def deliver_outbox(services: Services, kinds: Mapping[str, OutboxKind] | None = None,
                   limit: int = 500, budget_seconds: float = 10.0) -> int:
    """Deliver due outbox messages one by one until none is due (or this run's time budget is
    spent; the next run goes on). ``kinds`` defaults to the merged flows' kinds."""
    kinds = services.flows.outbox if kinds is None else kinds
    done = 0
    deadline = time.monotonic() + budget_seconds
    for _ in range(limit):
        if time.monotonic() > deadline:
            break
        now = services.clock.now()
        job = lease_outbox(services, now)
        if job is None:
            break
        kind = kinds.get(job.kind)
        try:
            if kind is None:
                raise LookupError(f"no flow declares outbox kind {job.kind}")
            kind.deliver(services, job, now)
            done += 1
        except (HisUnavailable, WalletUnavailable) as exc:
            _failed(services, kind, job, now, safe_code(exc))
        except Exception as exc:  # noqa: BLE001 - recorded, retried, then parked
            # Never str(exc) nor logger.exception: the text of a builder's or a database's
            # error can carry the patient's name or phone (adapter/failures.py).
            logger.error("outbox %s (%s) failed: %s\n%s", job.id, job.kind, safe_code(exc),
                         stack(exc))
            _failed(services, kind, job, now, safe_code(exc))
    return done


def _failed(services: Services, kind: OutboxKind | None, job: OutboxJob, now: dt.datetime,
            error: str) -> None:
    with services.session_factory.begin() as session:
        message = session.get(OutboxMessage, job.id)
        retry_later(services, session, kind, job, message, now, error)


def retry_later(services: Services, session: Session, kind: OutboxKind | None, job: OutboxJob,
                message: OutboxMessage, now: dt.datetime, error: str) -> None:
    """After a failed attempt: give up (by the kind's rule), park, or try again later.

    ``error`` is stored and logged: a safe code (adapter.failures.safe_code), never an
    exception's text."""
    message.last_error = error[:200]
    max_attempts = services.policy.outbox_max_attempts
    if kind is not None and kind.never_parked:
        if kind.give_up is not None and kind.give_up(services, session, job, now):
            message.status = OutboxStatus.FAILED
            return
        # Money on its way back, or an answer a patient's money waits for: keep trying (at
        # most every ten minutes); /metrics shows the pending outbox to admins meanwhile.
        message.next_attempt_at = now + backoff(min(message.attempts, 9),
                                                kind.max_backoff_seconds)
        log = logger.error if message.attempts >= max_attempts else logger.warning
        log("outbox %s (%s) attempt %d failed (%s); retrying", message.id, message.kind,
            message.attempts, error)
        return
    if message.attempts >= max_attempts:
        message.status = OutboxStatus.FAILED
        logger.error("outbox %s (%s) parked after %d attempts: %s", message.id, message.kind,
                     message.attempts, error)
    else:
        cap = kind.max_backoff_seconds if kind is not None else 600
        message.next_attempt_at = now + backoff(message.attempts, cap)
        logger.warning("outbox %s (%s) attempt %d failed (%s); retrying", message.id,
                       message.kind, message.attempts, error)
