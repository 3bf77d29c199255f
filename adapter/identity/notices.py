"""What identity tells wallet users: a message to an account (used by every flow), and the
notice to a person's first verified guardian that another account added them."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.i18n import N_, translate
from adapter.models import Patient, Verification
from adapter.outbox import enqueue
from adapter.protection import mask_name

logger = logging.getLogger(__name__)

# Masked: the guardian learns that someone added the person, never who did it; the person is
# named as the guardian's own list shows them, masked (PIPL art. 28, DESIGN invariant 6).
ADDED_ELSEWHERE = N_("另一个账户添加了您的就诊人{name}（证件尾号{tail}）。"
                     "如果不是您或您的家人添加的，请联系医院。")


def tell_account(session: Session, account_id: int, text: str, path: str, now: dt.datetime,
                 message_kind: str = "") -> None:
    """Queue a wallet message to an account, linking to ``path`` under the public URL."""
    enqueue(session, "push", ("wallet_account", account_id), now, message_kind=message_kind,
            text=text, path=path)


def first_verified_link(session: Session, document_index: str,
                        other_than_account: int) -> Patient | None:
    """The person's earliest verified link in another account (their first verified
    guardian, or the person themself), if any."""
    return session.scalar(
        select(Patient)
        .where(Patient.document_index == document_index,
               Patient.wallet_account_id != other_than_account,
               Patient.verification.in_(Verification.VERIFIED),
               Patient.removed_at.is_(None))
        .order_by(Patient.verified_at, Patient.id)
        .limit(1)
    )


def added_elsewhere_text(guardian_link: Patient, locale: str = "zh-CN") -> str:
    """The notice about the person of ``guardian_link``, masked."""
    tail = guardian_link.document_masked.rsplit("*", 1)[-1]
    return translate(ADDED_ELSEWHERE, locale).format(name=mask_name(guardian_link.name),
                                                     tail=tail)


def tell_guardian(session: Session, guardian_link: Patient, now: dt.datetime) -> None:
    """Queue the notice to the guardian's account (through the outbox: it survives a wallet
    outage). Accounts have no language of their own yet, so it is sent in zh-CN."""
    tell_account(session, guardian_link.wallet_account_id, added_elsewhere_text(guardian_link),
                 "/h5/patients", now, message_kind="patient_added_elsewhere")
    logger.info("patient %s: another account added the same person; account %s told",
                guardian_link.id, guardian_link.wallet_account_id)


def tell_first_guardian(session: Session, added: Patient, now: dt.datetime) -> None:
    """When an account adds a person, tell the person's first verified guardian elsewhere."""
    guardian = first_verified_link(session, added.document_index, added.wallet_account_id)
    if guardian is not None:
        tell_guardian(session, guardian, now)
