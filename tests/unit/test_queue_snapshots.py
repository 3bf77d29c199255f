"""The periodic snapshot job: today's open queues asked of the HIS and repaired."""

from __future__ import annotations

import datetime as dt

from adapter.ports import QueueEvent, QueueEventKind, QueueSnapshot, QueueSnapshotLine
from adapter.queueing.line import LineState
from adapter.queueing.policy import QueuePolicy
from adapter.queueing.service import load_queue
from adapter.queueing.snapshots import reconcile_queues
from tests.unit.conftest import DOCTOR, TZ, VISIT

K = QueueEventKind
DAY = VISIT.astimezone(TZ).date()


def _event(n: int, visit: str, kind: QueueEventKind, minutes: int) -> QueueEvent:
    return QueueEvent(f"E{n}", DOCTOR.code, DAY, "am", visit, kind,
                      VISIT + dt.timedelta(minutes=minutes), n, int(visit[1:]), room="205",
                      slot_start=VISIT)


def _queue(hospital):
    with hospital.runtime.session_factory() as session:
        return load_queue(session, DOCTOR.code, DAY, "am", QueuePolicy())


def test_a_snapshot_removes_a_silent_cancellation_and_repairs_a_lost_call(hospital):
    for n, (visit, kind) in enumerate([("V1", K.REGISTERED), ("V1", K.ARRIVED),
                                       ("V2", K.REGISTERED), ("V2", K.ARRIVED),
                                       ("V3", K.REGISTERED), ("V3", K.ARRIVED)], start=1):
        hospital.hear(_event(n, visit, kind, n))
    hospital.clock.set(VISIT + dt.timedelta(minutes=20))
    # The HIS: V1 was called (its event was lost), V2 withdrew at the window (no event).
    hospital.his.queues[(DOCTOR.code, DAY, "am")] = QueueSnapshot(
        DOCTOR.code, DAY, "am", hospital.clock.now(),
        (QueueSnapshotLine("V1", K.CALLED, 1, room="205"),
         QueueSnapshotLine("V3", K.ARRIVED, 3, room="205")))
    assert reconcile_queues(hospital.runtime) == 2
    queue = _queue(hospital)
    assert queue.lines["V1"].state is LineState.CALLED
    assert queue.lines["V2"].state is LineState.CANCELLED
    assert [line.visit_number for line in queue.waiting()] == ["V3"]
    assert reconcile_queues(hospital.runtime) == 0  # the same snapshot again: nothing


def test_closed_sessions_are_not_asked_and_an_unreachable_his_changes_nothing(hospital):
    hospital.hear(_event(1, "V1", K.REGISTERED, 1))
    hospital.clock.set(VISIT)
    hospital.his.down = True
    assert reconcile_queues(hospital.runtime) == 0
    hospital.his.down = False
    hospital.hear(_event(2, "V1", K.CANCELLED, 2))
    assert reconcile_queues(hospital.runtime) == 0  # nothing open: the HIS is not asked
