"""Telling patients that a result is there: one wallet message per account and version,
through the outbox (``result_push``), linking to the report page; never a value or a test's
name, and for a critical value only the request to contact the hospital."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.flows import OutboxJob, Services
from adapter.i18n import translate
from adapter.models import Patient, Result, ResultState, Verification, WalletAccount
from adapter.outbox import enqueue, finish
from adapter.protection import mask_name
from adapter.results.texts import NOTICES

logger = logging.getLogger(__name__)

KIND = "result_push"


def report_path(result_id: int) -> str:
    """The patient page of a result (under the public URL)."""
    return f"/h5/results/{result_id}"


def recipients(session: Session, document_index: str) -> list[Patient]:
    """The person's verified links, one per account: only they are told or shown results.

    An unverified link may be a stranger who knows the person's document (docs/identity.md).
    """
    return recipients_of(session, [document_index]).get(document_index, [])


def recipients_of(session: Session, document_indexes: list[str]) -> dict[str, list[Patient]]:
    """``recipients`` of several people in one query (a batch of results at once)."""
    wanted = sorted(set(document_indexes))
    if not wanted:
        return {}
    links = session.scalars(
        select(Patient)
        .where(Patient.document_index.in_(wanted),
               Patient.verification.in_(Verification.VERIFIED), Patient.removed_at.is_(None))
        .order_by(Patient.id))
    seen: dict[str, dict[int, Patient]] = {}
    for link in links:
        seen.setdefault(link.document_index, {}).setdefault(link.wallet_account_id, link)
    return {index: list(by_account.values()) for index, by_account in seen.items()}


def notice_of(result: Result) -> str:
    """Which message a result's announcement is: critical, corrected or ready."""
    if result.critical:
        return "critical"
    return "corrected" if result.corrected else "ready"


@dataclass(frozen=True)
class Announcement:
    """A result's version to be announced, with the notice it is announced with."""

    result: Result
    version: int
    notice: str
    document_index: str


def due_announcement(result: Result) -> Announcement | None:
    """The announcement the result's current version is owed, marked as made; None when that
    version was announced already or the result is nobody's yet."""
    if result.announced_version >= result.version or not result.document_index:
        return None
    result.announced_version = result.version
    return Announcement(result, result.version, notice_of(result), result.document_index)


def queue_announcements(session: Session, announcements: list[Announcement],
                        now: dt.datetime) -> int:
    """Queue each announcement to each recipient (one query for all the recipients; the
    results must have their ids); returns how many messages were queued."""
    if not announcements:
        return 0
    with session.no_autoflush:  # the results' own changes are flushed once, with these
        links = recipients_of(session, [a.document_index for a in announcements])
    queued = 0
    for due in announcements:
        accounts = links.get(due.document_index, [])
        for link in accounts:
            enqueue(session, KIND, ("result", due.result.id), now,
                    account_id=link.wallet_account_id, version=due.version, notice=due.notice)
        queued += len(accounts)
        logger.info("result %s version %d announced to %d account(s)", due.result.id,
                    due.version, len(accounts))
    return queued


def announce(session: Session, result: Result, now: dt.datetime) -> int:
    """Queue the announcement of the result's current version to each recipient, once;
    returns how many were queued."""
    due = due_announcement(result)
    return queue_announcements(session, [due], now) if due is not None else 0


def deliver_result_push(services: Services, job: OutboxJob, now: dt.datetime) -> None:
    """Send one announcement, unless the result changed since (a newer one is queued), was
    withdrawn or held, or the account's link is no longer verified: then it is dropped."""
    account_id, version = int(job.payload["account_id"]), int(job.payload["version"])
    with services.session_factory() as session:
        result = session.get(Result, int(job.subject_id))
        link = None
        if (result is not None and result.version == version and result.document_index
                and result.state not in (ResultState.WITHDRAWN, ResultState.UNMATCHED)):
            link = next((p for p in recipients(session, result.document_index)
                         if p.wallet_account_id == account_id), None)
        account = session.get(WalletAccount, account_id) if link is not None else None
        text = ""
        if account is not None:
            # Accounts have no language of their own yet: zh-CN, like identity's notices.
            text = translate(NOTICES[job.payload["notice"]], "zh-CN").format(
                name=mask_name(link.name))
            user_id, platform = account.user_id, account.platform
    if account is not None:
        url = f"{services.config.effective_public_url}{report_path(int(job.subject_id))}"
        services.wallet_for(platform).push_message(user_id, text, url)
    else:
        logger.info("result_push %s dropped: superseded, withdrawn or no longer allowed", job.id)
    with services.session_factory.begin() as session:
        finish(session, job, now)
