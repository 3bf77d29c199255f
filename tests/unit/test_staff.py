"""Staff accounts, sign-in, lockout, sessions and the audit trail as use cases."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from adapter.identity.sessions import SessionPolicy
from adapter.models import StaffAccount, StaffAudit
from adapter.refusals import Refusal
from adapter.staff.accounts import (
    GRANTS,
    LockoutPolicy,
    Permission,
    StaffRole,
    any_admin,
    create_account,
    may,
    sign_in,
)
from adapter.staff.audit import Action, AuditQuery, record, search_audit
from adapter.staff.sessions import (
    disable_staff_account,
    end_staff_session,
    purge_staff_sessions,
    resolve_staff_session,
    start_staff_session,
)

PASSWORD = "a long enough password"
LOCKOUT = LockoutPolicy(failures=3, period=dt.timedelta(minutes=10))
POLICY = SessionPolicy(idle=dt.timedelta(minutes=15), lifetime=dt.timedelta(hours=2))


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch):
    # Argon2id with the smallest parameters: the unit tests check the rules, not the cost (the
    # integration tests sign in with the real parameters).
    from argon2 import PasswordHasher

    from adapter.staff import passwords

    monkeypatch.setattr(passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8,
                                                             parallelism=1))


@pytest.fixture
def db(runtime):
    with runtime.session_factory.begin() as session:
        yield session


def _create(db, runtime, username="admin1", role=StaffRole.ADMIN, **kw):
    return create_account(db, username, PASSWORD, role, now=runtime.clock.now(), **kw)


def test_only_the_argon2id_hash_of_the_password_is_kept(db, runtime):
    user = _create(db, runtime)
    account = db.get(StaffAccount, user.id)
    assert account.password_hash.startswith("$argon2id$") and PASSWORD not in account.password_hash


@pytest.mark.parametrize(("username", "password", "role", "doctor_code", "code"), [
    ("bad name", PASSWORD, StaffRole.ADMIN, None, "staff.username_invalid"),
    ("x" * 65, PASSWORD, StaffRole.ADMIN, None, "staff.username_invalid"),
    ("ok", "short", StaffRole.ADMIN, None, "staff.password_too_short"),
    ("ok", "p" * 257, StaffRole.ADMIN, None, "staff.password_too_long"),
    ("ok", PASSWORD, "root", None, "staff.role_unknown"),
    ("ok", PASSWORD, StaffRole.DOCTOR, None, "staff.doctor_code_required"),
    ("ok", PASSWORD, StaffRole.DOCTOR, "NOPE", "staff.doctor_code_unknown"),
])
def test_accounts_are_refused_with_a_reason(db, runtime, username, password, role,
                                            doctor_code, code):
    with pytest.raises(Refusal) as refused:
        create_account(db, username, password, role, now=runtime.clock.now(),
                       doctor_code=doctor_code, doctor_codes=runtime.mappings.doctors.keys())
    assert refused.value.code == code
    assert refused.value.message("en") and refused.value.message("zh-CN")


def test_a_hash_made_with_weaker_parameters_is_renewed_at_sign_in(db, runtime):
    from argon2 import PasswordHasher

    user = _create(db, runtime)
    account = db.get(StaffAccount, user.id)
    account.password_hash = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1,
                                           salt_len=8).hash(PASSWORD)
    weak = account.password_hash
    sign_in(db, "admin1", PASSWORD, lockout=LOCKOUT, now=runtime.clock.now(), remote="")
    assert account.password_hash != weak and account.password_hash.startswith("$argon2id$")


def test_a_username_is_taken_once(db, runtime):
    _create(db, runtime)
    with pytest.raises(Refusal, match="staff.username_taken"):
        _create(db, runtime)


def test_a_doctor_is_linked_to_a_his_doctor_code_others_are_not(db, runtime):
    doctor = _create(db, runtime, "dr", StaffRole.DOCTOR, doctor_code="D1001",
                     doctor_codes=runtime.mappings.doctors.keys())
    viewer = _create(db, runtime, "v", StaffRole.VIEWER, doctor_code="D1001")
    assert (doctor.doctor_code, viewer.doctor_code) == ("D1001", None)


def test_roles_grant_what_the_issue_asks():
    assert set(GRANTS) == set(StaffRole.ALL)
    assert may(StaffRole.ADMIN, Permission.AUDIT) and may(StaffRole.ADMIN, Permission.RAW)
    assert may(StaffRole.ADMIN, Permission.STAFF) and not may(StaffRole.OPERATOR, Permission.STAFF)
    assert may(StaffRole.OPERATOR, Permission.OPERATE)
    assert not may(StaffRole.OPERATOR, Permission.RAW)
    assert may(StaffRole.VIEWER, Permission.STATUS)
    assert not may(StaffRole.VIEWER, Permission.OPERATE)
    assert GRANTS[StaffRole.DOCTOR] == {Permission.DOCTOR}
    assert not may("someone", Permission.STATUS)


def test_the_first_admin_is_known(db, runtime):
    assert not any_admin(db)
    _create(db, runtime, "v", StaffRole.VIEWER)
    assert not any_admin(db)
    _create(db, runtime)
    assert any_admin(db)


def test_lockout_after_repeated_failures_then_open_again(db, runtime):
    _create(db, runtime)
    clock = runtime.clock
    for _ in range(2):
        with pytest.raises(Refusal, match="staff.bad_credentials"):
            sign_in(db, "admin1", "wrong", lockout=LOCKOUT, now=clock.now(), remote="10.0.0.1")
    with pytest.raises(Refusal) as locked:
        sign_in(db, "admin1", "wrong", lockout=LOCKOUT, now=clock.now(), remote="10.0.0.1")
    assert (locked.value.code, locked.value.params) == ("staff.locked", {"minutes": 10})
    with pytest.raises(Refusal, match="staff.locked"):
        sign_in(db, "admin1", PASSWORD, lockout=LOCKOUT, now=clock.advance(minutes=9),
                remote="10.0.0.1")
    user = sign_in(db, "admin1", PASSWORD, lockout=LOCKOUT, now=clock.advance(minutes=1),
                   remote="10.0.0.1")
    assert user.username == "admin1"
    assert db.get(StaffAccount, user.id).failed_sign_ins == 0


def test_a_success_resets_the_count_of_failures(db, runtime):
    _create(db, runtime)
    now = runtime.clock.now()
    for _ in range(5):
        with pytest.raises(Refusal, match="staff.bad_credentials"):
            sign_in(db, "admin1", "wrong", lockout=LOCKOUT, now=now, remote="")
        with pytest.raises(Refusal, match="staff.bad_credentials"):
            sign_in(db, "admin1", "wrong", lockout=LOCKOUT, now=now, remote="")
        sign_in(db, "admin1", PASSWORD, lockout=LOCKOUT, now=now, remote="")


def test_a_disabled_account_cannot_sign_in_and_its_sessions_end(db, runtime):
    user = _create(db, runtime)
    now = runtime.clock.now()
    token = start_staff_session(db, user, key="k", now=now)
    assert disable_staff_account(db, user.id, now=now) == 1
    assert resolve_staff_session(db, token, key="k", policy=POLICY, now=now) is None
    with pytest.raises(Refusal, match="staff.bad_credentials"):
        sign_in(db, "admin1", PASSWORD, lockout=LOCKOUT, now=now, remote="")


def test_sessions_end_idle_at_their_lifetime_at_sign_out_and_under_another_key(db, runtime):
    user = _create(db, runtime)
    t0 = runtime.clock.now()
    token = start_staff_session(db, user, key="k", now=t0)
    assert resolve_staff_session(db, token, key="k", policy=POLICY, now=t0) == user
    assert resolve_staff_session(db, token, key="other", policy=POLICY, now=t0) is None
    later = t0
    while later + dt.timedelta(minutes=14) < t0 + POLICY.lifetime:
        later += dt.timedelta(minutes=14)
        assert resolve_staff_session(db, token, key="k", policy=POLICY, now=later) == user
    assert resolve_staff_session(db, token, key="k", policy=POLICY,
                                 now=t0 + POLICY.lifetime) is None
    idle = start_staff_session(db, user, key="k", now=t0)
    assert resolve_staff_session(db, idle, key="k", policy=POLICY,
                                 now=t0 + dt.timedelta(minutes=15)) is None
    out = start_staff_session(db, user, key="k", now=t0)
    assert end_staff_session(db, out, now=t0) and not end_staff_session(db, out, now=t0)
    assert resolve_staff_session(db, out, key="k", policy=POLICY, now=t0) is None
    assert purge_staff_sessions(db, policy=POLICY, now=t0 + POLICY.lifetime) == 3


def test_every_attempt_is_audited_and_the_trail_is_searchable(db, runtime):
    _create(db, runtime)
    now = runtime.clock.now()
    with pytest.raises(Refusal):
        sign_in(db, "admin1", "wrong", lockout=LOCKOUT, now=now, remote="10.0.0.9")
    with pytest.raises(Refusal):
        sign_in(db, "ghost", "wrong", lockout=LOCKOUT, now=now, remote="10.0.0.9")
    sign_in(db, "admin1", PASSWORD, lockout=LOCKOUT, now=now, remote="10.0.0.9")
    record(db, "admin1", Action.RESULT_VIEWED, "result:7", "10.0.0.9", now + dt.timedelta(hours=1))
    rows = list(db.scalars(select(StaffAudit).order_by(StaffAudit.id)))
    assert [r.action for r in rows] == ["account_created", "sign_in_failed", "sign_in_failed",
                                        "sign_in", "result_viewed"]
    assert rows[2].actor == ""  # an unknown name is not written down: it may be a password
    found, total = search_audit(db, AuditQuery(actor="admin1", action="sign_in"))
    assert total == 1 and found[0].remote == "10.0.0.9"
    found, total = search_audit(db, AuditQuery(target="result:"))
    assert [r.target for r in found] == ["result:7"]
    found, total = search_audit(db, AuditQuery(since=now + dt.timedelta(minutes=30)))
    assert total == 1
    found, total = search_audit(db, AuditQuery(target="%"))
    assert total == 0  # a wildcard is a character, not a pattern
