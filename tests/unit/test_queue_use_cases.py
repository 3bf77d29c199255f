"""Queueing's use cases on the database: events kept once, a snapshot that disagrees, pushes
once per threshold (a recall crossing one again sends nothing), a booking's queue status."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from adapter.models import QueueEventRecord, QueueNotice
from adapter.ports import QueueEvent, QueueEventKind, QueueSnapshot, QueueSnapshotLine
from adapter.queueing.policy import QueuePolicy, read_queue_policy
from adapter.queueing.service import load_queue, queue_status, reconcile_queue
from tests.unit.conftest import DOCTOR, TZ

K = QueueEventKind
DAY = dt.date(2030, 3, 7)
T0 = dt.datetime(2030, 3, 7, 8, 0, tzinfo=TZ)


class Clinic:
    """The HIS's queue events for DOCTOR's morning of DAY, heard by the flows' handlers."""

    def __init__(self, hospital) -> None:
        self.hospital = hospital
        self.sent: list[QueueEvent] = []

    def event(self, minute: float, kind: QueueEventKind, number: int, placer: str = "") -> \
            QueueEvent:
        return QueueEvent(f"E{len(self.sent) + 1}", DOCTOR.code, DAY, "am", f"V{number}", kind,
                          T0 + dt.timedelta(minutes=minute), len(self.sent) + 1, number,
                          placer_id=placer, room="101",
                          slot_start=T0 + dt.timedelta(minutes=10 * number))

    def say(self, minute: float, kind: QueueEventKind, number: int, placer: str = "") -> None:
        event = self.event(minute, kind, number, placer)
        self.sent.append(event)
        self.hospital.clock.set(max(self.hospital.clock.now(), event.occurred_at))
        self.hospital.hear(event)

    def queue(self):
        with self.hospital.runtime.session_factory() as session:
            return load_queue(session, DOCTOR.code, DAY, "am", QueuePolicy())


def line_up(queue) -> list[str]:
    return [ln.visit_number for ln in queue.waiting()]


def test_replayed_and_late_events_change_nothing(hospital):
    clinic = Clinic(hospital)
    for n in (1, 2, 3):
        clinic.say(-30, K.REGISTERED, n)
    clinic.say(-10, K.ARRIVED, 3)
    clinic.say(-9, K.ARRIVED, 1)
    clinic.say(1, K.CALLED, 1)
    clinic.say(-5, K.ARRIVED, 2)  # received after the call, happened before it
    before = line_up(clinic.queue())
    for event in list(clinic.sent):
        hospital.hear(event)  # the HIS resends everything
    assert line_up(clinic.queue()) == before == ["V2", "V3"]
    with hospital.runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(QueueEventRecord)) == 7


def test_a_snapshot_that_disagrees_repairs_the_queue(hospital):
    clinic = Clinic(hospital)
    for n in (1, 2, 3, 4):
        clinic.say(-30, K.REGISTERED, n)
        clinic.say(-20 + n, K.ARRIVED, n)
    # Lost on the way: V1's call and end, V2's call. V3 cancelled at the window (the HIS sent
    # nothing); V5 a walk-in the adapter never heard of.
    snapshot = QueueSnapshot(DOCTOR.code, DAY, "am", T0 + dt.timedelta(minutes=12), (
        QueueSnapshotLine("V1", K.FINISHED, 1),
        QueueSnapshotLine("V2", K.CALLED, 2),
        QueueSnapshotLine("V4", K.ARRIVED, 4),
        QueueSnapshotLine("V5", K.ARRIVED, 5),
    ))
    with hospital.runtime.session_factory.begin() as session:
        added = reconcile_queue(session, snapshot, QueuePolicy(), hospital.clock.now())
    assert added == 4  # V1 finished, V2 called, V3 gone, V5 arrived
    queue = clinic.queue()
    assert line_up(queue) == ["V4", "V5"]
    assert queue.lines["V3"].state == "cancelled" and queue.lines["V2"].state == "called"
    with hospital.runtime.session_factory.begin() as session:  # the same snapshot again
        assert reconcile_queue(session, snapshot, QueuePolicy(), hospital.clock.now()) == 0
    # The lost call of V1 arrives at last: it happened before the snapshot, nothing moves.
    clinic.say(1, K.CALLED, 1)
    assert line_up(clinic.queue()) == ["V4", "V5"]


