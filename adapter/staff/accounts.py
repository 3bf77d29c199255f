"""Staff accounts: created with a role, signed in with a password, locked after repeated
failures. What each role may do is the table GRANTS; the web layer asks ``may``."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.models import StaffAccount
from adapter.refusals import Refusal
from adapter.staff.audit import Action, record
from adapter.staff.passwords import (
    check_password_rules,
    hash_password,
    needs_rehash,
    spend_like_a_check,
    verify_password,
)

if TYPE_CHECKING:
    from adapter.config import Config

logger = logging.getLogger(__name__)

USERNAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


class StaffRole:
    """What a staff account may do (GRANTS)."""
    """What a staff account may do (adapter/staff/accounts.py GRANTS)."""

    ADMIN = "admin"  # everything, raw message content and the audit trail included
    OPERATOR = "operator"  # the status pages and their actions
    VIEWER = "viewer"  # the status pages, no action
    DOCTOR = "doctor"  # only the doctor pages: their own patients' results

    ALL = (ADMIN, OPERATOR, VIEWER, DOCTOR)


class Permission(StrEnum):
    """What a page or an action of /admin/ needs."""

    STATUS = "status"  # the dashboard, alerts and message lists
    OPERATE = "operate"  # act on them: acknowledge, reprocess, resend
    RAW = "raw"  # raw message content (ID numbers masked)
    AUDIT = "audit"  # the audit trail
    STAFF = "staff"  # staff accounts: add, disable
    DOCTOR = "doctor"  # the doctor pages: one's own patients' results


GRANTS: dict[str, frozenset[Permission]] = {
    StaffRole.ADMIN: frozenset({Permission.STATUS, Permission.OPERATE, Permission.RAW,
                                Permission.AUDIT, Permission.STAFF}),
    StaffRole.OPERATOR: frozenset({Permission.STATUS, Permission.OPERATE}),
    StaffRole.VIEWER: frozenset({Permission.STATUS}),
    StaffRole.DOCTOR: frozenset({Permission.DOCTOR}),
}


def may(role: str, permission: Permission) -> bool:
    """Whether a role holds a permission (an unknown role holds none)."""
    return permission in GRANTS.get(role, frozenset())


@dataclass(frozen=True)
class StaffUser:
    """A signed-in staff user, as the pages and the use cases see them."""

    id: int
    username: str
    role: str
    doctor_code: str | None = None

    def may(self, permission: Permission) -> bool:
        """Whether this user's role holds ``permission``."""
        return may(self.role, permission)


def _user(account: StaffAccount) -> StaffUser:
    return StaffUser(account.id, account.username, account.role, account.doctor_code)


@dataclass(frozen=True)
class LockoutPolicy:
    """After ``failures`` wrong passwords in a row an account refuses every sign-in, the right
    password included, for ``period`` (ADAPTER_STAFF_LOCKOUT_FAILURES / _MINUTES)."""

    failures: int = 5
    period: dt.timedelta = dt.timedelta(minutes=15)

    @classmethod
    def of(cls, config: Config) -> LockoutPolicy:
        """The policy the configuration sets."""
        return cls(config.staff_lockout_failures,
                   dt.timedelta(minutes=config.staff_lockout_minutes))


def create_account(session: Session, username: str, password: str, role: str, *,
                   now: dt.datetime, doctor_code: str | None = None,
                   doctor_codes: Collection[str] = (), actor: str = "",
                   remote: str = "") -> StaffUser:
    """Create a staff account; a doctor's is linked to their HIS doctor code, which must be in
    ``doctor_codes`` (mappings/doctors.csv) when that is given."""
    if not USERNAME.fullmatch(username):
        raise Refusal("staff.username_invalid")
    if role not in StaffRole.ALL:
        raise Refusal("staff.role_unknown")
    if role == StaffRole.DOCTOR:
        if not doctor_code:
            raise Refusal("staff.doctor_code_required")
        if doctor_codes and doctor_code not in doctor_codes:
            raise Refusal("staff.doctor_code_unknown")
    else:
        doctor_code = None
    check_password_rules(password)
    if session.scalar(select(StaffAccount.id).where(StaffAccount.username == username)):
        raise Refusal("staff.username_taken")
    account = StaffAccount(username=username, password_hash=hash_password(password), role=role,
                           doctor_code=doctor_code, failed_sign_ins=0, created_at=now)
    session.add(account)
    session.flush()
    record(session, actor or username, Action.ACCOUNT_CREATED, f"staff:{account.id}", remote, now)
    logger.info("staff account %s created (%s)", account.id, role)
    return _user(account)


def any_admin(session: Session) -> bool:
    """Whether an enabled admin account exists (``run`` says how to create the first)."""
    return session.scalar(select(StaffAccount.id).where(
        StaffAccount.role == StaffRole.ADMIN, StaffAccount.disabled_at.is_(None)).limit(1)) \
        is not None


def sign_in(session: Session, username: str, password: str, *, lockout: LockoutPolicy,
            now: dt.datetime, remote: str) -> StaffUser:
    """Check a staff user's password, counting failures toward the lockout; every attempt is
    audited. Refusal("staff.bad_credentials") or Refusal("staff.locked")."""
    account = None
    if USERNAME.fullmatch(username):
        account = session.scalar(select(StaffAccount).where(StaffAccount.username == username)
                                 .with_for_update())
    if account is None or account.disabled_at is not None:
        spend_like_a_check(password)
        record(session, username if account else "", Action.SIGN_IN_FAILED,
               f"staff:{account.id}" if account else "", remote, now)
        raise Refusal("staff.bad_credentials")
    target = f"staff:{account.id}"
    if account.locked_until is not None and now < account.locked_until:
        # Locked: not even the right password is checked, so guessing on is pointless.
        record(session, username, Action.SIGN_IN_FAILED, target, remote, now)
        raise Refusal("staff.locked", minutes=_minutes_left(account.locked_until, now))
    if not verify_password(account.password_hash, password):
        account.failed_sign_ins += 1
        record(session, username, Action.SIGN_IN_FAILED, target, remote, now)
        if account.failed_sign_ins >= lockout.failures:
            account.locked_until, account.failed_sign_ins = now + lockout.period, 0
            record(session, username, Action.LOCKED_OUT, target, remote, now)
            logger.warning("staff account %s locked after %d failed sign-ins", account.id,
                           lockout.failures)
            raise Refusal("staff.locked", minutes=_minutes_left(account.locked_until, now))
        raise Refusal("staff.bad_credentials")
    account.failed_sign_ins, account.locked_until, account.last_sign_in_at = 0, None, now
    if needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    record(session, username, Action.SIGN_IN, target, remote, now)
    return _user(account)


def _minutes_left(until: dt.datetime, now: dt.datetime) -> int:
    return max(1, -(-int((until - now).total_seconds()) // 60))


def staff_user(session: Session, account_id: int) -> StaffUser | None:
    """The enabled staff user of an account id, or None."""
    account = session.get(StaffAccount, account_id)
    if account is None or account.disabled_at is not None:
        return None
    return _user(account)


def list_accounts(session: Session) -> list[StaffAccount]:
    """Every staff account, by user name (hashes are never shown)."""
    return list(session.scalars(select(StaffAccount).order_by(StaffAccount.username)))
