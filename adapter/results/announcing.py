"""Telling patients that a result is there: one wallet message per account and version,
through the outbox (``result_push``), linking to the report page; never a value or a test's
name, and for a critical value only the request to contact the hospital."""

from __future__ import annotations

import datetime as dt
import logging

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
    links = session.scalars(
        select(Patient)
        .where(Patient.document_index == document_index,
               Patient.verification.in_(Verification.VERIFIED), Patient.removed_at.is_(None))
        .order_by(Patient.id))
    seen: dict[int, Patient] = {}
    for link in links:
        seen.setdefault(link.wallet_account_id, link)
    return list(seen.values())


def notice_of(result: Result) -> str:
    """Which message a result's announcement is: critical, corrected or ready."""
    if result.critical:
        return "critical"
    return "corrected" if result.corrected else "ready"


def announce(session: Session, result: Result, now: dt.datetime) -> int:
    """Queue the announcement of the result's current version to each recipient, once;
    returns how many were queued."""
    if result.announced_version >= result.version or not result.document_index:
        return 0
    with session.no_autoflush:  # the result's own changes are flushed once, with these
        links = recipients(session, result.document_index)
    for link in links:
        enqueue(session, KIND, ("result", result.id), now, account_id=link.wallet_account_id,
                version=result.version, notice=notice_of(result))
    result.announced_version = result.version
    logger.info("result %s version %d announced to %d account(s)", result.id, result.version,
                len(links))
    return len(links)


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