def test_pushes_go_once_per_threshold_even_when_a_recall_crosses_it_again(hospital):
    account_id, public_id, _ = hospital.confirmed()
    clinic = Clinic(hospital)
    for n in range(1, 9):
        clinic.say(-40, K.REGISTERED, n, placer=public_id if n == 8 else "")
    for n in range(1, 9):
        clinic.say(-30 + n, K.ARRIVED, n, placer=public_id if n == 8 else "")
    minute = 0
    for n in range(1, 8):  # seven ahead, called one by one
        clinic.say(minute, K.CALLED, n)
        clinic.say(minute + 5, K.FINISHED, n)
        minute += 6
    clinic.say(minute, K.CALLED, 8, placer=public_id)  # called, absent, back after three
    clinic.say(minute + 2, K.NO_SHOW, 8, placer=public_id)
    for n in (9, 10, 11, 12, 13, 14):  # walk-ins, ahead of the patient after the absence
        clinic.say(minute + 3, K.ARRIVED, n)
    for n in (9, 10, 11, 12, 13, 14):
        clinic.say(minute + 4 + n, K.CALLED, n)
        clinic.say(minute + 4.5 + n, K.FINISHED, n)
    clinic.say(minute + 30, K.CALLED, 8, placer=public_id)
    hospital.deliver()
    told = hospital.told(1)[1:]  # after the booking's confirmation
    assert len(told) == 5, told
    assert told[0].startswith("您已签到")
    assert told[1].startswith("您前面还有5人") and told[2].startswith("您前面还有2人")
    assert "101" in told[3] and told[4].startswith("叫号时您不在")
    with hospital.runtime.session_factory() as session:
        notices = sorted(session.scalars(select(QueueNotice.notice)))
    assert notices == ["ahead_2", "ahead_5", "checked_in", "missed_call", "your_turn"]


def test_a_push_that_fails_waits_in_the_outbox_and_goes_once(hospital):
    account_id, public_id, _ = hospital.confirmed()
    clinic = Clinic(hospital)
    clinic.say(-40, K.REGISTERED, 1, placer=public_id)
    hospital.wallet.down = True
    clinic.say(-30, K.ARRIVED, 1, placer=public_id)
    hospital.deliver()
    assert len(hospital.told(1)) == 1  # the booking's confirmation only
    hospital.wallet.down = False
    hospital.clock.advance(minutes=15)
    hospital.deliver()
    hospital.deliver()
    # Checked in with none ahead: of the notices reached at once only the closest is pushed.
    assert hospital.told(1)[1:] == ["您前面还有0人，请到诊室附近候诊。"]


def test_queue_status_gives_position_ahead_range_room_and_time(hospital):
    account_id, public_id, _ = hospital.confirmed()
    clinic = Clinic(hospital)
    for n in (1, 2, 3):
        clinic.say(-40, K.REGISTERED, n, placer=public_id if n == 3 else "")
        clinic.say(-30 + n, K.ARRIVED, n, placer=public_id if n == 3 else "")
    clinic.say(0, K.CALLED, 1)
    booking = hospital.booking(public_id)
    with hospital.runtime.session_factory() as session:
        status = queue_status(session, booking, "am", QueuePolicy(), TZ, T0)
    assert (status.state, status.position, status.ahead, status.room) == ("waiting", 2, 1, "101")
    assert 0 <= status.wait.low < status.wait.high
    assert status.updated_at == T0


def test_a_booking_the_his_has_not_queued_says_so(hospital):
    _, public_id, _ = hospital.confirmed()
    with hospital.runtime.session_factory() as session:
        status = queue_status(session, hospital.booking(public_id), "am", QueuePolicy(), TZ, T0)
    assert status.state == "not_in_queue" and status.wait is None


def test_the_queue_policy_file_is_checked():
    policy = read_queue_policy('absent_rule = "back"\npush_ahead = [2, 5]\n')
    assert policy.absent.rule == "back" and policy.push_ahead == (5, 2)
    for bad in ('absent_rule = "later"', "push_ahead = [0]", "colour = 1",
                "consult_minutes = -1"):
        try:
            read_queue_policy(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
