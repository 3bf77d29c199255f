"""The message browser's search and actions as use cases: business keys (booking, trade, HIS
receipt, patient through the blind index), exactly the searched set reprocessed or acknowledged."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from adapter.models import (
    InboundMessage,
    InboundStatus,
    OutboxMessage,
    OutboxStatus,
    Patient,
    QueueEventRecord,
    WalletNotification,
)
from adapter.staff.messages import (
    MessageQuery,
    Source,
    State,
    acknowledge_messages,
    reprocess_messages,
    search_messages,
)
from tests.unit.conftest import resident_id


def _search(hospital, **query):
    with hospital.runtime.session_factory() as db:
        return search_messages(db, MessageQuery(**query))


def _indexes(hospital, n):
    return tuple(hospital.runtime.protector.lookup_indexes(resident_id(n), "RESIDENT_ID"))


def test_a_booking_and_its_trade_find_their_outbox_items(hospital):
    hospital.confirmed(1)
    account_id, public_id, out_trade_no = hospital.confirmed(2)
    hospital.cancel(account_id, public_id)
    hospital.deliver()  # the HIS agrees to the cancellation: the refund follows
    lines, total = _search(hospital, source=Source.OUTBOX, booking=public_id)
    assert total >= 2 and {line.type for line in lines} >= {"his_book", "his_cancel"}
    assert all(line.key == f"booking:{hospital.booking(public_id).id}" for line in lines)
    lines, _ = _search(hospital, source=Source.OUTBOX, trade=out_trade_no)
    assert "refund" in {line.type for line in lines}
    assert _search(hospital, source=Source.OUTBOX, booking="B-NOT-THERE") == ([], 0)
    assert _search(hospital, source=Source.NOTIFICATION, booking=public_id) == ([], 0)


def test_a_person_is_found_through_the_blind_index_only(hospital):
    _, first, _ = hospital.confirmed(1)
    hospital.confirmed(2)
    lines, total = _search(hospital, source=Source.OUTBOX, patient_indexes=_indexes(hospital, 1))
    booking_id = hospital.booking(first).id
    keys = {line.key for line in lines}
    assert total == len(lines) and f"booking:{booking_id}" in keys
    assert all(key.startswith(("booking:", "patient:")) for key in keys)
    # none of the other person's bookings
    assert not keys & {f"booking:{b}" for b in range(booking_id + 1, booking_id + 5)}
    assert _search(hospital, source=Source.OUTBOX, patient_indexes=_indexes(hospital, 9))[1] == 0


def test_inbound_queue_events_are_found_by_booking_and_by_person(hospital):
    _, public_id, _ = hospital.confirmed(1)
    now = hospital.clock.now()
    with hospital.runtime.session_factory.begin() as db:
        db.execute(Patient.__table__.update().values(his_patient_id="P77"))
        for control_id, placer in (("Q1", public_id), ("Q2", "OTHER")):
            db.add(QueueEventRecord(event_id=control_id, doctor_code="D1001",
                                    visit_date=now.date(), session="am", visit_number="1",
                                    kind="called", occurred_at=now, his_patient_id=(
                                        "P77" if placer == public_id else "P88"),
                                    placer_id=placer))
            db.add(InboundMessage(received_at=now, sender="HIS", control_id=control_id,
                                  digest=control_id * 32, message_type="SIU^S14",
                                  status=InboundStatus.PROCESSED, ack_code="AA", raw=b"MSH|",
                                  ack=b"MSA|"))
    lines, _ = _search(hospital, source=Source.INBOUND, booking=public_id)
    assert [line.key for line in lines] == ["Q1"]
    lines, _ = _search(hospital, source=Source.INBOUND, patient_indexes=_indexes(hospital, 1))
    assert [line.key for line in lines] == ["Q1"]


def test_reprocess_and_acknowledge_touch_exactly_the_searched_set(hospital):
    now = hospital.clock.now()
    with hospital.runtime.session_factory.begin() as db:
        for n, status in enumerate((OutboxStatus.FAILED, OutboxStatus.FAILED,
                                    OutboxStatus.DONE)):
            db.add(OutboxMessage(kind="push", subject_type="wallet_account",
                                 subject_id=str(n), status=status, attempts=9,
                                 next_attempt_at=now - dt.timedelta(hours=1), created_at=now))
    with hospital.runtime.session_factory.begin() as db:
        acked = acknowledge_messages(db, MessageQuery(Source.OUTBOX, type="push"), actor="op",
                                     remote="", now=now)
        assert len(acked) == 2  # the delivered one is no failure
        assert acknowledge_messages(db, MessageQuery(Source.OUTBOX), actor="op", remote="",
                                    now=now) == []  # already acknowledged
    with hospital.runtime.session_factory.begin() as db:
        first = reprocess_messages(db, MessageQuery(Source.OUTBOX, type="push",
                                                    state=State.PARKED,
                                                    since=now, until=now + dt.timedelta(1)),
                                   actor="op", remote="", now=now)
        assert len(first) == 2
        rows = list(db.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(first))))
        assert all((r.status, r.attempts, r.next_attempt_at, r.acknowledged_at) ==
                   (OutboxStatus.PENDING, 0, now, None) for r in rows)
        assert reprocess_messages(db, MessageQuery(Source.NOTIFICATION), actor="op", remote="",
                                  now=now) == []  # the wallet resends its own notices


def test_a_his_receipt_finds_its_bills_outbox_items_and_notifications(hospital):
    from tests.fakes import FakeBillingHis
    from tests.unit.billing_kit import charge_ids, his_patient, line, paid_bill, reported
    from tests.unit.billing_kit import settlement as bill

    hospital.runtime.his = hospital.his = FakeBillingHis()
    account_id, his_id = his_patient(hospital)
    reported(hospital, his_id, line(his_id, 1))
    started = paid_bill(hospital, account_id, charge_ids(hospital, f"C{his_id}-1"))
    hospital.deliver()
    done = bill(hospital, started.public_id)
    assert done.receipt_no == "RC000001"
    lines, total = _search(hospital, source=Source.OUTBOX, receipt="RC000001")
    assert total == len(lines) >= 1
    assert f"settlement:{done.id}" in {line.key for line in lines}
    with hospital.runtime.session_factory.begin() as db:  # as /notify/<platform> keeps it
        for out_trade_no in (started.out_trade_no, "ANOTHER"):
            db.add(WalletNotification(platform="alipay", raw=b"", out_trade_no=out_trade_no,
                                      outcome="applied", received_at=hospital.clock.now()))
    lines, _ = _search(hospital, source=Source.NOTIFICATION, receipt="RC000001")
    assert [line.key for line in lines] == [started.out_trade_no]
    # a receipt nobody has, and inbound HL7 (which names receipts inside messages only)
    assert _search(hospital, source=Source.OUTBOX, receipt="RC999999") == ([], 0)
    assert _search(hospital, source=Source.INBOUND, receipt="RC000001") == ([], 0)
