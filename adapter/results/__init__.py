"""Results (检查检验报告): ORU^R01 matched to the patient, released by policy, announced.

The flow's contributions: the ``result_push`` outbox kind (the wallet message that a result is
there, never its value), the handler of reported results, and the jobs that release held
results when their days have passed and escalate unacknowledged critical values
(docs/results.md).
"""

from adapter.flows import Flow, OutboxKind, ScheduledJob
from adapter.ports import ResultsReported
from adapter.results import texts  # noqa: F401 - registers the refusal texts
from adapter.results.announcing import KIND, deliver_result_push
from adapter.results.jobs import escalate_critical_alerts, release_held_results, results_reported

FLOW = Flow(
    name="results",
    outbox={KIND: OutboxKind(deliver_result_push, link="wallet")},
    batches={ResultsReported: results_reported},
    jobs=(
        ScheduledJob("release_held_results", release_held_results, seconds=300),
        ScheduledJob("escalate_critical_alerts", escalate_critical_alerts, seconds=30),
    ),
)
