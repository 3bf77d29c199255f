"""The queue folded from the HIS's events: order, replays, late events, the absent rule."""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo

import pytest

from adapter.his.simulator.clinic import ClinicRules, clinic_day
from adapter.ports import QueueEvent, QueueEventKind
from adapter.queueing.estimate import Prior, estimate_wait
from adapter.queueing.line import AbsentRule, LineState, Queue, build_queue

K = QueueEventKind
TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
DAY = dt.date(2030, 3, 7)
T0 = dt.datetime(2030, 3, 7, 8, 0, tzinfo=TZ)


class Script:
    """Events of one session, numbered as the HIS would."""

    def __init__(self) -> None:
        self.events: list[QueueEvent] = []

    def __call__(self, minute: float, kind: QueueEventKind, number: int,
                 placer: str = "") -> QueueEvent:
        event = QueueEvent(f"E{len(self.events) + 1}", "D01", DAY, "am", f"V{number}", kind,
                           T0 + dt.timedelta(minutes=minute), len(self.events) + 1, number,
                           placer_id=placer, room="101",
                           slot_start=T0 + dt.timedelta(minutes=10 * number))
        self.events.append(event)
        return event


def line_up(queue: Queue) -> list[str]:
    return [ln.visit_number for ln in queue.waiting()]


def morning() -> Script:
    s = Script()
    for n in (1, 2, 3, 4, 5, 6):
        s(-60, K.REGISTERED, n)
    for n in (2, 1, 4, 3, 6, 5):  # checked in out of number order
        s(-30 + n, K.ARRIVED, n)
    return s


def test_checked_in_patients_are_in_line_by_number_whatever_order_they_came():
    assert line_up(build_queue(morning().events)) == ["V1", "V2", "V3", "V4", "V5", "V6"]


def test_the_same_events_in_any_order_and_repeated_give_the_same_queue():
    s = morning()
    s(1, K.CALLED, 1)
    s(9, K.FINISHED, 1)
    s(10, K.CALLED, 2)
    s(11, K.NO_SHOW, 2)
    s(12, K.CALLED, 3)
    s(15, K.CANCELLED, 6)
    expected = build_queue(s.events)
    rng = random.Random(3)
    for _ in range(20):
        shuffled = s.events + rng.sample(s.events, 5)  # duplicates too
        rng.shuffle(shuffled)
        again = build_queue(shuffled)
        assert line_up(again) == line_up(expected) == ["V4", "V5", "V2"]
        assert {v: ln.state for v, ln in again.lines.items()} == \
            {v: ln.state for v, ln in expected.lines.items()}


def test_a_replayed_event_is_folded_once():
    s = morning()
    queue = build_queue(s.events)
    assert queue.apply(s.events[0]) is False
    assert line_up(queue) == ["V1", "V2", "V3", "V4", "V5", "V6"]


@pytest.mark.parametrize(("rule", "skip", "expected"), [
    ("skip", 3, ["V2", "V3", "V4", "V1", "V5", "V6"]),
    ("skip", 0, ["V1", "V2", "V3", "V4", "V5", "V6"]),
    ("back", 3, ["V2", "V3", "V4", "V5", "V6", "V1"]),
    ("missed", 3, ["V2", "V3", "V4", "V5", "V6"]),
])
def test_a_patient_called_and_absent_moves_by_the_hospitals_rule(rule, skip, expected):
    s = morning()
    s(1, K.CALLED, 1)
    s(3, K.NO_SHOW, 1)
    assert line_up(build_queue(s.events, AbsentRule(rule, skip))) == expected


