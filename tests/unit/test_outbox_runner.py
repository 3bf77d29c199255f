"""The outbox runner with the flows' declared kinds and a few of its own: retry with backoff
while the far end is down, park by the policy (never a never-parked kind, unless its give-up
rule compensates), and the lease that keeps two workers off one item."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from adapter.flows import OutboxKind
from adapter.links import MAX_PROBE_SECONDS, OPEN_AFTER
from adapter.models import BookingStatus
from adapter.outbox import enqueue, finish
from adapter.ports import HisUnavailable
from adapter.worker.outbox import (
    LEASE_SECONDS,
    backoff,
    deliver_outbox,
    lease_outbox,
    lease_outbox_batch,
    renew_lease,
)
from tests.unit.conftest import FEE, START, VISIT


def add(hospital, kind: str, subject_id: str = "1"):
    with hospital.runtime.session_factory.begin() as session:
        message = enqueue(session, kind, ("probe", subject_id), hospital.clock.now())
        session.flush()
        return message.id


def until_due(hospital, message) -> None:
    """Move the clock to the item's next attempt."""
    hospital.clock.set(message.next_attempt_at)


def test_the_flows_declare_which_kinds_are_never_parked(runtime):
    kinds = runtime.flows.outbox
    assert {kind for kind, spec in kinds.items() if spec.never_parked} == {
        "his_book", "his_cancel", "refund", "his_settle"}
    assert kinds["his_book"].give_up is not None and kinds["his_settle"].give_up is not None
    assert {"his_patient", "push", "close_trade"} <= set(kinds)


def test_backoff_doubles_up_to_its_cap():
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 9, 10, 40)] == [
        2, 4, 8, 512, 600, 600]
    assert backoff(4, cap_seconds=5) == dt.timedelta(seconds=5)


def test_an_ordinary_kind_is_retried_with_backoff_then_parked(hospital):
    hospital.his.down = True
    account_id, patient_id = hospital.patient()  # queues his_patient: find them in the HIS
    assert hospital.deliver() == 0
    [message] = hospital.outbox("his_patient")
    assert (message.status, message.attempts, message.last_error) == (
        "pending", 1, "HisUnavailable")
    assert message.next_attempt_at == START + dt.timedelta(seconds=2)
    hospital.clock.advance(seconds=1)
    hospital.deliver()  # not due yet: not attempted
    assert hospital.outbox("his_patient")[0].attempts == 1
    until_due(hospital, message)
    hospital.deliver()
    [message] = hospital.outbox("his_patient")
    assert message.attempts == 2
    assert message.next_attempt_at == hospital.clock.now() + dt.timedelta(seconds=4)
    until_due(hospital, message)
    hospital.deliver()  # the third attempt: outbox_max_attempts (3) reached
    [message] = hospital.outbox("his_patient")
    assert (message.status, message.attempts) == ("failed", 3)
    hospital.his.down = False
    hospital.clock.advance(hours=1)
    assert hospital.deliver() == 0  # parked for admins, not tried again
    assert hospital.outbox("his_patient")[0].attempts == 3 and hospital.his.patients == {}


def test_a_never_parked_kind_keeps_trying_past_the_limit_at_most_every_ten_minutes(hospital):
    account_id, patient_id = hospital.patient()
    hospital.deliver()
    public_id = hospital.hold(account_id, patient_id, hospital.slot())
    hospital.paid(account_id, public_id)
    hospital.his.down = True
    # The item's own backoff, without its link's breaker (which would hold it: tested below).
    kinds = {**hospital.runtime.flows.outbox,
             "his_book": replace(hospital.runtime.flows.outbox["his_book"], link="")}
    waits = []
    for _ in range(12):
        deliver_outbox(hospital.runtime, kinds)
        [message] = hospital.outbox("his_book")
        waits.append((message.next_attempt_at - hospital.clock.now()).total_seconds())
        until_due(hospital, message)
    assert (message.status, message.attempts) == ("pending", 12)
    assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 512, 512, 512, 512]
    assert hospital.booking(public_id).status == BookingStatus.CONFIRMING
    hospital.his.down = False
    hospital.deliver()
    assert hospital.booking(public_id).status == BookingStatus.CONFIRMED
    assert hospital.outbox("his_book")[0].status == "done"


