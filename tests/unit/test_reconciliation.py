"""Daily reconciliation with the fakes: each class of discrepancy is found, the safe ones are
healed through the paths a payment and a refund normally take, and no re-run heals twice."""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import replace

import pytest
from sqlalchemy import select

from adapter.models import (
    ReconciliationDiscrepancy,
    ReconciliationHeal,
    ReconciliationRun,
    Refund,
    Trade,
    WalletAccount,
)
from adapter.payments.trades import open_trade
from adapter.ports import (
    BillEntryKind,
    HisSettlement,
    SettlementChannel,
    SettlementKind,
    WalletBillEntry,
)
from adapter.reconciliation.export import CSV_COLUMNS, summary_lines, write_csv
from adapter.reconciliation.jobs import reconcile_yesterday
from adapter.reconciliation.matching import Action, Kind
from adapter.reconciliation.service import ReconciliationFailed, reconcile_day
from tests.unit.conftest import FEE, TZ


@pytest.fixture
def books(hospital):
    """The hospital with a HIS that posts each booking (and refunds each cancellation)."""
    hospital.his.settle_fen = FEE
    hospital.his.settle_at = hospital.clock.now()
    return hospital


def _day(hospital) -> dt.date:
    return hospital.clock.now().astimezone(TZ).date()


def _run(hospital):
    runtime = hospital.runtime
    return reconcile_day(runtime, runtime.wallet, runtime.his, _day(hospital),
                         now=hospital.clock.now())


def _kinds(result) -> list[tuple[Kind, Action, bool]]:
    return [(d.kind, d.action, d.healed) for d in result.discrepancies]


def _settlement(kind=SettlementKind.PAYMENT, channel=SettlementChannel.WALLET, fen=FEE,
                placer="", out_trade_no="", receipt="X1") -> HisSettlement:
    at = dt.datetime(2030, 3, 4, 10, 0, tzinfo=TZ)
    return HisSettlement(receipt, kind, channel, fen, at, out_trade_no, placer)


def test_a_clean_day_has_no_discrepancy_and_sums_agree(books):
    books.confirmed(1)
    books.confirmed(2)
    result = _run(books)
    assert result.discrepancies == []
    wallet, adapter, his = (result.summary[side] for side in ("wallet", "adapter", "his"))
    assert wallet == adapter == his == {"payments": 2, "payment_fen": 2 * FEE, "refunds": 0,
                                        "refund_fen": 0}
    with books.runtime.session_factory() as session:
        run = session.get(ReconciliationRun, result.run_id)
        assert (run.status, run.discrepancies, run.healed) == ("done", 0, 0)
        assert json.loads(run.summary)["wallet"]["payment_fen"] == 2 * FEE


def test_money_for_a_trade_we_never_made_is_wallet_only_and_left_to_staff(books):
    books.confirmed(1)
    books.wallet.bill_extra.append(WalletBillEntry(
        BillEntryKind.PAYMENT, "OTHER-SYSTEM-1", "T9", 990, books.clock.now()))
    result = _run(books)
    assert _kinds(result) == [(Kind.WALLET_ONLY, Action.FIND_OWNER, False)]
    assert result.discrepancies[0].wallet_fen == 990


def test_a_payment_missing_from_the_bill_is_adapter_only(books):
    _, _, out_trade_no = books.confirmed(1)
    books.wallet.bill_omit.add(out_trade_no)
    assert _kinds(_run(books)) == [(Kind.ADAPTER_ONLY, Action.QUERY_WALLET, False)]


def test_a_his_posting_nobody_knows_is_his_only(books):
    books.confirmed(1)
    books.his.settlements.append(_settlement(placer="NOBODY"))
    result = _run(books)
    assert _kinds(result) == [(Kind.HIS_ONLY, Action.CHECK_HIS_POSTING, False)]
    assert result.discrepancies[0].his_receipt_no == "X1"


def test_a_his_posting_of_another_amount_is_an_amount_mismatch(books):
    books.his.settle_fen = FEE + 100
    books.confirmed(1)
    [item] = _run(books).discrepancies
    assert (item.kind, item.wallet_fen, item.adapter_fen, item.his_fen) == (
        Kind.AMOUNT_MISMATCH, FEE, FEE, FEE + 100)


