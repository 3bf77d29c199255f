"""Slot pool sync (SQM^S25 pull through a fake gateway) and SIU notifications via the worker."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from sqlalchemy import select

from adapter.models import Slot
from adapter.ports import HisUnavailable, SlotRecord
from adapter.registration.slots import close_slot, sync_slot_pool
from tests.fakes import FakeHis

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 12, 1)
NOW = dt.datetime(2026, 11, 30, 8, tzinfo=dt.UTC)


def _slot(n: int, *, capacity: int = 1, fee: int = 1500, status: str = "open") -> SlotRecord:
    start = dt.datetime.combine(DAY, dt.time(8, 0), TZ) + dt.timedelta(minutes=15 * n)
    return SlotRecord(f"S{n}", "PED", "D001", "REG_ATTENDING", start,
                      start + dt.timedelta(minutes=15), capacity, capacity, fee, status)


def _slots(session_factory) -> dict[str, Slot]:
    with session_factory() as session:
        return {s.his_slot_id: s for s in session.scalars(select(Slot))}


def test_sync_adds_updates_and_closes(session_factory):
    his = FakeHis([_slot(1), _slot(2), _slot(3)])
    with session_factory.begin() as session:
        report = sync_slot_pool(session, his, DAY, DAY, TZ, NOW)
    assert (report.added, report.updated, report.closed) == (3, 0, 0)
    stored = _slots(session_factory)
    assert stored["S1"].start_at == _slot(1).start_at
    assert stored["S1"].start_at.tzinfo is not None and stored["S1"].fee_fen == 1500

    his.slots = [_slot(1), _slot(2, fee=2500)]
    with session_factory.begin() as session:
        report = sync_slot_pool(session, his, DAY, DAY, TZ, NOW)
    assert (report.added, report.updated, report.closed, report.unchanged) == (0, 1, 1, 1)
    stored = _slots(session_factory)
    assert stored["S2"].fee_fen == 2500 and stored["S3"].status == "closed"


def test_sync_never_lowers_capacity_below_what_is_booked(session_factory):
    his = FakeHis([_slot(1, capacity=3)])
    with session_factory.begin() as session:
        sync_slot_pool(session, his, DAY, DAY, TZ, NOW)
        session.flush()
        session.scalar(select(Slot)).booked = 2
    his.slots = [_slot(1, capacity=1)]
    with session_factory.begin() as session:
        sync_slot_pool(session, his, DAY, DAY, TZ, NOW)
    assert _slots(session_factory)["S1"].capacity == 2


def test_his_down_changes_nothing(session_factory):
    his = FakeHis([_slot(1)])
    his.down = True
    with pytest.raises(HisUnavailable), session_factory.begin() as session:
        sync_slot_pool(session, his, DAY, DAY, TZ, NOW)
    assert _slots(session_factory) == {}


def test_database_refuses_overbooking(session_factory):
    from sqlalchemy.exc import IntegrityError

    with session_factory.begin() as session:
        sync_slot_pool(session, FakeHis([_slot(1)]), DAY, DAY, TZ, NOW)
    with pytest.raises(IntegrityError), session_factory.begin() as session:
        session.scalar(select(Slot)).booked = 2


def test_close_slot(session_factory):
    with session_factory.begin() as session:
        sync_slot_pool(session, FakeHis([_slot(1)]), DAY, DAY, TZ, NOW)
    with session_factory.begin() as session:
        assert close_slot(session, "S1", now=NOW) is True
        assert close_slot(session, "NOPE", now=NOW) is False
    assert _slots(session_factory)["S1"].status == "closed"
