"""Waking the outbox runner: PostgreSQL tells listening workers of queued work when the
transaction that queued it commits, and only then."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from adapter.outbox import enqueue
from adapter.worker.wakeup import OutboxWakeup

NOW = dt.datetime(2026, 12, 3, 7, 30, tzinfo=dt.UTC)


@pytest.fixture
def woken(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no notifications: the poll is all there is")
    calls: list[float] = []
    event = threading.Event()

    def wake():
        calls.append(1)
        event.set()

    wakeup = OutboxWakeup(engine, wake)
    wakeup.start()
    yield event, calls
    wakeup.stop()


def _listening(event, session_factory) -> None:
    """Until the listener is in place: commit work until one wake-up comes."""
    for _ in range(50):
        with session_factory.begin() as session:
            enqueue(session, "push", ("probe", "warm-up"), NOW)
        if event.wait(0.1):
            event.clear()
            return
    raise AssertionError("the wake-up never listened")


def test_work_committed_wakes_the_workers(woken, session_factory):
    event, _calls = woken
    _listening(event, session_factory)
    with session_factory.begin() as session:
        enqueue(session, "push", ("probe", "1"), NOW)
        enqueue(session, "push", ("probe", "2"), NOW)
        assert not event.wait(0.3)  # not before the commit
    assert event.wait(2)


def test_work_rolled_back_wakes_nobody(woken, session_factory):
    event, calls = woken
    _listening(event, session_factory)
    before = len(calls)
    with session_factory() as session:
        enqueue(session, "push", ("probe", "1"), NOW)
        session.flush()
        session.rollback()
    with session_factory.begin() as session:  # a later transaction queues nothing
        session.info["unrelated"] = True
    assert not event.wait(0.5) and len(calls) == before