def test_a_lost_notification_is_healed_by_posting_through_the_outbox_once(books):
    account_id, patient_id = books.patient(1)
    public_id = books.hold(account_id, patient_id, books.slot())
    out_trade_no = books.pay(account_id, public_id).out_trade_no
    books.wallet.pay(out_trade_no)  # paid in the wallet; the notification never comes
    first = _run(books)
    assert _kinds(first) == [(Kind.PAID_NOT_POSTED, Action.APPLY_PAYMENT, True)]
    assert first.discrepancies[0].heal == "posted"
    assert books.trade(out_trade_no).status == "paid"
    assert [m.kind for m in books.outbox("his_book")] == ["his_book"]
    again = _run(books)  # the HIS has not posted yet: listed, not healed again
    assert _kinds(again) == [(Kind.PAID_NOT_POSTED, Action.CHECK_POSTING, False)]
    books.deliver()
    assert books.booking(public_id).status == "confirmed"
    assert _run(books).discrepancies == []
    assert len(books.his.booked) == 1 and len(books.outbox("his_book")) == 1


def test_a_payment_whose_purpose_cannot_take_it_is_refunded(books):
    account_id, _ = books.patient(1)
    with books.runtime.session_factory.begin() as session:
        open_trade(session, out_trade_no="X-1", purpose="retired_purpose", reference="r1",
                   subject="x", total_fen=700, account=session.get(WalletAccount, account_id),
                   expire_at=books.clock.now() + dt.timedelta(minutes=15))
    books.wallet.create_trade("X-1", 700, "x", "u", None)
    books.wallet.pay("X-1")
    result = _run(books)
    assert _kinds(result) == [(Kind.PAID_NOT_POSTED, Action.REFUND_UNPOSTABLE, True)]
    assert [(r.out_request_no, r.refund_fen) for r in books.refunds()] == [("X-1-R1", 700)]
    books.deliver()
    assert books.wallet.refunded_fen("X-1") == 700


def test_a_paid_booking_the_his_never_posted_is_listed_for_staff(books):
    books.his.settle_fen = 0  # the HIS booked it but lost the posting
    books.confirmed(1)
    assert _kinds(_run(books)) == [(Kind.PAID_NOT_POSTED, Action.CHECK_POSTING, False)]


def test_a_his_posting_of_an_unpaid_trade_is_posted_not_paid(books):
    account_id, patient_id = books.patient(1)
    public_id = books.hold(account_id, patient_id, books.slot())
    books.pay(account_id, public_id)  # created, never paid
    books.his.settlements.append(_settlement(placer=public_id))
    assert _kinds(_run(books)) == [(Kind.POSTED_NOT_PAID, Action.REVERSE_HIS_POSTING, False)]


def test_a_refund_made_at_the_platform_is_a_refund_mismatch(books):
    _, _, out_trade_no = books.confirmed(1)
    books.wallet.trades[out_trade_no]["refunds"]["CONSOLE-1"] = 500
    result = _run(books)
    assert _kinds(result) == [(Kind.REFUND_MISMATCH, Action.REFUND_OUTSIDE, False)]
    assert result.discrepancies[0].out_request_no == "CONSOLE-1"


def test_a_refund_the_his_made_on_the_wallet_channel_is_carried_out_once(books):
    _, public_id, out_trade_no = books.confirmed(1)
    books.his.settlements.append(_settlement(SettlementKind.REFUND, fen=FEE - 100,
                                             placer=public_id, receipt="T1"))
    first = _run(books)
    assert _kinds(first) == [(Kind.REFUND_MISMATCH, Action.REFUND_HIS_REFUND, True)]
    [refund] = books.refunds()
    assert (refund.refund_fen, refund.out_request_no) == (FEE - 100, f"{out_trade_no}-D20300304")
    again = _run(books)  # the refund is still on its way: waited for, never asked twice
    assert _kinds(again) == [(Kind.REFUND_MISMATCH, Action.WAIT_REFUND, False)]
    assert len(books.refunds()) == 1
    books.deliver()
    assert books.wallet.refunded_fen(out_trade_no) == FEE - 100
    assert _run(books).discrepancies == []
    assert books.wallet.refund_requests == [refund.out_request_no]


