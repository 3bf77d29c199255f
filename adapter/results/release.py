"""Releasing held results: by a doctor, or when the policy's days have passed."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.models import Result, ResultState
from adapter.refusals import Refusal
from adapter.results.announcing import announce

logger = logging.getLogger(__name__)


def _release(session: Session, result: Result, staff_user: str | None,
             now: dt.datetime) -> None:
    result.state, result.released_at, result.released_by = ResultState.RELEASED, now, staff_user
    result.updated_at = now
    announce(session, result, now)


def release_result(session: Session, result_id: int, staff_user: str,
                   now: dt.datetime) -> Result:
    """A doctor releases a held result to its patient; refused unless it is held."""
    result = session.get(Result, result_id, with_for_update=True)
    if result is None:
        raise Refusal("result.unknown")
    if result.state != ResultState.HELD:
        raise Refusal("result.not_held")
    _release(session, result, staff_user[:64], now)
    logger.info("result %s released by staff user %s", result.id, result.released_by)
    return result


def release_due(session: Session, now: dt.datetime, limit: int = 500) -> list[int]:
    """Release held results whose release time has come (no doctor released them)."""
    due = list(session.scalars(
        select(Result)
        .where(Result.state == ResultState.HELD, Result.release_at <= now)
        .order_by(Result.id).limit(limit).with_for_update(skip_locked=True)))
    for result in due:
        _release(session, result, None, now)
    if due:
        logger.info("%d held result(s) released: their hold ran out", len(due))
    return [result.id for result in due]
