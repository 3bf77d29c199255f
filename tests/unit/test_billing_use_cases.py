"""Fee payment as use cases with fakes: charges in, pre-settlement, one trade, the commit and
its failure paths, lock expiry, refunds the HIS asks for, the split."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from adapter.billing.charges import unpaid_charges
from adapter.billing.his_refunds import refund_for_his
from adapter.billing.jobs import release_expired_locks
from adapter.billing.posting import raised_settlements
from adapter.models import Verification
from adapter.models_billing import ChargeStatus, SettlementStatus
from adapter.ports import InboundRefused, TradeState
from adapter.ports_billing import HisRefundLine
from adapter.refusals import Refusal
from tests.fakes import FakeBillingHis
from tests.unit.billing_kit import (
    charge,
    charge_ids,
    his_patient,
    line,
    paid_bill,
    pay,
    reported,
    settlement,
)


@pytest.fixture
def hospital(hospital):
    hospital.runtime.his = hospital.his = FakeBillingHis()
    return hospital


def test_new_charges_are_kept_and_announced_once(hospital):
    account_id, his_id = his_patient(hospital)
    reported(hospital, his_id, line(his_id, 1), line(his_id, 2, 1250))
    reported(hospital, his_id, line(his_id, 1), line(his_id, 2, 1250), control_id="M2")
    pushes = [json.loads(m.payload)["text"] for m in hospital.outbox("push")]
    assert len(pushes) == 1 and "2笔" in pushes[0] and "37.50" in pushes[0]
    with hospital.runtime.session_factory() as session:
        [(_patient, charges)] = unpaid_charges(session, account_id)
        assert [c.amount_fen for c in charges] == [2500, 1250]
        assert charges[0].item_kind == "laboratory" and charges[0].group_code == "RX1"


def test_charges_of_an_unverified_dependant_are_not_listed(hospital):
    account_id, his_id = his_patient(hospital)
    from adapter.models import Patient

    with hospital.runtime.session_factory.begin() as session:
        for patient in session.query(Patient).all():
            patient.verification = Verification.UNVERIFIED
    reported(hospital, his_id, line(his_id, 1))
    with hospital.runtime.session_factory() as session:
        assert unpaid_charges(session, account_id) == []
    assert hospital.outbox("push") == []


def test_a_paid_bill_is_committed_once_with_the_his_total_and_receipt(hospital):
    account_id, his_id = his_patient(hospital)
    reported(hospital, his_id, line(his_id, 1), line(his_id, 2, 1250))
    ids = charge_ids(hospital, f"C{his_id}-1", f"C{his_id}-2")
    started = paid_bill(hospital, account_id, ids)
    assert started.total_fen == 3750 == hospital.wallet.trades[started.out_trade_no]["total_fen"]
    assert settlement(hospital, started.public_id).status == SettlementStatus.COMMITTING
    hospital.deliver()
    done = settlement(hospital, started.public_id)
    assert done.status == SettlementStatus.COMMITTED and done.receipt_no == "RC000001"
    assert (done.self_pay_fen, done.insurance_fund_fen, done.personal_account_fen) == (3750, 0, 0)
    assert hospital.his.commits == 1
    assert charge(hospital, f"C{his_id}-1").status == ChargeStatus.PAID
    assert any("RC000001" in json.loads(m.payload)["text"] for m in hospital.outbox("push"))


def test_the_his_holds_the_lock_past_the_deadline_for_a_last_second_payment(hospital):
    account_id, his_id = his_patient(hospital)
    reported(hospital, his_id, line(his_id, 1))
    started = pay(hospital, account_id, charge_ids(hospital, f"C{his_id}-1"))
    deadline = settlement(hospital, started.public_id).lock_expires_at
    assert deadline == hospital.clock.now() + dt.timedelta(minutes=15)
    assert hospital.his.lock_until == deadline + dt.timedelta(minutes=10)
    hospital.clock.advance(minutes=14, seconds=59)
    hospital.wallet.pay(started.out_trade_no)  # paid in the last second, notified later
    hospital.clock.advance(minutes=2)
    assert hospital.notify(started.out_trade_no) == "applied"
    hospital.deliver()
    assert settlement(hospital, started.public_id).status == SettlementStatus.COMMITTED


def test_the_same_bill_asked_twice_is_one_lock_and_one_trade(hospital):
    account_id, his_id = his_patient(hospital)
    reported(hospital, his_id, line(his_id, 1))
    ids = charge_ids(hospital, f"C{his_id}-1")
    first, again = pay(hospital, account_id, ids), pay(hospital, account_id, ids)
    assert first == again and len(hospital.wallet.trades) == 1


def test_the_his_amount_wins_over_the_listed_one(hospital):
    account_id, his_id = his_patient(hospital)
    reported(hospital, his_id, line(his_id, 1))
    hospital.his.amount_changes[f"C{his_id}-1"] = 3000
    with pytest.raises(Refusal) as refused:
        pay(hospital, account_id, charge_ids(hospital, f"C{his_id}-1"))
    assert refused.value.code == "bill.changed"
    assert charge(hospital, f"C{his_id}-1").amount_fen == 3000
    assert charge(hospital, f"C{his_id}-1").status == ChargeStatus.UNPAID
    assert hospital.outbox("his_release") and hospital.wallet.trades == {}


def test_a_charge_paid_at_the_window_is_refused_with_the_reason(hospital):
    account_id, his_id = his_patient(hospital)
    reported(hospital, his_id, line(his_id, 1))
    hospital.his.paid_at_window.add(f"C{his_id}-1")
    with pytest.raises(Refusal) as refused:
        pay(hospital, account_id, charge_ids(hospital, f"C{his_id}-1"))
    assert refused.value.code == "bill.paid_elsewhere" and refused.value.params["item"] == "项目1"
    assert charge(hospital, f"C{his_id}-1").status == ChargeStatus.PAID_ELSEWHERE


def test_charges_of_different_groups_are_not_paid_together(hospital):
    account_id, his_id = his_patient(hospital)
    reported(hospital, his_id, line(his_id, 1), line(his_id, 2, group="RX2"))
    with pytest.raises(Refusal) as refused:
        pay(hospital, account_id, charge_ids(hospital, f"C{his_id}-1", f"C{his_id}-2"))
    assert refused.value.code == "bill.not_together"


def test_someone_elses_charge_is_unknown(hospital):
    _account, his_id = his_patient(hospital, 1)
    other, _ = his_patient(hospital, 2)
    reported(hospital, his_id, line(his_id, 1))
    with pytest.raises(Refusal) as refused:
        pay(hospital, other, charge_ids(hospital, f"C{his_id}-1"))
    assert refused.value.code == "bill.unknown"


def test_a_lost_commit_answer_is_settled_by_the_status_query(hospital):
    account_id, his_id = his_patient(hospital)
    reported(hospital, his_id, line(his_id, 1))
    started = paid_bill(hospital, account_id, charge_ids(hospital, f"C{his_id}-1"))
    hospital.his.lose_commit_answers = 1
    hospital.deliver()
    assert settlement(hospital, started.public_id).status == SettlementStatus.COMMITTING
    hospital.clock.advance(seconds=5)
    hospital.deliver()
    done = settlement(hospital, started.public_id)
    assert done.status == SettlementStatus.COMMITTED and done.receipt_no == "RC000001"
    assert hospital.his.commits == 1 and done.commit_sent == 1


def test_a_commit_refused_for_good_is_refunded_and_raised(hospital):
    account_id, his_id = his_patient(hospital)
    reported(hospital, his_id, line(his_id, 1))
    started = paid_bill(hospital, account_id, charge_ids(hospital, f"C{his_id}-1"))
    hospital.his.paid_at_window.add(f"C{his_id}-1")  # the window raced the wallet
    hospital.deliver()
    done = settlement(hospital, started.public_id)
    assert done.status == SettlementStatus.REFUNDED and done.raised_reason == "CHARGE_PAID"
    assert hospital.wallet.refunded_fen(started.out_trade_no) == 2500
    with hospital.runtime.session_factory() as session:
        raised, total = raised_settlements(session)
        assert [s.public_id for s in raised] == [started.public_id] and total == 1


def test_a_commit_failing_past_the_configured_time_is_refunded_and_raised(hospital):
    account_id, his_id = his_patient(hospital)
    reported(hospital, his_id, line(his_id, 1))
    started = paid_bill(hospital, account_id, charge_ids(hospital, f"C{his_id}-1"))
    hospital.his.down = True
    hospital.deliver()
    assert settlement(hospital, started.public_id).status == SettlementStatus.COMMITTING
    hospital.clock.advance(minutes=31)
    hospital.runtime.links.succeeded("his")
    hospital.deliver()
    # A commit may have left before the HIS went silent: raised, but not refunded blind.
    waiting = settlement(hospital, started.public_id)
    assert waiting.status == SettlementStatus.COMMITTING and waiting.raised_at is not None
    assert hospital.wallet.refund_requests == []
    hospital.his.down = False  # back: its status says not posted, and it is too late to post
    hospital.clock.advance(minutes=11)
    hospital.runtime.links.succeeded("his")
    hospital.deliver()
    done = settlement(hospital, started.public_id)
    assert done.status == SettlementStatus.REFUNDED and done.raised_reason == "HIS_UNREACHABLE"
    assert hospital.wallet.refunded_fen(started.out_trade_no) == 2500
    assert hospital.his.commits == 0


def test_a_lock_past_its_deadline_is_released_and_a_late_payment_refunded(hospital):
    account_id, his_id = his_patient(hospital)
    reported(hospital, his_id, line(his_id, 1))
    started = pay(hospital, account_id, charge_ids(hospital, f"C{his_id}-1"))
    hospital.clock.advance(minutes=16)
    assert release_expired_locks(hospital.runtime) == 1
    assert settlement(hospital, started.public_id).status == SettlementStatus.EXPIRED
    assert charge(hospital, f"C{his_id}-1").status == ChargeStatus.UNPAID
    hospital.deliver()
    assert hospital.his.released == [started.public_id] and hospital.his.locks == {}
    # The wallet took the money after all (a payment racing the close): given back.
    hospital.wallet.trades[started.out_trade_no]["state"] = TradeState.PAID
    assert hospital.notify(started.out_trade_no) == "applied"
    hospital.deliver()
    assert hospital.wallet.refunded_fen(started.out_trade_no) == 2500


def test_refunds_the_his_asks_for_are_made_once_and_never_exceed_the_payment(hospital):
    account_id, his_id = his_patient(hospital)
    reported(hospital, his_id, line(his_id, 1), line(his_id, 2, 1500))
    started = paid_bill(hospital, account_id,
                        charge_ids(hospital, f"C{his_id}-1", f"C{his_id}-2"))
    hospital.deliver()
    factory = hospital.runtime.session_factory
    partial = HisRefundLine("HR1", "RC000001", f"C{his_id}-2", 1500)
    with factory.begin() as session:
        assert refund_for_his(session, partial, hospital.clock.now())
    with factory.begin() as session:
        assert not refund_for_his(session, partial, hospital.clock.now())  # a resend
    with pytest.raises(InboundRefused), factory.begin() as session:
        refund_for_his(session, HisRefundLine("HR2", "RC000001", "", 2501),
                       hospital.clock.now())
    hospital.wallet.down = True
    hospital.deliver()
    hospital.wallet.down = False
    hospital.clock.advance(minutes=1)
    hospital.runtime.links.succeeded("wallet")
    hospital.deliver()
    requests = [r for r in hospital.wallet.refund_requests if r.endswith("-H1")]
    assert len(requests) == 2 and len(set(requests)) == 1  # retried under one number
    assert hospital.wallet.refunded_fen(started.out_trade_no) == 1500
    assert settlement(hospital, started.public_id).refunded_fen == 1500


def test_a_refund_for_a_receipt_not_paid_through_us_is_refused(hospital):
    with pytest.raises(InboundRefused), hospital.runtime.session_factory.begin() as session:
        refund_for_his(session, HisRefundLine("HR9", "RC-WINDOW", "", 100),
                       hospital.clock.now())