def test_a_kinds_own_cap_bounds_its_backoff(hospital):
    def down(services, job, now):
        raise HisUnavailable("still down")

    kinds = {"probe": OutboxKind(down, never_parked=True, max_backoff_seconds=5)}
    add(hospital, "probe")
    waits = []
    for _ in range(5):
        deliver_outbox(hospital.runtime, kinds)
        [message] = hospital.outbox("probe")
        waits.append((message.next_attempt_at - hospital.clock.now()).total_seconds())
        until_due(hospital, message)
    assert waits == [2, 4, 5, 5, 5] and message.status == "pending"


def test_an_unexpected_error_is_retried_then_parked_like_an_outage(hospital):
    def broken(services, job, now):
        raise KeyError("a bug")

    kinds = {"probe": OutboxKind(broken)}
    add(hospital, "probe")
    for _ in range(3):
        deliver_outbox(hospital.runtime, kinds)
        until_due(hospital, hospital.outbox("probe")[0])
    [message] = hospital.outbox("probe")
    assert (message.status, message.attempts, message.last_error) == ("failed", 3, "KeyError")


def test_a_kind_no_flow_declares_is_parked_not_lost(hospital):
    add(hospital, "retired_kind")
    for _ in range(3):
        hospital.deliver()
        until_due(hospital, hospital.outbox("retired_kind")[0])
    [message] = hospital.outbox("retired_kind")
    assert (message.status, message.last_error) == ("failed", "LookupError")


def test_a_paid_booking_that_cannot_reach_the_his_before_the_visit_is_refunded(hospital):
    account_id, patient_id = hospital.patient()
    hospital.deliver()
    public_id = hospital.hold(account_id, patient_id, hospital.slot())
    out_trade_no = hospital.paid(account_id, public_id)
    hospital.his.down = True
    hospital.deliver()
    assert hospital.booking(public_id).status == BookingStatus.CONFIRMING  # still time
    hospital.clock.set(VISIT)  # the visit begins: the give-up rule compensates
    hospital.deliver()
    booking = hospital.booking(public_id)
    assert (booking.status, booking.status_reason) == (BookingStatus.REJECTED, "HIS_UNREACHABLE")
    [his_book] = hospital.outbox("his_book")
    assert (his_book.status, his_book.attempts) == ("failed", 2)
    assert hospital.wallet.refunded_fen(out_trade_no) == FEE  # the wallet was up
    # the HIS may have booked it before the line broke: it is asked to cancel, until it answers
    [his_cancel] = hospital.outbox("his_cancel")
    assert his_cancel.status == "pending"
    hospital.his.down = False
    until_due(hospital, his_cancel)
    hospital.deliver()
    assert hospital.his.cancelled == [public_id]
    assert hospital.booking(public_id).status == BookingStatus.REJECTED


# --- the lease --------------------------------------------------------------------------------

def test_a_leased_item_is_left_to_its_worker_until_the_lease_runs_out(hospital):
    item = add(hospital, "push", "1")
    now = hospital.clock.now()
    job = lease_outbox(hospital.runtime, now)
    assert (job.id, job.kind, job.attempts) == (item, "push", 1)
    lease = dt.timedelta(seconds=LEASE_SECONDS)
    assert lease == dt.timedelta(seconds=15)  # independent of the HIS timeouts (5 s + 30 s)
    assert hospital.outbox("push")[0].next_attempt_at == now + lease
    assert lease_outbox(hospital.runtime, now) is None  # another worker
    assert hospital.deliver() == 0
    hospital.clock.set(now + lease - dt.timedelta(seconds=1))
    assert lease_outbox(hospital.runtime, hospital.clock.now()) is None
    hospital.clock.set(now + lease)  # the first worker died mid-exchange
    again = lease_outbox(hospital.runtime, hospital.clock.now())
    assert (again.id, again.attempts) == (item, 2)


