"""The outbox runner's delivery threads on a real database (SQLite file and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import replace

from sqlalchemy import select

from adapter.config import load_config
from adapter.flows import OutboxKind
from adapter.his.profile import Hl7Profile
from adapter.models import OutboxMessage
from adapter.outbox import enqueue, finish
from adapter.ports import HisUnavailable
from adapter.runtime import Runtime
from adapter.worker.outbox import deliver_outbox
from tests.fakes import FakeClock
from tests.integration.test_crash_recovery import MAP

SLOW = 0.15  # long enough for four threads to overlap on a loaded machine


class Recorder:
    """A delivery that takes SLOW seconds and records who was in flight meanwhile."""

    def __init__(self, fail_first: int = 0) -> None:
        self.lock = threading.Lock()
        self.in_flight: set[tuple[str, str]] = set()
        self.most = 0
        self.order: list[tuple[str, int]] = []  # (subject, payload n) in delivery order
        self.overlap_same_subject = 0
        self.fail_first = fail_first
        self.calls = 0

    def deliver(self, services, job, now) -> None:
        subject = (job.subject_type, job.subject_id)
        with self.lock:
            self.calls += 1
            failing = self.calls <= self.fail_first
            if subject in self.in_flight:
                self.overlap_same_subject += 1
            self.in_flight.add(subject)
            self.most = max(self.most, len(self.in_flight))
        time.sleep(SLOW)
        with self.lock:
            self.in_flight.discard(subject)
        if failing:
            raise HisUnavailable("down")
        with services.session_factory.begin() as session:
            finish(session, job, now)
        with self.lock:
            self.order.append((job.subject_id, job.payload["n"]))


def _runtime(engine, session_factory, concurrency: int) -> Runtime:
    config = replace(load_config({}), secret_key="k", outbox_concurrency=concurrency)
    clock = FakeClock(dt.datetime.now(dt.UTC))
    return Runtime(config, engine, session_factory, MAP, Hl7Profile(), clock=clock)


def test_items_go_out_in_parallel_but_one_subject_at_a_time_in_order(engine, session_factory):
    runtime = _runtime(engine, session_factory, 4)
    recorder = Recorder()
    kinds = {"slow": OutboxKind(recorder.deliver, link="his")}
    with session_factory.begin() as session:
        for n in range(24):  # 8 subjects, three items each, interleaved
            enqueue(session, "slow", ("booking", n % 8), runtime.clock.now(), n=n)
    assert deliver_outbox(runtime, kinds) == 24
    assert recorder.most == 4  # four at once, never more
    assert recorder.overlap_same_subject == 0
    for subject in map(str, range(8)):  # each subject's items in the order they were written
        mine = [n for s, n in recorder.order if s == subject]
        assert mine == sorted(mine) and len(mine) == 3
    with session_factory() as session:
        assert set(session.scalars(select(OutboxMessage.attempts))) == {1}


def test_a_link_that_fails_gets_one_item_at_a_time(engine, session_factory):
    runtime = _runtime(engine, session_factory, 4)
    recorder = Recorder(fail_first=10**6)  # the HIS is down
    kinds = {"slow": OutboxKind(recorder.deliver, link="his")}
    with session_factory.begin() as session:
        for n in range(12):
            enqueue(session, "slow", ("booking", n), runtime.clock.now(), n=n)
    deliver_outbox(runtime, kinds)
    # Not four threads hammering a HIS that is down: one attempt at a time until the breaker
    # opened (three failures), then none.
    assert recorder.most == 1 and recorder.calls == 3
    with session_factory() as session:
        assert sum(session.scalars(select(OutboxMessage.attempts))) == 3


def test_one_thread_is_the_old_runner(engine, session_factory):
    runtime = _runtime(engine, session_factory, 1)
    recorder = Recorder()
    kinds = {"slow": OutboxKind(recorder.deliver, link="his")}
    with session_factory.begin() as session:
        for n in range(5):
            enqueue(session, "slow", ("booking", n), runtime.clock.now(), n=n)
    assert deliver_outbox(runtime, kinds) == 5
    assert recorder.most == 1 and [n for _s, n in recorder.order] == [0, 1, 2, 3, 4]
