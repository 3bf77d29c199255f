"""Daily reconciliation (对账): the wallet's trade bill against the adapter's trades and refunds
against the HIS's settlement list; discrepancies classified, the safe ones healed, all recorded.

The flow's contribution: the job that reconciles yesterday at ADAPTER_RECONCILE_AT. The command
is ``hospital-adapter reconcile --date YYYY-MM-DD`` (docs/reconciliation.md).
"""

from adapter.flows import Flow, ScheduledJob
from adapter.reconciliation.jobs import CHECK_SECONDS, reconcile_yesterday

FLOW = Flow(
    name="reconciliation",
    jobs=(
        ScheduledJob("reconcile_yesterday", reconcile_yesterday, seconds=CHECK_SECONDS,
                     enabled=lambda services: services.config.reconcile_at is not None,
                     run_at_start=True),
    ),
)