def test_a_his_refund_beyond_the_payment_is_never_carried_out(books):
    _, public_id, _ = books.confirmed(1)
    books.his.settlements.append(_settlement(SettlementKind.REFUND, fen=FEE + 1,
                                             placer=public_id, receipt="T1"))
    assert _kinds(_run(books)) == [(Kind.REFUND_MISMATCH, Action.CHECK_AMOUNTS, False)]
    assert books.refunds() == []


def test_a_wallet_payment_paid_back_in_cash_is_refunded_at_window(books):
    _, public_id, _ = books.confirmed(1)
    books.his.settlements.append(_settlement(SettlementKind.REFUND, SettlementChannel.WINDOW,
                                             placer=public_id, receipt="W1"))
    result = _run(books)
    assert _kinds(result) == [(Kind.REFUNDED_AT_WINDOW, Action.SETTLE_WINDOW_REFUND, False)]
    assert books.refunds() == []  # never refunded in the wallet as well


def test_a_cancelled_booking_refunded_on_both_sides_is_clean(books):
    account_id, public_id, out_trade_no = books.confirmed(1)
    books.cancel(account_id, public_id)
    books.deliver()
    books.deliver()
    assert books.wallet.refunded_fen(out_trade_no) == FEE
    assert _run(books).discrepancies == []


def test_the_csv_and_the_summary_carry_ids_and_yuan_only(books):
    books.confirmed(1)
    books.wallet.bill_extra.append(WalletBillEntry(
        BillEntryKind.PAYMENT, "OTHER-1", "T9", 12345, books.clock.now()))
    result = _run(books)
    out = io.StringIO()
    assert write_csv(result.discrepancies, out) == 1
    header, row = out.getvalue().splitlines()
    assert header.split(",") == list(CSV_COLUMNS)
    assert row.startswith("wallet_only,") and ",123.45,,," in row and "测试" not in row
    lines = summary_lines(result.summary, "en")
    assert any("wallet_only" in line and "123.45" in line for line in lines)
    assert any(f"{FEE // 100}.{FEE % 100:02d}" in line for line in lines)


def test_a_bill_not_there_yet_fails_the_run_and_the_schedule_tries_again(books):
    runtime = books.runtime
    books.clock.set(dt.datetime(2030, 3, 5, 10, 30, tzinfo=TZ))
    books.wallet.down = True
    assert reconcile_yesterday(runtime) == 0
    books.wallet.down = False
    assert reconcile_yesterday(runtime) == 1
    assert reconcile_yesterday(runtime) == 0  # done once by the schedule
    with runtime.session_factory() as session:
        runs = session.execute(select(ReconciliationRun.status, ReconciliationRun.day)
                               .order_by(ReconciliationRun.id)).all()
    assert runs == [("failed", dt.date(2030, 3, 4)), ("done", dt.date(2030, 3, 4))]


def test_before_the_hour_the_schedule_waits(books):
    books.clock.set(dt.datetime(2030, 3, 5, 9, 59, tzinfo=TZ))
    assert reconcile_yesterday(books.runtime) == 0


def test_a_failed_read_is_recorded_and_raised(books):
    books.his.down = True
    with pytest.raises(ReconciliationFailed):
        _run(books)
    with books.runtime.session_factory() as session:
        run = session.scalar(select(ReconciliationRun))
        assert run.status == "failed" and "HisUnavailable" in run.error
        assert session.scalar(select(ReconciliationDiscrepancy)) is None


def test_every_discrepancy_is_recorded_with_its_amounts(books):
    _, _, out_trade_no = books.confirmed(1)
    books.wallet.bill_omit.add(out_trade_no)
    result = _run(books)
    with books.runtime.session_factory() as session:
        [row] = session.scalars(select(ReconciliationDiscrepancy).where(
            ReconciliationDiscrepancy.run_id == result.run_id))
        assert (row.kind, row.out_trade_no, row.wallet_fen, row.adapter_fen, row.his_fen,
                row.action, row.healed) == ("adapter_only", out_trade_no, None, FEE, FEE,
                                            "query_wallet", False)
        assert session.get(Trade, out_trade_no).status == "paid"
        assert session.scalar(select(Refund)) is None


