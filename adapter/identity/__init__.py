"""Real-name identity (实名): documents, names, the certified user and their dependants.

The flow's contributions: the ``his_patient`` outbox kind (a new patient found in or added to
the HIS) and ``push`` (a wallet message to an account, used by every flow).
"""

from adapter.flows import Flow, OutboxKind
from adapter.identity import texts  # noqa: F401 - registers the refusal texts
from adapter.identity.delivery import deliver_his_patient, deliver_push

FLOW = Flow(
    name="identity",
    outbox={
        "his_patient": OutboxKind(deliver_his_patient, link="his"),
        "push": OutboxKind(deliver_push, link="wallet"),
    },
)
