"""The billing profile on the wire without sockets: the adapter's gateway talking to the HIS
simulator's cash desk through handle(), DFT^P03 read into events, amounts read as fen."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from adapter.his.billing import parse_dft_p03, to_fen
from adapter.his.gateway import MllpHisGateway
from adapter.his.mllp import DropConnection
from adapter.his.mllp_client import MllpConnectionError
from adapter.his.profile import Hl7Profile
from adapter.his.segments import MessageError
from adapter.his.simulator import HisSimulator
from adapter.his.simulator.cashier_wire import build_dft_charges, build_dft_refunds
from adapter.mappings import default_mappings_dir, load_mappings
from adapter.ports import HisRefused, HisUnavailable
from adapter.ports_billing import (
    ChargesReported,
    CommitRequest,
    PreSettleRequest,
    RefundsRequested,
    SettlementKind,
    SettlementState,
)

TZ = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2025, 3, 3, 10, 30, tzinfo=TZ)
MAPPINGS = load_mappings(default_mappings_dir())
PROFILE = Hl7Profile()


class LoopClient:
    """An MllpClient that hands each message to the simulator (a dropped connection after
    part of the answer is what the real client reports: the outcome is unknown)."""

    def __init__(self, his: HisSimulator) -> None:
        self.his = his

    def send(self, payload: bytes) -> bytes:
        try:
            return self.his.handle(payload)
        except DropConnection:
            raise MllpConnectionError("connection lost after part of the response") from None

    def close(self) -> None:
        pass


@pytest.fixture
def his():
    simulator = HisSimulator(MAPPINGS, tz=TZ, today=NOW.date(), seed=7)
    simulator._now = lambda: NOW  # the cash desk's clock: the test's
    simulator.cashier.clock = lambda: NOW
    return simulator


@pytest.fixture
def gateway(his):
    return MllpHisGateway(LoopClient(his), PROFILE, MAPPINGS, TZ, clock=lambda: NOW)


def _locked(gateway, his, settlement_no="S1"):
    lines = his.cashier.issue_charges("P000123", "V1", "PED")
    answer = gateway.pre_settle(PreSettleRequest(settlement_no, "P000123",
                                                 tuple(c.his_charge_id for c in lines),
                                                 NOW + dt.timedelta(minutes=15)))
    return lines, answer


def _commit(gateway, settlement_no, total):
    return gateway.commit_settlement(CommitRequest(settlement_no, "P000123", f"F{settlement_no}",
                                                   "T1", total, total, paid_at=NOW))


def test_amounts_are_read_as_whole_fen_never_floats():
    assert [to_fen(v, "x") for v in ("25", "25.5", "25.50", "0.07")] == [2500, 2550, 2550, 7]
    for bad in ("25.505", "-1", "1e3", "", "２５"):
        with pytest.raises(MessageError):
            to_fen(bad, "x")


def test_charges_after_a_consultation_come_as_dft_p03_with_ft1_lines(his):
    lines = his.cashier.issue_charges("P000123", "V1", "PED")
    event = parse_dft_p03(build_dft_charges(PROFILE, "H1", NOW, "P000123", lines), TZ)
    assert isinstance(event, ChargesReported) and event.his_patient_id == "P000123"
    assert [(c.item_code, c.amount_fen, c.group_code, c.visit_number, c.department_code)
            for c in event.lines] == [("LAB_CBC", 2500, "V1-LAB", "V1", "PED"),
                                      ("LAB_CRP", 3000, "V1-LAB", "V1", "PED")]
    refund = parse_dft_p03(build_dft_refunds(PROFILE, "H2", NOW, "P000123",
                                             [("RF1", "RC1", lines[1].his_charge_id, 3000)]), TZ)
    assert isinstance(refund, RefundsRequested)
    assert (refund.lines[0].his_refund_id, refund.lines[0].amount_fen) == ("RF1", 3000)


def test_query_lock_commit_status_release_and_the_settlement_list(gateway, his):
    his.cashier.issue_charges("P000123", "V1", "PED")
    assert [c.amount_fen for c in gateway.query_charges("P000123")] == [2500, 3000]
    lines, answer = _locked(gateway, his)
    assert answer.total_fen == sum(c.amount_fen for c in lines) == 5500
    assert gateway.settlement_status("S1").state is SettlementState.LOCKED
    receipt = _commit(gateway, "S1", answer.total_fen)
    assert receipt.receipt_no.startswith("RC") and receipt.invoice_url.startswith("https://")
    again = _commit(gateway, "S1", answer.total_fen)  # a resend: the same receipt, no second
    assert again == receipt
    status = gateway.settlement_status("S1")
    assert status.state is SettlementState.COMMITTED and status.receipt == receipt
    gateway.release_settlement("S1")  # a committed settlement keeps its posting
    assert gateway.settlement_status("S1").state is SettlementState.COMMITTED
    assert gateway.settlement_status("S404").state is SettlementState.NOT_FOUND
    [record] = gateway.bill_settlement_list(NOW.date())
    assert (record.receipt_no, record.settlement_no, record.out_trade_no, record.amount_fen,
            record.kind) == (receipt.receipt_no, "S1", "FS1", answer.total_fen,
                             SettlementKind.PAYMENT)


def test_a_window_payment_before_the_lock_is_refused_with_the_charge(gateway, his):
    lines = his.cashier.issue_charges("P000123", "V1", "PED")
    his.cashier.pay_at_window([lines[0].his_charge_id])
    with pytest.raises(HisRefused) as refused:
        gateway.pre_settle(PreSettleRequest("S2", "P000123",
                                            tuple(c.his_charge_id for c in lines),
                                            NOW + dt.timedelta(minutes=15)))
    assert refused.value.outcome.error_code == "CHARGE_PAID"
    assert refused.value.outcome.details["charge"] == lines[0].his_charge_id


def test_a_window_racing_the_wallet_makes_the_commit_refused(gateway, his):
    lines, answer = _locked(gateway, his)
    his.cashier.window_races = True
    his.cashier.pay_at_window([lines[0].his_charge_id])
    with pytest.raises(HisRefused) as refused:
        _commit(gateway, "S1", answer.total_fen)
    assert refused.value.outcome.error_code == "CHARGE_PAID"
    assert {r.channel for r in gateway.bill_settlement_list(NOW.date())} == {"window"}


def test_a_lost_commit_answer_is_unknown_and_the_status_query_finds_the_receipt(gateway, his):
    _lines, answer = _locked(gateway, his)
    his.cashier.lose_commit_answers = 1
    with pytest.raises(HisUnavailable):
        _commit(gateway, "S1", answer.total_fen)
    status = gateway.settlement_status("S1")
    assert status.state is SettlementState.COMMITTED and status.receipt.receipt_no


def test_a_released_lock_lets_the_charges_go_and_cannot_be_committed(gateway, his):
    _lines, answer = _locked(gateway, his)
    gateway.release_settlement("S1")
    assert gateway.settlement_status("S1").state is SettlementState.NOT_FOUND
    with pytest.raises(HisRefused) as refused:
        _commit(gateway, "S1", answer.total_fen)
    assert refused.value.outcome.error_code == "NOT_LOCKED"
    assert len(gateway.query_charges("P000123")) == 2


def test_a_cancelled_test_is_refunded_and_listed(gateway, his):
    lines, answer = _locked(gateway, his)
    receipt = _commit(gateway, "S1", answer.total_fen)
    his.cashier.cancel_test(receipt.receipt_no, lines[1].his_charge_id)
    with pytest.raises(ValueError):
        his.cashier.cancel_test(receipt.receipt_no, amount_fen=answer.total_fen)
    kinds = [(r.kind, r.amount_fen) for r in gateway.bill_settlement_list(NOW.date())]
    assert kinds == [(SettlementKind.PAYMENT, answer.total_fen),
                     (SettlementKind.REFUND, lines[1].amount_fen)]


def test_a_dft_p03_mixing_charges_and_refunds_or_with_bad_amounts_is_refused(his):
    lines = his.cashier.issue_charges("P000123", "V1", "PED")
    charges = build_dft_charges(PROFILE, "H1", NOW, "P000123", lines)
    refund = build_dft_refunds(PROFILE, "H2", NOW, "P000123", [("RF1", "RC1", "", 100)])
    mixed = charges + "\r" + refund.split("\r")[-1]
    with pytest.raises(MessageError):
        parse_dft_p03(mixed, TZ)
    with pytest.raises(MessageError):
        parse_dft_p03(charges.replace("25.00&CNY", "25.001&CNY", 1), TZ)
