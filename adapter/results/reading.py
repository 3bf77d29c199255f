"""Reading results: who may see which result, the trend of an analyte, and the audit trail.

A result is shown to an account only through one of its own links to the person the result is
about, and only a verified link that has not been removed (docs/identity.md: an unverified
link may be a stranger who knows the document); only a released result is shown. Every answer,
shown or refused, is written to ``result_view`` in the transaction that reads the result, so
nothing is shown that is not audited (DESIGN invariant 7).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from adapter.models import (
    Patient,
    Result,
    ResultAttachment,
    ResultObservation,
    ResultState,
    ResultView,
    ResultViewOutcome,
    Verification,
)

logger = logging.getLogger(__name__)

LIST_LIMIT = 100
TREND_POINTS = 12  # the latest values of one analyte on the report page


class Reason:
    """Why a result was not shown (kept in the audit trail; the patient hears "not found")."""

    SESSION = "session"  # no live patient session
    MALFORMED = "malformed"  # not an id at all
    UNKNOWN = "unknown"  # no such result (or file)
    NOT_THEIRS = "not_theirs"  # the account has no link to the person
    UNVERIFIED = "unverified"  # a link, not verified
    LINK_ENDED = "link_ended"  # a link that was removed (the guardian relation ended)
    NOT_RELEASED = "not_released"  # held, preliminary, unmatched or withdrawn
    UNCERTIFIED = "uncertified"  # the account is neither wallet-certified nor bound


@dataclass(frozen=True)
class Access:
    """The answer to one request for a result: the result and the link it is shown through,
    or why it is not shown."""

    result: Result | None = None
    link: Patient | None = None
    reason: str = ""

    @property
    def shown(self) -> bool:
        """Whether the result may be shown."""
        return not self.reason


@dataclass(frozen=True)
class TrendPoint:
    """One earlier (or this) value of an analyte."""

    result_id: int
    observed_at: dt.datetime | None
    number: str  # a decimal string, never a float
    abnormal_flags: tuple[str, ...] = field(default=())


def readable_links(session: Session, account_id: int) -> dict[str, Patient]:
    """The account's links results may be shown through: person (document index) -> link."""
    links = session.scalars(
        select(Patient)
        .where(Patient.wallet_account_id == account_id,
               Patient.verification.in_(Verification.VERIFIED), Patient.removed_at.is_(None))
        .order_by(Patient.id))
    return {link.document_index: link for link in links}


def list_results(session: Session, account_id: int,
                 limit: int = LIST_LIMIT) -> list[tuple[Result, Patient]]:
    """The released results of the people the account may read for, newest first."""
    links = readable_links(session, account_id)
    if not links:
        return []
    rows = session.scalars(
        select(Result)
        .where(Result.document_index.in_(links), Result.state.in_(ResultState.SHOWN))
        .order_by(Result.observed_at.desc().nulls_last(), Result.id.desc())
        .limit(limit))
    return [(result, links[result.document_index]) for result in rows]


def open_result(session: Session, account_id: int, result_id: int) -> Access:
    """One result for the account, or why it is not shown."""
    result = session.get(Result, result_id)
    if result is None:
        return Access(reason=Reason.UNKNOWN)
    if not result.document_index:
        return Access(result, reason=Reason.NOT_THEIRS)  # unmatched: shown to no one
    links = list(session.scalars(
        select(Patient).where(Patient.wallet_account_id == account_id,
                              Patient.document_index == result.document_index)))
    live = [link for link in links if link.removed_at is None]
    verified = [link for link in live if link.verification in Verification.VERIFIED]
    if not links:
        return Access(result, reason=Reason.NOT_THEIRS)
    if not live:
        return Access(result, reason=Reason.LINK_ENDED)
    if not verified:
        return Access(result, reason=Reason.UNVERIFIED)
    if result.state not in ResultState.SHOWN:
        return Access(result, verified[0], reason=Reason.NOT_RELEASED)
    return Access(result, verified[0])


def observations_of(session: Session, result_id: int) -> list[ResultObservation]:
    """A result's observations in the order they were sent."""
    return list(session.scalars(
        select(ResultObservation).where(ResultObservation.result_id == result_id)
        .order_by(ResultObservation.position)))


def open_file(session: Session, account_id: int, result_id: int,
              file_id: int) -> tuple[Access, ResultAttachment | None]:
    """A report file of a result the account may read (one of its current observations)."""
    access = open_result(session, account_id, result_id)
    if not access.shown:
        return access, None
    attached = session.scalar(select(ResultObservation.id).where(
        ResultObservation.result_id == result_id, ResultObservation.attachment_id == file_id))
    attachment = session.get(ResultAttachment, file_id) if attached is not None else None
    if attachment is None or attachment.result_id != result_id:
        return Access(access.result, access.link, reason=Reason.UNKNOWN), None
    return access, attachment


def trends(session: Session, result: Result,
           observations: list[ResultObservation]) -> dict[str, list[TrendPoint]]:
    """Per numeric analyte of the result, its values across the person's released results up
    to this one (oldest first, at most TREND_POINTS); an analyte with one value has none."""
    codes = {o.code for o in observations if o.code and o.number}
    if not codes or not result.document_index:
        return {}
    moment = result.observed_at or result.received_at
    rows = session.execute(
        select(ResultObservation.code, ResultObservation.number,
               ResultObservation.abnormal_flags, Result.id, Result.observed_at,
               Result.received_at)
        .join(Result, Result.id == ResultObservation.result_id)
        .where(Result.document_index == result.document_index,
               Result.state.in_(ResultState.SHOWN),
               ResultObservation.code.in_(codes), ResultObservation.number != "",
               tuple_(Result.observed_at, Result.id) <= tuple_(moment, result.id)
               if result.observed_at is not None else Result.id <= result.id)
        .order_by(Result.observed_at, Result.id, ResultObservation.position))
    series: dict[str, list[TrendPoint]] = {}
    for code, number, flags, rid, observed_at, received_at in rows:
        points = series.setdefault(code, [])
        if points and points[-1].result_id == rid:
            continue  # the analyte twice in one order: its first value
        points.append(TrendPoint(rid, observed_at or received_at, number,
                                 tuple(f for f in flags.split("~") if f)))
    return {code: points[-TREND_POINTS:] for code, points in series.items() if len(points) > 1}


def record_view(session: Session, *, action: str, now: dt.datetime, ip: str, user_agent: str,
                account_id: int | None, access: Access | None = None,
                result_id: int | None = None, file_id: int | None = None, reason: str = "",
                shown: int = 0) -> ResultView:
    """Write one line of the audit trail: who asked for what, when, from where, and whether
    it was shown (ids and codes only: no value, name or number)."""
    if access is not None:
        reason = reason or access.reason
        link = access.link
    else:
        link = None
    row = ResultView(
        at=now, wallet_account_id=account_id, patient_id=link.id if link else None,
        action=action, result_id=result_id, file_id=file_id,
        outcome=ResultViewOutcome.REFUSED if reason else ResultViewOutcome.SHOWN,
        reason=reason, shown=shown, ip=ip[:64], user_agent=user_agent[:200])
    session.add(row)
    if reason:
        logger.info("result %s %s refused to account %s: %s", result_id, action, account_id,
                    reason)
    return row
