"""Matching a day's three books: the wallet's bill, the adapter's trades and refunds, the HIS's
settlement list. Pure: plain data in, discrepancies out, every join a dict lookup (linear in
the number of lines), money in integer fen.

A payment is keyed by its out_trade_no (the HIS's lines that know only what they settle, a
placer id, are resolved to it by the caller); a refund by its out_request_no between wallet and
adapter, and by its trade's total of the day between wallet and HIS, since the HIS does not know
our refund request numbers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from adapter.models import TradeStatus
from adapter.ports import HisSettlement, SettlementChannel, SettlementKind, WalletBillEntry


class Kind(StrEnum):
    """The classes of discrepancy (DESIGN, Reconciliation)."""

    WALLET_ONLY = "wallet_only"  # money in the wallet for a trade the adapter never made
    ADAPTER_ONLY = "adapter_only"  # the adapter holds a trade paid that the wallet has not
    HIS_ONLY = "his_only"  # the HIS posted a wallet payment neither wallet nor adapter knows
    AMOUNT_MISMATCH = "amount_mismatch"  # the same trade with different amounts
    PAID_NOT_POSTED = "paid_not_posted"  # money taken, nothing posted in the HIS (长款)
    POSTED_NOT_PAID = "posted_not_paid"  # posted in the HIS, no money taken (短款)
    REFUND_MISMATCH = "refund_mismatch"  # a refund on one side only, or of another amount
    REFUNDED_AT_WINDOW = "refunded_at_window"  # a wallet payment paid back in cash


class Action(StrEnum):
    """What to do about a discrepancy (texts in adapter/reconciliation/texts.py)."""

    APPLY_PAYMENT = "apply_payment"  # healed: the payment applied, as its notification would
    REFUND_UNPOSTABLE = "refund_unpostable"  # healed: paid for nothing that can be posted
    REFUND_HIS_REFUND = "refund_his_refund"  # healed: the HIS's refund carried out
    FIND_OWNER = "find_owner"
    QUERY_WALLET = "query_wallet"
    CHECK_HIS_POSTING = "check_his_posting"
    CHECK_AMOUNTS = "check_amounts"
    CHECK_POSTING = "check_posting"
    REVERSE_HIS_POSTING = "reverse_his_posting"
    REFUND_OUTSIDE = "refund_outside"
    QUERY_REFUND = "query_refund"
    POST_HIS_REFUND = "post_his_refund"
    WAIT_REFUND = "wait_refund"
    SETTLE_WINDOW_REFUND = "settle_window_refund"
    RECOVER_DOUBLE_REFUND = "recover_double_refund"


UNHEARD = (TradeStatus.CREATED, TradeStatus.CLOSED, TradeStatus.UNSENT)  # never paid for us
PAID = (TradeStatus.PAID, TradeStatus.REFUNDED)


# Plain slotted dataclasses: 100,000 of them are made per big day (frozen ones cost twice).
@dataclass(slots=True)
class TradeView:
    """What matching reads of a Trade row."""

    out_trade_no: str
    purpose: str
    reference: str
    status: str
    total_fen: int
    refunded_fen: int
    paid_at: dt.datetime | None


@dataclass(slots=True)
class RefundView:
    """What matching reads of a Refund row."""

    out_request_no: str
    out_trade_no: str
    refund_fen: int
    status: str  # requested | done
    done_at: dt.datetime | None


@dataclass
class Discrepancy:
    """One thing that does not add up, and what to do (``healed`` set by the healing)."""

    kind: Kind
    action: Action
    out_trade_no: str = ""
    out_request_no: str = ""
    his_receipt_no: str = ""
    purpose: str = ""
    wallet_fen: int | None = None
    adapter_fen: int | None = None
    his_fen: int | None = None
    heal_fen: int = 0  # what healing moves (a refund's amount)
    healed: bool = False
    heal: str = ""


@dataclass
class Books:
    """A day's three books, joined by key. Built by the caller from streamed lines."""

    start: dt.datetime  # the day in the hospital's zone: [start, end)
    end: dt.datetime
    wallet_payments: dict[str, WalletBillEntry]  # out_trade_no ->
    wallet_refunds: dict[str, WalletBillEntry]  # out_request_no ->
    trades: dict[str, TradeView]  # every trade any book names, plus ours paid that day
    refunds: dict[str, RefundView]  # every refund any book names, plus ours done that day
    his: list[HisSettlement]  # wallet channel payments and all refunds, key resolved
    his_keys: list[str]  # out_trade_no of each his line ("" when it names nothing we know)

    def in_day(self, at: dt.datetime | None) -> bool:
        """Whether a moment falls on the reconciled day."""
        return at is not None and self.start <= at < self.end