def test_a_worker_renews_its_lease_while_the_exchange_runs_and_loses_it_to_a_takeover(
        hospital):
    item = add(hospital, "push", "1")
    job = lease_outbox(hospital.runtime, hospital.clock.now())
    for _ in range(10):  # a slow HIS: 10 renewals, 50 s, never taken over
        hospital.clock.advance(seconds=LEASE_SECONDS / 3)
        assert renew_lease(hospital.runtime, job)
        assert lease_outbox(hospital.runtime, hospital.clock.now()) is None
    hospital.clock.advance(seconds=LEASE_SECONDS)  # the worker died: no renewal came
    again = lease_outbox(hospital.runtime, hospital.clock.now())
    assert (again.id, again.attempts) == (item, 2)
    assert not renew_lease(hospital.runtime, job)  # the dead one, were it alive, is told


def test_one_lease_takes_the_oldest_item_of_each_subject_up_to_its_limit(hospital):
    first, sibling, other, third = (add(hospital, "push", "1"), add(hospital, "push", "1"),
                                    add(hospital, "push", "2"), add(hospital, "push", "3"))
    now = hospital.clock.now()
    jobs = lease_outbox_batch(hospital.runtime, now, 2)
    assert [job.id for job in jobs] == [first, other]  # the sibling waits for its elder
    assert [job.id for job in lease_outbox_batch(hospital.runtime, now, 5,
                                                 busy_subjects={("probe", "1")})] == [third]
    assert {m.id: m.attempts for m in hospital.outbox("push")} == {
        first: 1, sibling: 0, other: 1, third: 1}


def test_one_lease_takes_one_item_of_a_suspect_link(hospital):
    items = [add(hospital, "push", str(n)) for n in range(3)]
    jobs = lease_outbox_batch(hospital.runtime, hospital.clock.now(), 3,
                              one_per_link={"push": "wallet"})
    assert [job.id for job in jobs] == items[:1]


def test_a_finished_item_is_not_leased_again(hospital):
    add(hospital, "push", "1")
    job = lease_outbox(hospital.runtime, hospital.clock.now())
    with hospital.runtime.session_factory.begin() as session:
        finish(session, job, hospital.clock.now())
    hospital.clock.advance(hours=1)
    assert lease_outbox(hospital.runtime, hospital.clock.now()) is None
    [message] = hospital.outbox("push")
    assert (message.status, message.done_at) == ("done", START)


def test_a_delivery_that_outlived_its_lease_does_no_harm_when_it_answers(hospital):
    account_id, patient_id = hospital.patient()
    hospital.deliver()
    public_id = hospital.hold(account_id, patient_id, hospital.slot())
    hospital.paid(account_id, public_id)
    his_book = hospital.runtime.flows.outbox["his_book"]
    book = hospital.his.book_appointment

    def stalled(request):
        # While this worker waits on the HIS its lease runs out: another takes the item over
        # and confirms the booking; then the HIS answers this one too (the same placer id).
        hospital.his.book_appointment = book
        hospital.clock.advance(seconds=LEASE_SECONDS)
        assert hospital.deliver() == 2  # his_book, and the patient's message
        return book(request)

    hospital.his.book_appointment = stalled
    slow = lease_outbox(hospital.runtime, hospital.clock.now())
    his_book.deliver(hospital.runtime, slow, hospital.clock.now())
    booking = hospital.booking(public_id)
    assert (booking.status, booking.filler_appointment_id) == (BookingStatus.CONFIRMED, "F1")
    assert len(hospital.his.booked) == 2 and len(hospital.his.appointments) == 1
    assert hospital.outbox("his_cancel") == [] and hospital.refunds() == []
    hospital.deliver()
    assert len(hospital.told()) == 1  # told once


