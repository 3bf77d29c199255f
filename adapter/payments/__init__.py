"""Wallet payments: trades for any purpose, payment notices, refunds, closing unpaid trades.

The flow's contributions: the ``refund`` outbox kind (never parked: money on its way back) and
``close_trade``. Each purpose's flow (registration, billing...) declares its own paid handler.
"""

from adapter.flows import Flow, OutboxKind
from adapter.payments.refunds import deliver_refund
from adapter.payments.trades import deliver_close_trade

FLOW = Flow(
    name="payments",
    outbox={
        "refund": OutboxKind(deliver_refund, never_parked=True, link="wallet"),
        "close_trade": OutboxKind(deliver_close_trade, link="wallet"),
    },
)