def classify(books: Books, postable: Mapping[str, bool]) -> list[Discrepancy]:
    """Every discrepancy of the day. ``postable`` says, per purpose, whether a paid trade of it
    can still be handed to its purpose (a paid handler exists)."""
    found: list[Discrepancy] = []
    his_pay: dict[str, HisSettlement] = {}
    his_refund_fen: dict[str, int] = {}
    window_refunds: dict[str, HisSettlement] = {}
    for entry, key in zip(books.his, books.his_keys, strict=True):
        if entry.kind is SettlementKind.PAYMENT:
            if not key or key not in books.trades:
                found.append(Discrepancy(Kind.HIS_ONLY, Action.CHECK_HIS_POSTING,
                                         out_trade_no=entry.out_trade_no,
                                         his_receipt_no=entry.receipt_no,
                                         his_fen=entry.amount_fen))
            else:
                his_pay[key] = entry
        elif entry.channel is SettlementChannel.WINDOW:
            if key in books.trades:  # else a window refund of a window payment: not ours
                window_refunds[key] = entry
        elif key in books.trades:
            his_refund_fen[key] = his_refund_fen.get(key, 0) + entry.amount_fen
        else:
            found.append(Discrepancy(Kind.HIS_ONLY, Action.CHECK_HIS_POSTING,
                                     out_trade_no=entry.out_trade_no,
                                     his_receipt_no=entry.receipt_no, his_fen=entry.amount_fen))
    _payments(books, his_pay, postable, found)
    _refunds(books, his_pay, his_refund_fen, window_refunds, found)
    return found


def _payments(books: Books, his_pay: dict[str, HisSettlement], postable: Mapping[str, bool],
              found: list[Discrepancy]) -> None:
    wallet_payments, trades = books.wallet_payments, books.trades
    for key, wallet in wallet_payments.items():
        trade, his = trades.get(key), his_pay.get(key)
        if trade is None:
            found.append(_payment(Kind.WALLET_ONLY, Action.FIND_OWNER, key, wallet, None, his))
        elif wallet.amount_fen != trade.total_fen or (
                his is not None and his.amount_fen != trade.total_fen):
            found.append(_payment(Kind.AMOUNT_MISMATCH, Action.CHECK_AMOUNTS, key, wallet, trade,
                                  his))
        elif trade.status in UNHEARD:
            # The money was taken and we never heard (a lost notification): applying it is
            # what the notification would have done; a purpose that cannot take it refunds.
            action = (Action.APPLY_PAYMENT if postable.get(trade.purpose)
                      else Action.REFUND_UNPOSTABLE)
            item = _payment(Kind.PAID_NOT_POSTED, action, key, wallet, trade, his)
            item.heal_fen = trade.total_fen
            found.append(item)
        elif his is None and trade.refunded_fen < trade.total_fen:
            # Paid and known to us, but the HIS has no posting: its delivery is still on its
            # way (the outbox posts it or refunds it by itself), or the HIS lost it.
            found.append(_payment(Kind.PAID_NOT_POSTED, Action.CHECK_POSTING, key, wallet,
                                  trade, his))
    for key, trade in trades.items():
        if key in wallet_payments or trade.status not in PAID or not books.in_day(trade.paid_at):
            continue
        his = his_pay.get(key)
        if his is not None and his.amount_fen != trade.total_fen:
            found.append(_payment(Kind.AMOUNT_MISMATCH, Action.CHECK_AMOUNTS, key, None, trade,
                                  his))
        else:
            found.append(_payment(Kind.ADAPTER_ONLY, Action.QUERY_WALLET, key, None, trade, his))
    for key, his in his_pay.items():
        trade = trades[key]
        if key not in wallet_payments and trade.status in UNHEARD:
            found.append(_payment(Kind.POSTED_NOT_PAID, Action.REVERSE_HIS_POSTING, key, None,
                                  trade, his))


def _payment(kind: Kind, action: Action, key: str, wallet: WalletBillEntry | None,
             trade: TradeView | None, his: HisSettlement | None) -> Discrepancy:
    return Discrepancy(kind, action, out_trade_no=key, purpose=trade.purpose if trade else "",
                       wallet_fen=wallet.amount_fen if wallet else None,
                       adapter_fen=trade.total_fen if trade else None,
                       his_fen=his.amount_fen if his else None,
                       his_receipt_no=his.receipt_no if his else "")


