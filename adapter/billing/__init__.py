"""Fee payment (门诊缴费): charges from the HIS, paid in the wallet, posted in the HIS.

The flow's contributions: the ``his_settle`` outbox kind (never parked: a patient's money
waits on it; given up into a refund after ADAPTER_BILL_COMMIT_GIVE_UP_MINUTES), ``his_release``,
the HIS's charge and refund events (DFT^P03), the paid handler of ``bill`` trades, and the job
that releases locks past their deadline. docs/billing.md tells the whole story.
"""

from adapter.billing import texts  # noqa: F401 - registers the refusal texts
from adapter.billing.charges import charges_reported
from adapter.billing.his_refunds import refunds_requested
from adapter.billing.jobs import release_expired_locks
from adapter.billing.paying import PURPOSE
from adapter.billing.posting import (
    RELEASE,
    SETTLE,
    deliver_his_release,
    deliver_his_settle,
    give_up_his_settle,
    on_bill_paid,
)
from adapter.flows import Flow, OutboxKind, ScheduledJob
from adapter.ports_billing import ChargesReported, RefundsRequested

FLOW = Flow(
    name="billing",
    outbox={
        SETTLE: OutboxKind(deliver_his_settle, never_parked=True, give_up=give_up_his_settle,
                           link="his"),
        RELEASE: OutboxKind(deliver_his_release, link="his"),
    },
    events={ChargesReported: charges_reported, RefundsRequested: refunds_requested},
    paid={PURPOSE: lambda services, session, trade, now: on_bill_paid(session, trade, now)},
    jobs=(ScheduledJob("release_bill_locks", release_expired_locks, seconds=15),),
)