def test_a_second_absence_is_missed_and_a_recall_brings_the_patient_back():
    s = morning()
    s(1, K.CALLED, 1)
    s(3, K.NO_SHOW, 1)  # after three others
    s(4, K.CALLED, 2)
    s(10, K.FINISHED, 2)
    s(11, K.CALLED, 3)
    s(15, K.FINISHED, 3)
    s(16, K.CALLED, 4)
    s(20, K.FINISHED, 4)
    s(21, K.CALLED, 1)
    s(23, K.NO_SHOW, 1)
    queue = build_queue(s.events)
    assert queue.lines["V1"].state is LineState.MISSED
    assert line_up(queue) == ["V5", "V6"]
    s(30, K.RECALLED, 1)
    assert line_up(build_queue(s.events, AbsentRule("back"))) == ["V5", "V6", "V1"]


def test_an_event_of_a_registration_never_heard_of_creates_its_line():
    s = Script()
    s(0, K.ARRIVED, 7)  # its REGISTERED was lost
    assert line_up(build_queue(s.events)) == ["V7"]


@pytest.mark.parametrize("rule", ["skip", "back", "missed"])
def test_the_adapter_rebuilds_the_his_queue_order_of_a_whole_clinic_day(rule):
    day = clinic_day(5, DAY, TZ, rules=ClinicRules(absent_rule=rule))
    queues: dict[tuple[str, str], Queue] = {}
    calls = 0
    for event in day.events:
        queue = queues.setdefault((event.doctor_code, event.session),
                                  Queue(rule=AbsentRule(rule, 3)))
        if event.kind is K.CALLED:
            calls += 1
            assert line_up(queue)[0] == event.visit_number  # the HIS called our head
        queue.apply(event)
    assert calls > 200


def test_clinic_days_are_seeded_and_have_everything_the_queue_must_handle():
    a = clinic_day(9, DAY, TZ)
    assert a.events == clinic_day(9, DAY, TZ).events
    assert a.events != clinic_day(10, DAY, TZ).events
    week = [clinic_day(9, DAY + dt.timedelta(days=n), TZ) for n in range(3)]
    assert {e.kind for day in week for e in day.events} == set(QueueEventKind)
    assert all(sum(e.kind is K.CANCELLED for e in day.events) >= 1 for day in week)
    assert set(a.sources.values()) == {"wallet", "window", "walk_in"}
    assert len({e.doctor_code for e in a.events}) >= 5
    assert a.events == sorted(a.events, key=lambda e: (e.occurred_at, e.sequence))


def test_the_estimate_is_a_range_that_grows_with_the_people_ahead():
    s = morning()
    s(0, K.CALLED, 1)
    queue = build_queue(s.events)
    now = T0 + dt.timedelta(minutes=1)
    waits = [estimate_wait(queue, f"V{n}", now, session_start=T0) for n in (2, 4, 6)]
    assert [w.ahead for w in waits] == [0, 2, 4]
    assert all(w.low < w.high for w in waits)
    assert waits[0].midpoint < waits[1].midpoint < waits[2].midpoint
    assert waits[2].high - waits[2].expected > waits[2].expected - waits[2].low  # pessimistic
    assert estimate_wait(queue, "V1", now, session_start=T0) is None  # called: not waiting


def test_the_estimate_learns_each_doctors_pace():
    def after_three(minutes: float):
        s = morning()
        minute = 0.0
        for n in (1, 2, 3):
            s(minute, K.CALLED, n)
            minute += minutes
            s(minute, K.FINISHED, n)
        now = T0 + dt.timedelta(minutes=minute)
        return estimate_wait(build_queue(s.events), "V6", now, session_start=T0,
                             prior=Prior(consult_minutes=8))

    slow, quick = after_three(20), after_three(4)
    assert slow.ahead == quick.ahead == 2
    assert slow.expected > 1.5 * quick.expected
    assert slow.low > quick.midpoint


def test_a_doctor_who_has_not_started_adds_the_expected_late_start():
    queue = build_queue(morning().events)
    before = T0 - dt.timedelta(minutes=20)
    on_time = estimate_wait(queue, "V1", before, session_start=T0,
                            prior=Prior(late_start_minutes=0.1))
    late = estimate_wait(queue, "V1", before, session_start=T0,
                         prior=Prior(late_start_minutes=15))
    assert late.expected - on_time.expected > 5
