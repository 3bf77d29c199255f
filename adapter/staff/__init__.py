"""Staff of /admin/ (docs/staff.md): accounts with roles, Argon2 password hashes, server-side
sessions with idle and absolute timeouts, the lockout after repeated wrong passwords, and the
audit trail every staff action writes.

The flow's contributions: the job that purges ended staff sessions.
"""

from adapter.flows import Flow, ScheduledJob
from adapter.staff import texts  # noqa: F401 - registers the refusal texts
from adapter.staff.sessions import purge_ended_staff_sessions

FLOW = Flow(
    name="staff",
    jobs=(ScheduledJob("purge_staff_sessions", purge_ended_staff_sessions, seconds=3600),),
)
