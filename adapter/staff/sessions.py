"""Staff sessions: as patient sessions (adapter/identity/sessions.py), the cookie carries a
random token and the database only its SHA-256; a session ends when revoked (sign-out, a
disabled account), unused for the idle timeout, at its absolute lifetime, or under another
secret key. Their own table and timeouts: a staff screen shows many patients' data."""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
from typing import TYPE_CHECKING

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from adapter.flows import Services
from adapter.identity.sessions import SessionPolicy, token_hash
from adapter.models import StaffAccount, StaffSession
from adapter.staff.accounts import StaffUser, staff_user
from adapter.staff.audit import Action, record

if TYPE_CHECKING:
    from adapter.config import Config

logger = logging.getLogger(__name__)


def staff_policy(config: Config) -> SessionPolicy:
    """The staff session policy (ADAPTER_STAFF_SESSION_IDLE_MINUTES, _MAX_HOURS)."""
    return SessionPolicy(idle=dt.timedelta(minutes=config.staff_session_idle_minutes),
                         lifetime=dt.timedelta(hours=config.staff_session_max_hours))


def start_staff_session(session: Session, user: StaffUser, *, key: str,
                        now: dt.datetime) -> str:
    """Open a session for a staff user who just signed in; returns the cookie's token."""
    token = secrets.token_urlsafe(32)
    session.add(StaffSession(token_hash=token_hash(token), staff_account_id=user.id, key_id=key,
                             created_at=now, last_seen_at=now))
    session.flush()
    return token


def resolve_staff_session(session: Session, token: str, *, key: str, policy: SessionPolicy,
                          now: dt.datetime) -> StaffUser | None:
    """The staff user of a live session, or None (unknown, ended, expired, other key)."""
    row = session.scalar(select(StaffSession).where(StaffSession.token_hash == token_hash(token)))
    if (row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_id, key)
            or now - row.created_at >= policy.lifetime or now - row.last_seen_at >= policy.idle):
        return None
    user = staff_user(session, row.staff_account_id)
    if user is None:  # disabled since
        return None
    if now - row.last_seen_at >= policy.touch_every:
        row.last_seen_at = now
    return user


def end_staff_session(session: Session, token: str, *, now: dt.datetime) -> bool:
    """Sign out: the session ends wherever its cookie was copied. False if it was not live."""
    ended = session.execute(
        update(StaffSession)
        .where(StaffSession.token_hash == token_hash(token), StaffSession.revoked_at.is_(None))
        .values(revoked_at=now))
    return bool(ended.rowcount)


def disable_staff_account(session: Session, account_id: int, *, now: dt.datetime,
                          actor: str = "", remote: str = "") -> int:
    """Disable a staff account: no sign-in, and its sessions end now; returns how many.
    Audited (``actor`` "" for the command line)."""
    account = session.get(StaffAccount, account_id, with_for_update=True)
    if account is None:
        raise LookupError(f"no staff account {account_id}")
    account.disabled_at = account.disabled_at or now
    record(session, actor or "cli", Action.ACCOUNT_DISABLED, f"staff:{account_id}", remote, now)
    ended = session.execute(update(StaffSession).where(
        StaffSession.staff_account_id == account_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=now))
    logger.info("staff account %s disabled; %d session(s) ended", account_id, ended.rowcount)
    return ended.rowcount


def purge_staff_sessions(session: Session, *, policy: SessionPolicy, now: dt.datetime) -> int:
    """Delete the rows of staff sessions that can never be used again."""
    purged = session.execute(delete(StaffSession).where(or_(
        StaffSession.revoked_at.is_not(None),
        StaffSession.created_at <= now - policy.lifetime,
        StaffSession.last_seen_at <= now - policy.idle)))
    return purged.rowcount


def purge_ended_staff_sessions(services: Services) -> int:
    """The staff flow's scheduled job: purge_staff_sessions under the configured policy."""
    with services.session_factory.begin() as session:
        return purge_staff_sessions(session, policy=staff_policy(services.config),
                                    now=services.clock.now())