def test_a_healing_claimed_by_another_run_is_not_done_again(books):
    account_id, patient_id = books.patient(1)
    public_id = books.hold(account_id, patient_id, books.slot())
    out_trade_no = books.pay(account_id, public_id).out_trade_no
    books.wallet.pay(out_trade_no)
    with books.runtime.session_factory.begin() as session:  # a concurrent run claimed it
        other = ReconciliationRun(day=_day(books), platform="fake", trigger="cli",
                                  started_at=books.clock.now())
        session.add(other)
        session.flush()
        session.add(ReconciliationHeal(action="post", subject=out_trade_no, run_id=other.id,
                                       created_at=books.clock.now()))
    [item] = _run(books).discrepancies
    assert (item.kind, item.heal) == (Kind.PAID_NOT_POSTED, "earlier")
    assert books.trade(out_trade_no).status == "created" and books.outbox("his_book") == []


def test_the_worker_schedules_the_daily_run_unless_it_is_off(runtime):
    from adapter.worker.scheduler import make_scheduler

    jobs = {job.id for job in make_scheduler(runtime, blocking=False).get_jobs()}
    assert "reconcile_yesterday" in jobs
    runtime.config = replace(runtime.config, reconcile_at=None)
    jobs = {job.id for job in make_scheduler(runtime, blocking=False).get_jobs()}
    assert "reconcile_yesterday" not in jobs


def test_an_id_that_would_be_a_spreadsheet_formula_is_kept_as_text(books):
    books.wallet.bill_extra.append(WalletBillEntry(
        BillEntryKind.PAYMENT, "=HYPERLINK(1)", "T9", 100, books.clock.now()))
    out = io.StringIO()
    write_csv(_run(books).discrepancies, out)
    assert ",'=HYPERLINK(1)," in out.getvalue()


def test_his_lines_of_another_wallets_trades_are_left_to_that_wallets_run(books):
    with books.runtime.session_factory.begin() as session:
        session.add(Trade(out_trade_no="WX-1", platform="otherpay", purpose="registration",
                          reference="BK-OTHER", subject="x", total_fen=FEE, buyer_id="u",
                          status="paid", expire_at=books.clock.now(),
                          paid_at=books.clock.now()))
    books.his.settlements += [_settlement(placer="BK-OTHER"),
                              _settlement(out_trade_no="WX-1", receipt="X2")]
    assert _run(books).discrepancies == []


def test_a_booking_the_his_refused_paid_and_refunded_the_same_day_is_clean(books):
    books.his.refuse_with = "SLOT_TAKEN"
    account_id, patient_id = books.patient(1)
    public_id = books.hold(account_id, patient_id, books.slot())
    out_trade_no = books.paid(account_id, public_id)
    books.deliver()
    books.deliver()
    assert books.booking(public_id).status == "rejected"
    assert books.wallet.refunded_fen(out_trade_no) == FEE
    assert _run(books).discrepancies == []


def test_an_unexpected_error_fails_the_run_instead_of_leaving_it_running(books, monkeypatch):
    from adapter.reconciliation import service

    def broken(*_args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "classify", broken)
    with pytest.raises(RuntimeError):
        _run(books)
    with books.runtime.session_factory() as session:
        run = session.scalar(select(ReconciliationRun))
        assert (run.status, run.error, run.schedule_key) == ("failed", "error: RuntimeError",
                                                             None)


def test_a_payment_of_the_last_hour_posted_after_midnight_is_in_order(books):
    books.clock.set(dt.datetime(2030, 3, 4, 23, 30, tzinfo=TZ))
    books.wallet.bill_at = books.clock.now()
    books.his.settle_at = dt.datetime(2030, 3, 5, 0, 10, tzinfo=TZ)
    books.confirmed(1)
    runtime = books.runtime
    before_midnight = reconcile_day(runtime, runtime.wallet, runtime.his, dt.date(2030, 3, 4),
                                    now=books.clock.now())
    assert _kinds(before_midnight) == [(Kind.PAID_NOT_POSTED, Action.CHECK_POSTING, False)]
    books.clock.set(dt.datetime(2030, 3, 5, 10, 0, tzinfo=TZ))
    assert _run_day(books, dt.date(2030, 3, 4)).discrepancies == []


def _run_day(hospital, day: dt.date):
    runtime = hospital.runtime
    return reconcile_day(runtime, runtime.wallet, runtime.his, day, now=hospital.clock.now())