def _refunds(books: Books, his_pay: dict[str, HisSettlement], his_refund_fen: dict[str, int],
             window_refunds: dict[str, HisSettlement], found: list[Discrepancy]) -> None:
    wallet_fen_by_trade: dict[str, int] = {}
    for entry in books.wallet_refunds.values():
        wallet_fen_by_trade[entry.out_trade_no] = (wallet_fen_by_trade.get(entry.out_trade_no, 0)
                                                   + entry.amount_fen)
    pending_by_trade: dict[str, int] = {}
    for refund in books.refunds.values():
        if refund.status != "done":
            pending_by_trade[refund.out_trade_no] = (pending_by_trade.get(refund.out_trade_no, 0)
                                                     + refund.refund_fen)
    done_today = (key for key, r in books.refunds.items()
                  if r.status == "done" and books.in_day(r.done_at))
    reported: set[str] = set()  # trades whose refund is already one discrepancy
    for key in _union(books.wallet_refunds, done_today):
        wallet, ours = books.wallet_refunds.get(key), books.refunds.get(key)
        trade_no = wallet.out_trade_no if wallet else ours.out_trade_no
        trade = books.trades.get(trade_no)
        item = Discrepancy(Kind.REFUND_MISMATCH, Action.REFUND_OUTSIDE, out_trade_no=trade_no,
                           out_request_no=key, purpose=trade.purpose if trade else "",
                           wallet_fen=wallet.amount_fen if wallet else None,
                           adapter_fen=ours.refund_fen if ours else None)
        if ours is None:
            pass  # refunded at the platform, never asked by us
        elif wallet is None:
            item.action = Action.QUERY_REFUND  # done in our books, absent from the bill
        elif wallet.amount_fen != ours.refund_fen:
            item.action = Action.CHECK_AMOUNTS
        else:
            continue
        found.append(item)
        reported.add(trade_no)
    for key in _union(his_refund_fen, wallet_fen_by_trade):
        his_fen, wallet_fen = his_refund_fen.get(key, 0), wallet_fen_by_trade.get(key, 0)
        trade = books.trades.get(key)
        if his_fen == wallet_fen or trade is None or key in reported:
            continue  # agreed, not a trade of ours, or said above
        wallet_paid = books.wallet_payments[key].amount_fen if key in books.wallet_payments else 0
        his_paid = his_pay[key].amount_fen if key in his_pay else 0
        if wallet_paid - wallet_fen == his_paid - his_fen or wallet_paid != his_paid:
            # Net of the day agreed (paid and refunded in the wallet, never posted in the HIS:
            # a booking the HIS refused), or the payment itself disagrees (said above).
            continue
        item = Discrepancy(Kind.REFUND_MISMATCH, Action.POST_HIS_REFUND, out_trade_no=key,
                           purpose=trade.purpose, wallet_fen=wallet_fen, his_fen=his_fen)
        if his_fen > wallet_fen:
            owed = his_fen - wallet_fen
            room = trade.total_fen - trade.refunded_fen - pending_by_trade.get(key, 0)
            if pending_by_trade.get(key):
                item.action = Action.WAIT_REFUND  # ours is on its way: the outbox retries it
            elif trade.status in PAID and 0 < owed <= room:
                # The HIS gave money back on the wallet channel (a cancelled test) and nobody
                # told us: carry out its refund, bounded by what is left of the payment.
                item.action, item.heal_fen = Action.REFUND_HIS_REFUND, owed
            else:
                item.action = Action.CHECK_AMOUNTS
        found.append(item)
    for key, entry in window_refunds.items():
        trade = books.trades.get(key)
        if trade is None or trade.status not in PAID:
            continue  # a window refund of a window payment: not the wallet's business
        double = trade.refunded_fen + pending_by_trade.get(key, 0) > 0
        found.append(Discrepancy(
            Kind.REFUNDED_AT_WINDOW,
            Action.RECOVER_DOUBLE_REFUND if double else Action.SETTLE_WINDOW_REFUND,
            out_trade_no=key, his_receipt_no=entry.receipt_no, purpose=trade.purpose,
            adapter_fen=trade.total_fen, wallet_fen=wallet_fen_by_trade.get(key),
            his_fen=entry.amount_fen))


def _union(*keys: Iterable[str]) -> list[str]:
    """The keys of several books once each, in first-seen order (a dict keeps the order)."""
    seen: dict[str, None] = {}
    for part in keys:
        for key in part:
            seen.setdefault(key, None)
    return list(seen)
