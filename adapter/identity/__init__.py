"""Real-name identity (实名): documents, names, the certified user and their dependants.

The flow's contributions: the ``his_patient`` outbox kind (a new patient found in or added to
the HIS, and a dependant link verified against the HIS's record), ``push`` (a wallet message to
an account, used by every flow), the job that asks the HIS again about patients it never
reached (docs/identity.md), and the job that purges ended patient sessions.
"""

from adapter.flows import Flow, OutboxKind, ScheduledJob
from adapter.identity import texts  # noqa: F401 - registers the refusal texts
from adapter.identity.delivery import deliver_his_patient, deliver_push, retry_unreached_patients
from adapter.identity.sessions import purge_ended_sessions

FLOW = Flow(
    name="identity",
    outbox={
        "his_patient": OutboxKind(deliver_his_patient, link="his"),
        "push": OutboxKind(deliver_push, link="wallet"),
    },
    jobs=(
        ScheduledJob("retry_unreached_patients", retry_unreached_patients, seconds=3600),
        ScheduledJob("purge_sessions", purge_ended_sessions, seconds=3600),
    ),
)
