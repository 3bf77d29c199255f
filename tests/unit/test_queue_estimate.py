"""The wait estimate: the session played forward from what the adapter knows now."""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo

from adapter.ports import QueueEvent, QueueEventKind
from adapter.queueing.estimate import Prior, estimate_wait, slot_minutes
from adapter.queueing.forecast import Expected, Pace, Start, play_forward, quantile
from adapter.queueing.line import build_queue

K = QueueEventKind
TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
DAY = dt.date(2030, 3, 7)
T0 = dt.datetime(2030, 3, 7, 8, 0, tzinfo=TZ)
STEADY = Pace(consult_median=10.0, consult_sigma=0.01, uncertainty=0.0, gap=0.0,
              absent_share=0.0, absent_minutes=2.0)


def event(n: int, minute: float, kind: QueueEventKind, number: int, *,
          slot_minute: float | None = None) -> QueueEvent:
    slot = None if slot_minute is None else T0 + dt.timedelta(minutes=slot_minute)
    return QueueEvent(f"E{n}", "D01", DAY, "am", f"V{number}", kind,
                      T0 + dt.timedelta(minutes=minute), n, number, slot_start=slot)


def walk_in_behind_booked(slot_minutes_from_now: float, now_minute: float = 30) -> list:
    """Three booked patients (numbers 1-3) not checked in, a walk-in (number 9) waiting, the
    doctor in consult with another walk-in since 5 minutes."""
    events = [event(n, -90, K.REGISTERED, n, slot_minute=now_minute + slot_minutes_from_now
                    + 10 * n) for n in (1, 2, 3)]
    events += [event(4, 0, K.REGISTERED, 8), event(5, 0, K.ARRIVED, 8),
               event(6, now_minute - 5, K.CALLED, 8),
               event(7, 20, K.REGISTERED, 9), event(8, 20, K.ARRIVED, 9)]
    return events


def test_a_walk_in_waits_for_booked_patients_ahead_who_are_due_but_not_for_those_far_off():
    now = T0 + dt.timedelta(minutes=30)
    due = estimate_wait(build_queue(walk_in_behind_booked(0)), "V9", now, session_start=T0)
    far = estimate_wait(build_queue(walk_in_behind_booked(120)), "V9", now, session_start=T0)
    assert due.ahead == far.ahead == 0
    assert far.expected < 8  # they will come long after the walk-in's call
    assert due.expected > far.expected + 3 and due.high > 2 * far.high  # they may go first


def test_a_booked_patient_long_past_their_time_is_likely_a_no_show():
    now = T0 + dt.timedelta(minutes=30)
    overdue = estimate_wait(build_queue(walk_in_behind_booked(-80)), "V9", now,
                            session_start=T0)
    far = estimate_wait(build_queue(walk_in_behind_booked(120)), "V9", now, session_start=T0)
    assert overdue.expected < far.expected + 1


def test_the_same_queue_at_the_same_moment_gives_the_same_range():
    queue = build_queue(walk_in_behind_booked(0))
    now = T0 + dt.timedelta(minutes=30)
    assert estimate_wait(queue, "V9", now, session_start=T0) == \
        estimate_wait(build_queue(walk_in_behind_booked(0)), "V9", now, session_start=T0)


def test_before_the_first_consult_the_slot_length_of_the_booking_list_is_the_prior():
    def queue_with_slots(step: int):
        events = []
        for n in range(1, 7):
            events += [event(2 * n - 1, -90, K.REGISTERED, n, slot_minute=step * (n - 1)),
                       event(2 * n, -30 + n, K.ARRIVED, n, slot_minute=step * (n - 1))]
        return build_queue(events)

    before = T0 - dt.timedelta(minutes=10)
    long_slots = estimate_wait(queue_with_slots(15), "V6", before, session_start=T0,
                               prior=Prior(late_start_minutes=0.1))
    short_slots = estimate_wait(queue_with_slots(6), "V6", before, session_start=T0,
                                prior=Prior(late_start_minutes=0.1))
    assert slot_minutes(queue_with_slots(15)) == 15
    assert long_slots.expected > 1.8 * short_slots.expected


def test_the_slot_length_needs_a_booking_list():
    queue = build_queue([event(1, -90, K.REGISTERED, 1, slot_minute=0),
                         event(2, -90, K.REGISTERED, 2, slot_minute=10)])
    assert slot_minutes(queue) is None
    assert slot_minutes(build_queue([])) is None


def test_a_steady_doctor_calls_after_each_turn_ahead():
    waits = play_forward("s", 3, (), Start(), STEADY, plays=50)
    assert 29 < quantile(waits, 0.5) < 31


def test_the_consult_in_the_room_adds_only_what_is_left_of_it():
    waits = play_forward("s", 0, (), Start(running=7.0), STEADY, plays=50)
    assert 2.5 < quantile(waits, 0.5) < 3.5


def test_a_doctor_not_started_is_awaited_from_the_session_start_and_the_late_start():
    late = Start(late_median=12.0, late_sigma=0.01, elapsed=-20.0)  # 20 minutes before
    assert 31 < quantile(play_forward("s", 0, (), late, STEADY, plays=50), 0.5) < 33
    already = Start(late_median=12.0, late_sigma=0.5, elapsed=30.0)  # later than usual
    assert min(play_forward("s", 0, (), already, STEADY, plays=50)) >= 0


def test_those_still_to_come_go_first_only_when_they_arrive_before_the_call():
    coming_now = Expected(chance=1.0, mean=0.0, spread=0.1)
    coming_late = Expected(chance=1.0, mean=60.0, spread=0.1)
    never = Expected(chance=0.0, mean=0.0, spread=0.1)
    assert quantile(play_forward("s", 1, [coming_now] * 2, Start(), STEADY, plays=50),
                    0.5) > 29
    assert quantile(play_forward("s", 1, [coming_late] * 2, Start(), STEADY, plays=50),
                    0.5) < 11
    assert quantile(play_forward("s", 1, [never] * 2, Start(), STEADY, plays=50), 0.5) < 11


def test_an_arrival_is_drawn_from_now_on():
    rng = random.Random(1)
    overdue = Expected(chance=1.0, mean=-30.0, spread=15.0)
    draws = [overdue.draw(rng) for _ in range(200)]
    assert all(d is not None and d >= 0 for d in draws)
