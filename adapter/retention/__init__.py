"""Retention: what grows without bound (messages in and out, wallet notifications, queue
events, the idempotency cache) is pruned once older than ADAPTER_RETENTION_DAYS, after an
optional archive to ADAPTER_ARCHIVE_DIR; failures are kept until acknowledged and nothing live
work still needs goes (docs/operations.md#retention).

The flow's contribution: the hourly pruning job. The command is ``hospital-adapter prune``.
"""

from adapter.flows import Flow, ScheduledJob
from adapter.retention.pruning import prune_old_messages

PRUNE_SECONDS = 3600

FLOW = Flow(
    name="retention",
    jobs=(ScheduledJob("prune_old_messages", prune_old_messages, seconds=PRUNE_SECONDS,
                       enabled=lambda services: services.config.retention_days is not None),),
)
