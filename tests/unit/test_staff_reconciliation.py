"""Reconciliation reports as use cases: each day's latest run and its outcome, a day's
discrepancies open ones first, one marked as handled (audited, once), a day run again from the
report heals nothing twice."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from adapter.models import StaffAudit
from adapter.ports import BillEntryKind, WalletBillEntry
from adapter.refusals import Refusal
from adapter.staff.reconciliation import (
    acknowledge_discrepancy,
    day_report,
    reconciliation_days,
    rerun_day,
)
from tests.unit.conftest import FEE
from tests.unit.test_reconciliation import _day, _run, books  # noqa: F401 - the fixture


def _audit(hospital):
    with hospital.runtime.session_factory() as db:
        rows = db.scalars(select(StaffAudit).order_by(StaffAudit.id))
        return [(row.action, row.target) for row in rows]


def test_a_day_with_an_open_discrepancy_is_listed_with_its_books_and_classes(books):
    books.confirmed(1)
    books.wallet.bill_extra.append(WalletBillEntry(
        BillEntryKind.PAYMENT, "OTHER-SYSTEM-1", "T9", 990, books.clock.now()))
    result = _run(books)
    with books.runtime.session_factory() as db:
        [day] = reconciliation_days(db)
    assert (day.run_id, day.day, day.outcome, day.open) == (result.run_id, _day(books),
                                                             "mismatches", 1)
    assert day.books["wallet"].payments == 2 and day.books["wallet"].payment_fen == FEE + 990
    assert day.books["adapter"].payment_fen == day.books["his"].payment_fen == FEE
    assert day.by_kind == {"wallet_only": 1}


def test_marking_a_discrepancy_handled_is_audited_once_and_the_day_matches(books):
    books.confirmed(1)
    books.wallet.bill_extra.append(WalletBillEntry(
        BillEntryKind.PAYMENT, "OTHER-SYSTEM-1", "T9", 990, books.clock.now()))
    run_id = _run(books).run_id
    now = books.clock.now()
    with books.runtime.session_factory() as db:
        [item] = day_report(db, run_id).discrepancies
    for _ in range(2):
        with books.runtime.session_factory.begin() as db:
            acknowledge_discrepancy(db, item.id, actor="op", remote="10.0.0.1", now=now)
    with books.runtime.session_factory() as db:
        report = day_report(db, run_id)
    assert report.day.outcome == "matched" and report.day.open == 0
    assert (report.discrepancies[0].acknowledged_by, report.discrepancies[0].acknowledged_at) \
        == ("op", now)
    assert _audit(books) == [("discrepancy_acknowledged", f"discrepancy:{item.id}")]
    with books.runtime.session_factory.begin() as db, pytest.raises(Refusal) as refused:
        acknowledge_discrepancy(db, item.id + 1000, actor="op", remote="", now=now)
    assert refused.value.code == "reconciliation.unknown"


def test_a_day_run_again_from_the_report_is_the_latest_and_heals_nothing_twice(books):
    books.confirmed(1)
    day = _day(books)
    first = _run(books)
    books.clock.advance(hours=24)
    [again] = rerun_day(books.runtime, day, actor="op", remote="", now=books.clock.now())
    assert again.run_id != first.run_id and again.summary == first.summary
    with books.runtime.session_factory() as db:
        [listed] = reconciliation_days(db)
        report = day_report(db, again.run_id)
    assert listed.run_id == again.run_id and [r.id for r in report.runs] == [again.run_id,
                                                                             first.run_id]
    assert report.runs[0].trigger == "staff"
    assert _audit(books) == [("reconciliation_run", f"reconciliation:{day.isoformat()}")]


@pytest.mark.parametrize("days_back", [0, -1, 401])
def test_today_the_future_and_the_far_past_cannot_be_run_again(books, days_back):
    day = _day(books) - dt.timedelta(days=days_back)
    with pytest.raises(Refusal) as refused:
        rerun_day(books.runtime, day, actor="op", remote="", now=books.clock.now())
    assert refused.value.code == "reconciliation.bad_day"
    assert _audit(books) == []
