"""The worker role: generic runners only (outbox, inbound, scheduler), safe to run as many
instances as wanted. What they run is what the flows declared (adapter/flows.py), merged by
adapter/runtime.py.
"""

from adapter.worker.scheduler import make_scheduler

__all__ = ["make_scheduler"]
