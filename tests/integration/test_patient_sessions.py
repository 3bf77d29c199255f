"""Patient sessions as use cases (adapter.identity.sessions), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from adapter.identity.sessions import (
    SessionPolicy,
    disable_account,
    enable_account,
    end_account_sessions,
    end_session,
    key_id,
    purge_sessions,
    resolve_session,
    start_session,
    token_hash,
)
from adapter.models import PatientSession, WalletAccount
from adapter.refusals import Refusal

T0 = dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.UTC)
KEY = key_id("the-secret-key")
POLICY = SessionPolicy(idle=dt.timedelta(minutes=30), lifetime=dt.timedelta(hours=12))


@pytest.fixture
def account_id(session_factory) -> int:
    with session_factory.begin() as db:
        account = WalletAccount(platform="fake", user_id="2088000000000101")
        db.add(account)
        db.flush()
        return account.id


def _start(session_factory, account_id: int, now: dt.datetime = T0) -> str:
    with session_factory.begin() as db:
        return start_session(db, account_id, key=KEY, now=now)


def _resolve(session_factory, token: str, now: dt.datetime, key: str = KEY) -> int | None:
    with session_factory.begin() as db:
        return resolve_session(db, token, key=key, policy=POLICY, now=now)


def _last_seen(session_factory, token: str) -> dt.datetime:
    with session_factory() as db:
        return db.scalar(select(PatientSession.last_seen_at)
                         .where(PatientSession.token_hash == token_hash(token)))


def test_only_the_tokens_hash_is_stored(session_factory, account_id):
    token = _start(session_factory, account_id)
    with session_factory() as db:
        [row] = db.scalars(select(PatientSession))
    assert row.token_hash == token_hash(token) and token not in row.token_hash
    assert len(token) >= 40  # 32 random bytes
    assert _resolve(session_factory, token, T0) == account_id
    assert _resolve(session_factory, token + "x", T0) is None


def test_last_seen_is_written_at_most_once_a_minute(session_factory, account_id):
    token = _start(session_factory, account_id)
    assert _resolve(session_factory, token, T0 + dt.timedelta(seconds=59)) == account_id
    assert _last_seen(session_factory, token) == T0
    later = T0 + dt.timedelta(seconds=61)
    assert _resolve(session_factory, token, later) == account_id
    assert _last_seen(session_factory, token) == later


def test_a_session_unused_for_the_idle_timeout_ends(session_factory, account_id):
    token = _start(session_factory, account_id)
    assert _resolve(session_factory, token, T0 + dt.timedelta(minutes=29)) == account_id
    # used at 00:59: idle counts from there
    assert _resolve(session_factory, token, T0 + dt.timedelta(minutes=58)) == account_id
    assert _resolve(session_factory, token, T0 + dt.timedelta(minutes=89)) is None


def test_a_session_in_use_still_ends_at_its_absolute_lifetime(session_factory, account_id):
    token = _start(session_factory, account_id)
    now = T0
    while now < T0 + dt.timedelta(hours=12) - dt.timedelta(minutes=20):
        now += dt.timedelta(minutes=20)
        assert _resolve(session_factory, token, now) == account_id
    assert _resolve(session_factory, token, T0 + dt.timedelta(hours=12)) is None


def test_ending_a_session_ends_only_that_session(session_factory, account_id):
    phone, tablet = _start(session_factory, account_id), _start(session_factory, account_id)
    with session_factory.begin() as db:
        assert end_session(db, phone, now=T0) is True
        assert end_session(db, phone, now=T0) is False
    assert _resolve(session_factory, phone, T0) is None
    assert _resolve(session_factory, tablet, T0) == account_id


def test_ending_an_accounts_sessions_ends_all_of_them(session_factory, account_id):
    tokens = [_start(session_factory, account_id) for _ in range(3)]
    with session_factory.begin() as db:
        assert end_account_sessions(db, account_id, now=T0) == 3
    assert [_resolve(session_factory, t, T0) for t in tokens] == [None, None, None]


def test_a_session_made_under_another_secret_key_is_refused(session_factory, account_id):
    token = _start(session_factory, account_id)
    assert key_id("the-secret-key") == KEY  # stable across processes
    assert _resolve(session_factory, token, T0, key=key_id("the-rotated-key")) is None


def test_disabling_an_account_ends_its_sessions_and_refuses_sign_in(session_factory,
                                                                    account_id):
    token = _start(session_factory, account_id)
    with session_factory.begin() as db:
        assert disable_account(db, account_id, now=T0) == 1
    assert _resolve(session_factory, token, T0) is None
    with pytest.raises(Refusal) as refused, session_factory.begin() as db:
        start_session(db, account_id, key=KEY, now=T0)
    assert refused.value.code == "account.disabled"
    assert refused.value.message("en").isascii()
    with session_factory.begin() as db:
        enable_account(db, account_id)
    assert _resolve(session_factory, token, T0) is None  # old sessions stay ended
    assert _resolve(session_factory, _start(session_factory, account_id), T0) == account_id


def test_a_disabled_account_refuses_even_a_session_that_was_not_revoked(session_factory,
                                                                       account_id):
    token = _start(session_factory, account_id)
    with session_factory.begin() as db:
        db.get(WalletAccount, account_id).disabled_at = T0  # set by hand, sessions untouched
    assert _resolve(session_factory, token, T0) is None


def test_disabling_an_unknown_account_says_so(session_factory):
    with pytest.raises(LookupError), session_factory.begin() as db:
        disable_account(db, 999_999, now=T0)


def test_purging_deletes_only_sessions_that_can_never_be_used(session_factory, account_id):
    live = _start(session_factory, account_id, T0 + dt.timedelta(hours=1))
    revoked = _start(session_factory, account_id, T0 + dt.timedelta(hours=1))
    _start(session_factory, account_id, T0)  # idle since T0
    with session_factory.begin() as db:
        end_session(db, revoked, now=T0 + dt.timedelta(hours=1))
    with session_factory.begin() as db:
        assert purge_sessions(db, policy=POLICY, now=T0 + dt.timedelta(hours=1)) == 2
    with session_factory() as db:
        assert db.scalar(select(func.count()).select_from(PatientSession)) == 1
    assert _resolve(session_factory, live, T0 + dt.timedelta(hours=1)) == account_id


def test_the_identity_flow_purges_sessions_on_a_schedule():
    from adapter.identity import FLOW

    [job] = [job for job in FLOW.jobs if job.name == "purge_sessions"]
    assert job.seconds > 0
