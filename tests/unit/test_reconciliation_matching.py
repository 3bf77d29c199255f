"""The matching alone, over generated days: whatever mix of faults a day holds, each injected
discrepancy is found once under its class, and nothing that agrees is reported."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.ports import (
    BillEntryKind,
    HisSettlement,
    SettlementChannel,
    SettlementKind,
    WalletBillEntry,
)
from adapter.reconciliation.matching import Books, Kind, RefundView, TradeView, classify

TZ = dt.timezone(dt.timedelta(hours=8))
START = dt.datetime(2026, 12, 2, tzinfo=TZ)
END = START + dt.timedelta(days=1)
AT = START + dt.timedelta(hours=10)

# None, "refunded" (on all three sides) and "rejected" (paid and refunded, never posted: the
# HIS refused it) agree; the rest are discrepancies.
FAULTS = st.sampled_from([None, None, None, "refunded", "rejected", *Kind,
                          "paid_not_posted_known", "refund_unknown_to_wallet"])


def _day(faults: list, fees: list[int]) -> tuple[Books, set[tuple[str, str]]]:
    books = Books(START, END, {}, {}, {}, {}, [], [])
    injected: set[tuple[str, str]] = set()

    def his(entry: HisSettlement, key: str) -> None:
        books.his.append(entry)
        books.his_keys.append(key)

    for i, (fault, fee) in enumerate(zip(faults, fees, strict=True)):
        key = f"T{i}"
        status, wallet_fen, his_fen, in_wallet, posted = "paid", fee, fee, True, True
        if fault is Kind.WALLET_ONLY:
            posted = False
        elif fault is Kind.ADAPTER_ONLY:
            in_wallet = False
        elif fault is Kind.AMOUNT_MISMATCH:
            if i % 2:
                wallet_fen += 1
            else:
                his_fen += 1
        elif fault is Kind.PAID_NOT_POSTED:
            status, posted = "created", False
        elif fault == "paid_not_posted_known":
            posted = False
        elif fault is Kind.POSTED_NOT_PAID:
            status, in_wallet = "created", False
        elif fault == "rejected":
            posted = False
        refunded = fee if fault in ("refunded", "rejected") else 0
        if fault is not Kind.WALLET_ONLY:
            books.trades[key] = TradeView(key, "registration", f"ref{i}",
                                          "refunded" if refunded else status, fee, refunded,
                                          AT if status == "paid" else None)
        if in_wallet:
            books.wallet_payments[key] = WalletBillEntry(BillEntryKind.PAYMENT, key, f"W{i}",
                                                         wallet_fen, AT)
        if posted:
            his(HisSettlement(f"S{i}", SettlementKind.PAYMENT, SettlementChannel.WALLET, his_fen,
                              AT, placer_id=f"ref{i}"), key)
        if fault is Kind.HIS_ONLY:
            his(HisSettlement(f"G{i}", SettlementKind.PAYMENT, SettlementChannel.WALLET, fee, AT,
                              placer_id=f"ghost{i}"), "")
            injected.add((Kind.HIS_ONLY.value, ""))
        if fault in ("refunded", "rejected"):
            books.refunds[f"{key}-R1"] = RefundView(f"{key}-R1", key, fee, "done", AT)
            books.wallet_refunds[f"{key}-R1"] = WalletBillEntry(
                BillEntryKind.REFUND, key, f"W{i}", fee, AT, f"{key}-R1")
        if fault == "refunded":  # in order on all three sides
            his(HisSettlement(f"R{i}", SettlementKind.REFUND, SettlementChannel.WALLET, fee, AT,
                              placer_id=f"ref{i}"), key)
        if fault is Kind.REFUND_MISMATCH:
            books.wallet_refunds[f"C{i}"] = WalletBillEntry(BillEntryKind.REFUND, key, f"W{i}",
                                                           1, AT, f"C{i}")
        if fault == "refund_unknown_to_wallet":
            books.refunds[f"{key}-R1"] = RefundView(f"{key}-R1", key, fee, "done", AT)
            books.trades[key].status, books.trades[key].refunded_fen = "refunded", fee
        if fault is Kind.REFUNDED_AT_WINDOW:
            his(HisSettlement(f"X{i}", SettlementKind.REFUND, SettlementChannel.WINDOW, fee, AT,
                              placer_id=f"ref{i}"), key)
        kind = {"paid_not_posted_known": Kind.PAID_NOT_POSTED,
                "refund_unknown_to_wallet": Kind.REFUND_MISMATCH}.get(fault, fault)
        if isinstance(kind, Kind) and kind is not Kind.HIS_ONLY:
            injected.add((kind.value, key))
    return books, injected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(FAULTS, st.integers(1, 10**7)), max_size=40))
def test_every_injected_discrepancy_is_found_once_and_nothing_is_invented(day):
    books, injected = _day([fault for fault, _ in day], [fee for _, fee in day])
    found = classify(books, {"registration": True})
    keys = [(d.kind.value, d.out_trade_no) for d in found]
    assert set(keys) == injected
    his_only = sum(1 for fault, _ in day if fault is Kind.HIS_ONLY)
    assert len(keys) == len(set(keys)) + max(his_only - 1, 0)
    assert all(isinstance(v, int) for d in found for v in (d.wallet_fen, d.adapter_fen,
                                                            d.his_fen) if v is not None)