@pytest.mark.parametrize("never_parked", [False, True])
def test_a_delivery_that_succeeds_is_not_retried(hospital, never_parked):
    calls = []

    def deliver(services, job, now):
        calls.append(job.attempts)
        with services.session_factory.begin() as session:
            finish(session, job, now)

    add(hospital, "probe")
    kinds = {"probe": OutboxKind(deliver, never_parked=never_parked)}
    assert deliver_outbox(hospital.runtime, kinds) == 1
    hospital.clock.advance(hours=1)
    assert deliver_outbox(hospital.runtime, kinds) == 0
    assert calls == [1]


def test_backoff_counts_from_the_failure_not_from_the_start_of_a_slow_attempt(hospital):
    def times_out(services, job, now):
        hospital.clock.advance(seconds=35)  # connected, then no ACK for 30 s
        raise HisUnavailable("no ACK")

    add(hospital, "probe")
    deliver_outbox(hospital.runtime, {"probe": OutboxKind(times_out)})
    [message] = hospital.outbox("probe")
    assert message.attempts == 1, "retried at once: its backoff ran out while it waited"
    assert message.next_attempt_at == START + dt.timedelta(seconds=35 + 2)


# --- the link's breaker -----------------------------------------------------------------------

def _paid_bookings(hospital, count: int) -> list[str]:
    bookings = []
    for n in range(1, count + 1):
        account_id, patient_id = hospital.patient(n)
        public_id = hospital.hold(account_id, patient_id, hospital.slot())
        hospital.paid(account_id, public_id)
        bookings.append(public_id)
    return bookings


def test_items_wait_for_a_link_that_is_down_and_are_all_due_when_it_returns(hospital):
    hospital.deliver()  # the patients are in the HIS
    hospital.his.down = True
    bookings = _paid_bookings(hospital, 6)
    for _ in range(60):  # a minute of outage, the worker running every second
        hospital.deliver()
        hospital.clock.advance(seconds=1)
    attempts = [m.attempts for m in hospital.outbox("his_patient") + hospital.outbox("his_book")]
    # Only the attempts that opened the breaker counted; the probes since cost nothing.
    assert sum(attempts) == OPEN_AFTER, attempts
    assert len(hospital.his.booked) == 0
    hospital.his.down = False
    hospital.clock.advance(seconds=MAX_PROBE_SECONDS)  # the next probe finds it back
    hospital.deliver()  # ...and the whole backlog drains in the same run
    assert [hospital.booking(b).status for b in bookings] == [BookingStatus.CONFIRMED] * 6
    assert len(hospital.his.appointments) == 6


def test_one_item_failing_alone_does_not_hold_the_others_back(hospital):
    hospital.deliver()
    book = hospital.his.book_appointment
    choking = []

    def chokes_on_the_first(request):
        if not choking or request.placer_appointment_id == choking[0]:
            choking[:1] = [request.placer_appointment_id]
            raise HisUnavailable("no answer to this one")
        return book(request)

    hospital.his.book_appointment = chokes_on_the_first
    bookings = _paid_bookings(hospital, 4)
    hospital.deliver()  # one run: the others pass the one the HIS chokes on
    statuses = [hospital.booking(b).status for b in bookings]
    assert statuses.count(BookingStatus.CONFIRMED) == 3
    assert not hospital.runtime.links.is_open("his")


def test_the_his_being_down_does_not_hold_back_the_wallet(hospital):
    _account_id, public_id, out_trade_no = hospital.confirmed()
    hospital.his.down = True
    for n in range(2, 2 + OPEN_AFTER):  # enough HIS failures to open its breaker
        hospital.patient(n)
    for _ in range(OPEN_AFTER + 1):
        hospital.deliver()
        hospital.clock.advance(seconds=2)
    assert hospital.runtime.links.is_open("his")
    with hospital.runtime.session_factory.begin() as session:
        from adapter.payments.refunds import refund_in_full
        refund_in_full(session, out_trade_no, "test", hospital.clock.now())
    hospital.deliver()
    assert hospital.wallet.refunded_fen(out_trade_no) == FEE
