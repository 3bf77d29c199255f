"""Real-name identity (实名): documents, names, the certified user and their dependants.

The flow's contributions: the ``his_patient`` outbox kind (a new patient found in or added to
the HIS), ``push`` (a wallet message to an account, used by every flow), and the job that
purges ended patient sessions.
"""

from adapter.flows import Flow, OutboxKind, ScheduledJob
from adapter.identity import texts  # noqa: F401 - registers the refusal texts
from adapter.identity.delivery import deliver_his_patient, deliver_push
from adapter.identity.sessions import purge_ended_sessions

FLOW = Flow(
    name="identity",
    outbox={
        "his_patient": OutboxKind(deliver_his_patient),
        "push": OutboxKind(deliver_push),
    },
    jobs=(ScheduledJob("purge_sessions", purge_ended_sessions, seconds=3600),),
)
