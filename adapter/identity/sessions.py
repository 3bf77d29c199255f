"""Patient sessions: started at sign-in, resolved on every request, ended at sign-out.

The cookie carries a random token; the database keeps only its SHA-256, so neither a copy of
the table nor a log line can be replayed as a cookie. A session ends when it is revoked (sign-out,
a disabled account), when it has not been used for the idle timeout, when it reaches its
absolute lifetime, or when the secret key it was made under is no longer the app's key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from adapter.flows import Services
from adapter.models import PatientSession, WalletAccount
from adapter.refusals import Refusal

if TYPE_CHECKING:
    from adapter.config import Config

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionPolicy:
    """How long a session lives (ADAPTER_SESSION_IDLE_MINUTES, ADAPTER_SESSION_MAX_HOURS)."""

    idle: dt.timedelta = dt.timedelta(minutes=30)
    lifetime: dt.timedelta = dt.timedelta(hours=12)
    # last_seen_at is written at most this often per session: a request in the morning rush
    # costs one indexed read, not a write. The idle timeout is exact to within this.
    touch_every: dt.timedelta = dt.timedelta(minutes=1)

    @classmethod
    def of(cls, config: Config) -> SessionPolicy:
        """The policy the configuration sets."""
        return cls(idle=dt.timedelta(minutes=config.session_idle_minutes),
                   lifetime=dt.timedelta(hours=config.session_max_hours))


def token_hash(token: str) -> str:
    """What the database keeps of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def key_id(secret_key: str) -> str:
    """A short fingerprint of the secret key (not the key): sessions are bound to it."""
    return hmac.new(secret_key.encode(), b"patient-session", hashlib.sha256).hexdigest()[:16]


def start_session(session: Session, account_id: int, *, key: str, now: dt.datetime) -> str:
    """Open a session for a signed-in wallet account; returns the token the cookie carries."""
    account = session.get(WalletAccount, account_id)
    if account is None or account.disabled_at is not None:
        raise Refusal("account.disabled")
    token = secrets.token_urlsafe(32)
    session.add(PatientSession(token_hash=token_hash(token), wallet_account_id=account_id,
                               key_id=key, created_at=now, last_seen_at=now))
    session.flush()
    return token


def resolve_session(session: Session, token: str, *, key: str, policy: SessionPolicy,
                    now: dt.datetime) -> int | None:
    """The wallet account of a live session, or None (unknown, ended, expired, other key)."""
    row = session.execute(
        select(PatientSession.id, PatientSession.wallet_account_id, PatientSession.key_id,
               PatientSession.created_at, PatientSession.last_seen_at,
               PatientSession.revoked_at, WalletAccount.disabled_at)
        .join(WalletAccount, WalletAccount.id == PatientSession.wallet_account_id)
        .where(PatientSession.token_hash == token_hash(token))
    ).one_or_none()
    if row is None:
        return None
    session_id, account_id, made_under, created_at, last_seen_at, revoked_at, disabled_at = row
    if (revoked_at is not None or disabled_at is not None
            or not hmac.compare_digest(made_under, key)
            or now - created_at >= policy.lifetime or now - last_seen_at >= policy.idle):
        return None
    if now - last_seen_at >= policy.touch_every:
        session.execute(update(PatientSession)
                        .where(PatientSession.id == session_id,
                               PatientSession.revoked_at.is_(None))
                        .values(last_seen_at=now))
    return account_id


def end_session(session: Session, token: str, *, now: dt.datetime) -> bool:
    """Sign out: the session ends wherever its cookie was copied. False if it was not live."""
    ended = session.execute(
        update(PatientSession)
        .where(PatientSession.token_hash == token_hash(token), PatientSession.revoked_at.is_(None))
        .values(revoked_at=now))
    return bool(ended.rowcount)


def end_account_sessions(session: Session, account_id: int, *, now: dt.datetime) -> int:
    """End every session of one wallet account (a lost phone, a disabled account)."""
    ended = session.execute(
        update(PatientSession)
        .where(PatientSession.wallet_account_id == account_id,
               PatientSession.revoked_at.is_(None))
        .values(revoked_at=now))
    logger.info("ended %d session(s) of wallet account %s", ended.rowcount, account_id)
    return ended.rowcount


def disable_account(session: Session, account_id: int, *, now: dt.datetime) -> int:
    """Disable a wallet account: it can no longer sign in, and its sessions end now."""
    account = session.get(WalletAccount, account_id, with_for_update=True)
    if account is None:
        raise LookupError(f"no wallet account {account_id}")
    if account.disabled_at is None:
        account.disabled_at = now
    logger.info("wallet account %s disabled", account_id)
    return end_account_sessions(session, account_id, now=now)


def enable_account(session: Session, account_id: int) -> None:
    """Let a disabled wallet account sign in again (its old sessions stay ended)."""
    account = session.get(WalletAccount, account_id, with_for_update=True)
    if account is None:
        raise LookupError(f"no wallet account {account_id}")
    account.disabled_at = None
    logger.info("wallet account %s enabled", account_id)


def purge_sessions(session: Session, *, policy: SessionPolicy, now: dt.datetime) -> int:
    """Delete the rows of sessions that can never be used again."""
    purged = session.execute(
        delete(PatientSession).where(or_(
            PatientSession.revoked_at.is_not(None),
            PatientSession.created_at <= now - policy.lifetime,
            PatientSession.last_seen_at <= now - policy.idle,
        )))
    if purged.rowcount:
        logger.info("purged %d ended patient session(s)", purged.rowcount)
    return purged.rowcount


def purge_ended_sessions(services: Services) -> int:
    """The identity flow's scheduled job: purge_sessions under the configured policy."""
    with services.session_factory.begin() as session:
        return purge_sessions(session, policy=SessionPolicy.of(services.config),
                              now=services.clock.now())
