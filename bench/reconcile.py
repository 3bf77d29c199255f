"""Daily reconciliation at scale: generated days of 10,000 and 100,000 trades with discrepancies
of every class injected, reconciled by the adapter's own use case, and what it found compared
with what was injected.

Each day gets a fresh database (SQLite in a temporary folder by default; ``--postgres URL``
names a bench database on 127.0.0.1 that is dropped and recreated), migrated to head. The
trades and refunds are written as rows; the wallet's bill is made by the wallet sandbox's own
bill writer (Alipay's zipped GBK CSV) and read back by the Alipay bill reader inside the timed
run; the HIS's settlement list is handed over as typed records (the HL7 transport of the list
is measured by the integration tests, not here). The timed part is ``reconcile_day``: reading
the bill, loading the day, matching, healing and recording.

    .venv/bin/python bench/reconcile.py
    .venv/bin/python bench/reconcile.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/reconcile_bench

The last line is ``reconcile: trades=100000 seconds=<s> found=<k> injected=<n> invented=<m>
ratio_100k_10k=<t100k/t10k>``; found counts the injected discrepancies the run reported,
invented the ones it reported that were not injected.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rush import recreate_database  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from adapter import migrate  # noqa: E402
from adapter.config import load_config  # noqa: E402
from adapter.db import make_engine, make_session_factory  # noqa: E402
from adapter.his.profile import Hl7Profile  # noqa: E402
from adapter.mappings import load_mappings  # noqa: E402
from adapter.models import Refund, Trade  # noqa: E402
from adapter.ports import (  # noqa: E402
    HisSettlement,
    SettlementChannel,
    SettlementKind,
    SettlementList,
)
from adapter.reconciliation.matching import Kind  # noqa: E402
from adapter.reconciliation.service import reconcile_day  # noqa: E402
from adapter.runtime import Runtime  # noqa: E402
from adapter.wallet.alipay.bill import read_trade_bill  # noqa: E402
from adapter.wallet.alipay.signing import generate_key_pair  # noqa: E402
from adapter.wallet.sandbox import SandboxState  # noqa: E402
from adapter.wallet.sandbox.bill import bill_zip  # noqa: E402
from adapter.wallet.sandbox.trades import Refund as SandboxRefund  # noqa: E402
from adapter.wallet.sandbox.trades import Trade as SandboxTrade  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TZ = load_config({}).tz
DAY = dt.date(2026, 12, 2)
PURPOSE = "bench"  # a paid handler stands for a flow that posts through the outbox
PER_KIND = 1 / 1000  # injected discrepancies of each class per trade


class BenchWallet:
    """The wallet port over a prepared bill (the zip bytes the sandbox wrote)."""

    platform = "bench"
    app_id = "APP"
    merchant_id = ""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def download_trade_bill(self, bill_date: dt.date):  # noqa: ANN201 - a WalletBill
        return read_trade_bill(bill_date, self.data)


class BenchHis:
    """The HIS port over a prepared settlement list."""

    def __init__(self, entries: list[HisSettlement]) -> None:
        self.entries = tuple(entries)

    def settlement_list(self, day: dt.date) -> SettlementList:
        return SettlementList(day, self.entries)


@dataclass
class Day:
    trades: list[dict]
    refunds: list[dict]
    wallet: BenchWallet
    his: BenchHis
    injected: set[tuple[str, str]]


def generate(n: int, rng: random.Random, state: SandboxState) -> Day:
    """A day of ``n`` trades, most of them in order on all three sides, with ``PER_KIND`` of
    each class of discrepancy injected."""
    start = dt.datetime.combine(DAY, dt.time(8), TZ)
    per_kind = max(1, int(n * PER_KIND))
    kinds = [kind for kind in Kind for _ in range(per_kind)]
    faults = kinds + [None] * (n - len(kinds))
    rng.shuffle(faults)
    trades, refunds, his, injected = [], [], [], set()
    state.trades.clear()
    for i, fault in enumerate(faults):
        out_trade_no, reference = f"B{i:09d}", f"ref{i:09d}"
        fee = rng.choice((500, 1000, 2500, 5000, 12345))
        at = start + dt.timedelta(seconds=i * 36_000 // n)
        status, in_bill, wallet_fen, posted, his_fen = "paid", True, fee, True, fee
        if fault is Kind.WALLET_ONLY:
            out_trade_no, posted = f"W{i:09d}", False  # no trade row, nothing in the HIS
        elif fault is Kind.ADAPTER_ONLY:
            in_bill = False
        elif fault is Kind.AMOUNT_MISMATCH:
            wallet_fen = fee + 1
        elif fault is Kind.PAID_NOT_POSTED:
            status, posted = "created", False  # the notification was lost
        elif fault is Kind.POSTED_NOT_PAID:
            status, in_bill = "created", False
        if fault is not Kind.WALLET_ONLY:
            trades.append({"out_trade_no": out_trade_no, "platform": "bench", "purpose": PURPOSE,
                           "reference": reference, "subject": "bench", "total_fen": fee,
                           "buyer_id": "2088", "status": status, "trade_no": f"T{i:09d}",
                           "created_at": at, "expire_at": at + dt.timedelta(minutes=15),
                           "paid_at": at if status == "paid" else None, "refunded_fen": 0,
                           "paid_after_close": False})
        if in_bill:
            state.trades[out_trade_no] = SandboxTrade(
                trade_no=f"T{i:09d}", out_trade_no=out_trade_no, total_fen=wallet_fen,
                subject="bench", buyer_id="2088", seller_id=state.seller_id, notify_url="",
                product_code="JSAPI_PAY", created_at=at, expire_at=None, status="TRADE_SUCCESS",
                paid_at=at)
        if posted:
            his.append(HisSettlement(f"S{i:09d}", SettlementKind.PAYMENT,
                                     SettlementChannel.WALLET, his_fen, at,
                                     placer_id=reference))
        if fault is Kind.HIS_ONLY:
            his.append(HisSettlement(f"G{i:09d}", SettlementKind.PAYMENT,
                                     SettlementChannel.WALLET, fee, at, placer_id=f"ghost{i}"))
        if fault is Kind.REFUND_MISMATCH:  # refunded in the merchant console, by nobody here
            state.trades[out_trade_no].refunds["C" + out_trade_no] = SandboxRefund(
                "C" + out_trade_no, 100, "console", at + dt.timedelta(minutes=5))
        if fault is Kind.REFUNDED_AT_WINDOW:
            his.append(HisSettlement(f"R{i:09d}", SettlementKind.REFUND,
                                     SettlementChannel.WINDOW, fee, at, placer_id=reference))
        if fault is None and i % 50 == 0:  # a refund in order on all three sides
            request_no = f"{out_trade_no}-R1"
            refund_at = at + dt.timedelta(minutes=10)
            refunds.append({"out_request_no": request_no, "out_trade_no": out_trade_no,
                            "refund_fen": fee, "reason": "bench", "status": "done",
                            "created_at": refund_at, "done_at": refund_at})
            trades[-1].update(status="refunded", refunded_fen=fee)
            state.trades[out_trade_no].refunds[request_no] = SandboxRefund(
                request_no, fee, "bench", refund_at)
            his.append(HisSettlement(f"T{i:09d}", SettlementKind.REFUND,
                                     SettlementChannel.WALLET, fee, refund_at,
                                     placer_id=reference))
        if fault is Kind.HIS_ONLY:
            injected.add((fault.value, f"G{i:09d}"))
        elif fault is not None:
            injected.add((fault.value, out_trade_no))
    _name, data = bill_zip(state, DAY)
    return Day(trades, refunds, BenchWallet(data), BenchHis(his), injected)


def run_day(n: int, url: str | None, folder: Path, rng: random.Random,
            state: SandboxState) -> tuple[float, int, int, int]:
    """(seconds, found, injected, invented) for a generated day of ``n`` trades."""
    if url:
        recreate_database(url)
    else:
        url = f"sqlite:///{folder / f'reconcile_{n}.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    day = generate(n, rng, state)
    with engine.begin() as connection:
        connection.execute(insert(Trade), day.trades)
        if day.refunds:
            connection.execute(insert(Refund), day.refunds)
    config = replace(load_config({}), secret_key="bench")
    runtime = Runtime(config, engine, make_session_factory(engine), load_mappings(REPO /
                      "mappings"), Hl7Profile())
    runtime.paid_handlers[PURPOSE] = lambda session, trade: None
    began = time.perf_counter()
    result = reconcile_day(runtime, day.wallet, day.his, DAY, now=runtime.clock.now())
    seconds = time.perf_counter() - began
    reported = {(d.kind.value, d.out_trade_no or d.his_receipt_no) for d in result.discrepancies}
    engine.dispose()
    found = len(reported & day.injected)
    print(f"  {n} trades: {seconds:.2f} s, {len(result.discrepancies)} discrepancies "
          f"({result.summary['healed']} healed), found {found} of {len(day.injected)}, "
          f"invented {len(reported - day.injected)}, bill problems "
          f"{result.summary['problems']['wallet']}", flush=True)
    return seconds, found, len(day.injected), len(reported - day.injected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", metavar="URL",
                        help="a bench database on 127.0.0.1, dropped and recreated")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    state = SandboxState(app_public_key=generate_key_pair()[1], seed=args.seed)
    try:
        with tempfile.TemporaryDirectory(prefix="reconcile-bench-") as folder:
            small = run_day(10_000, args.postgres, Path(folder), rng, state)
            large = run_day(100_000, args.postgres, Path(folder), rng, state)
    finally:
        state.close()
    seconds, found, injected, invented = large
    print(f"reconcile: trades=100000 seconds={seconds:.2f} found={found} injected={injected} "
          f"invented={invented} ratio_100k_10k={seconds / small[0]:.2f}")


if __name__ == "__main__":
    main()
