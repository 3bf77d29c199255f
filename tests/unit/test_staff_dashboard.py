"""The dashboard's figures: links, today's bookings and money (integer fen), results
delivered, backlogs per destination, counters per message type, the last 24 hours."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from adapter.links import record_link
from adapter.models import (
    Booking,
    CheckIn,
    InboundMessage,
    InboundStatus,
    OutboxMessage,
    OutboxStatus,
)
from adapter.staff.dashboard import day_start, read_dashboard
from adapter.staff.messages import MessageQuery, Source, State, search_messages
from tests.unit.conftest import FEE, TZ

MAX_AGE = dt.timedelta(seconds=45)


def _board(hospital):
    runtime = hospital.runtime
    destinations = {kind: spec.link or kind for kind, spec in runtime.flows.outbox.items()}
    with runtime.session_factory() as db:
        return read_dashboard(db, now=hospital.clock.now(), tz=TZ, destinations=destinations,
                              link_names=["his", "wallet:fake"], link_max_age=MAX_AGE)


def _inbound(db, now, message_type, status, control_id):
    db.add(InboundMessage(received_at=now, peer="", sender="HIS", control_id=control_id,
                          digest=control_id.ljust(64, "0"), message_type=message_type,
                          version="2.5", charset="", status=status, ack_code="AA",
                          error_code="207" if status == InboundStatus.FAILED else "",
                          error_text="", raw=b"MSH|", ack=b"MSA|"))


def test_a_quiet_day_shows_zeros_and_both_links_down(hospital):
    board = _board(hospital)
    assert [(link.name, link.connected) for link in board.links] == [
        ("his", False), ("wallet:fake", False)]
    assert (board.bookings_today, board.payments_today.count, board.payments_today.fen) == \
        (0, 0, 0)
    assert {b.destination for b in board.backlogs} >= {"his", "wallet"}
    assert all(b.pending == 0 for b in board.backlogs) and board.counters == []
    assert len(board.hours) == 24 and not any(h.bookings or h.messages for h in board.hours)


def test_links_are_connected_while_their_last_check_is_fresh_with_its_latency(hospital):
    record_link(hospital.runtime, "his", True, "answered in 12 ms", latency_ms=12)
    [his, wallet] = _board(hospital).links
    assert (his.connected, his.latency_ms, his.last_exchange) == (True, 12, hospital.clock.now())
    assert not wallet.connected
    hospital.clock.advance(seconds=46)
    assert not _board(hospital).links[0].connected


def test_todays_bookings_payments_and_refunds_in_fen(hospital):
    hospital.confirmed(1)
    account_id, public_id, _ = hospital.confirmed(2)
    hospital.cancel(account_id, public_id)
    hospital.deliver()
    hospital.deliver()
    board = _board(hospital)
    assert board.bookings_today == 2 and board.check_ins_today == 0
    assert (board.payments_today.count, board.payments_today.fen) == (2, 2 * FEE)
    assert (board.refunds_today.count, board.refunds_today.fen) == (1, FEE)
    assert isinstance(board.payments_today.fen, int)
    with hospital.runtime.session_factory.begin() as session:  # a check-in today (adapter.queueing)
        booking = session.scalar(select(Booking).where(Booking.public_id != public_id))
        session.add(CheckIn(booking_id=booking.id, method="remote",
                            checked_in_at=hospital.clock.now()))
    assert _board(hospital).check_ins_today == 1
    # tomorrow in the hospital's zone starts a new day
    hospital.clock.set(day_start(hospital.clock.now(), TZ) + dt.timedelta(days=1))
    assert _board(hospital).payments_today.count == 0


def test_counters_per_type_match_what_the_browser_finds(hospital):
    now = hospital.clock.now()
    with hospital.runtime.session_factory.begin() as db:
        _inbound(db, now, "ORU^R01", InboundStatus.PROCESSED, "C1")
        _inbound(db, now, "ORU^R01", InboundStatus.FAILED, "C2")
        _inbound(db, now, "ORU^R01", InboundStatus.RECEIVED, "C3")
        _inbound(db, now - dt.timedelta(hours=30), "SIU^S14", InboundStatus.ERROR, "C4")
        for attempts, status in ((0, OutboxStatus.PENDING), (2, OutboxStatus.PENDING),
                                 (5, OutboxStatus.FAILED), (1, OutboxStatus.DONE)):
            db.add(OutboxMessage(kind="his_book", subject_type="booking", subject_id="1",
                                 status=status, attempts=attempts, next_attempt_at=now,
                                 created_at=now - dt.timedelta(minutes=10)))
    board = _board(hospital)
    counters = {(c.source, c.type): (c.received, c.queued, c.failed, c.parked)
                for c in board.counters}
    assert counters[("inbound", "ORU^R01")] == (3, 1, 1, 0)
    assert counters[("inbound", "SIU^S14")] == (0, 0, 0, 1)  # older than 24 h, still parked
    assert counters[("outbox", "his_book")] == (4, 1, 1, 1)
    [his] = [b for b in board.backlogs if b.destination == "his"]
    assert (his.pending, his.oldest_age_seconds) == (2, 600)
    with hospital.runtime.session_factory() as db:
        for (source, kind), (_, queued, failed, parked) in counters.items():
            for state, expected in ((State.QUEUED, queued), (State.FAILED, failed),
                                    (State.PARKED, parked)):
                _, total = search_messages(db, MessageQuery(Source(source), type=kind,
                                                            state=state))
                assert total == expected, (source, kind, state)


def test_the_last_24_hours_count_bookings_and_messages_per_hour(hospital):
    hospital.confirmed(1)
    hospital.clock.advance(hours=2)
    hospital.confirmed(2)
    board = _board(hospital)
    last, two_before = board.hours[-1], board.hours[-3]
    assert (last.bookings, two_before.bookings) == (1, 1)
    assert last.messages >= 1 and two_before.messages >= 1
    assert board.hours[-1].start == hospital.clock.now().replace(minute=0, second=0,
                                                                microsecond=0)
    assert sum(h.bookings for h in board.hours) == 2


def test_open_and_escalated_critical_alerts_are_counted(hospital):
    from adapter.models import CriticalAlert, Result

    now = hospital.clock.now()
    with hospital.runtime.session_factory.begin() as db:
        result = Result(order_key="k", status="F", state="released", received_at=now,
                        updated_at=now)
        db.add(result)
        db.flush()
        db.add_all([CriticalAlert(result_id=result.id, result_version=1, raised_at=now),
                    CriticalAlert(result_id=result.id, result_version=1, raised_at=now,
                                  escalated_at=now),
                    CriticalAlert(result_id=result.id, result_version=1, raised_at=now,
                                  acknowledged_at=now, acknowledged_by="op")])
    board = _board(hospital)
    assert (board.alerts_open, board.alerts_escalated) == (2, 1)
