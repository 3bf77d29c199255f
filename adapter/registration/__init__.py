"""Registration (挂号): browse the pool, hold a slot, pay, confirm with the HIS, cancel, expire.

The flow's contributions: the ``his_book`` and ``his_cancel`` outbox kinds (never parked: a
patient's money waits on their answer), the HIS's schedule events, the paid handler of
registration trades, and the jobs that expire holds, return cancelled places and pull the pool.
"""

from adapter.flows import Flow, OutboxKind, ScheduledJob
from adapter.ports import AppointmentMissed, SlotOffered, SlotWithdrawn
from adapter.registration import texts  # noqa: F401 - registers the refusal texts
from adapter.registration.delivery import deliver_his_book, deliver_his_cancel, give_up_his_book
from adapter.registration.events import appointment_missed, slot_offered, slot_withdrawn
from adapter.registration.jobs import expire_holds, release_cancelled_slots, sync_slots
from adapter.registration.paid import on_registration_paid
from adapter.registration.payment import PURPOSE

FLOW = Flow(
    name="registration",
    outbox={
        "his_book": OutboxKind(deliver_his_book, never_parked=True, give_up=give_up_his_book,
                               link="his"),
        "his_cancel": OutboxKind(deliver_his_cancel, never_parked=True, link="his"),
    },
    events={
        SlotOffered: slot_offered,
        SlotWithdrawn: slot_withdrawn,
        AppointmentMissed: appointment_missed,
    },
    paid={
        PURPOSE: lambda services, session, trade, now: on_registration_paid(
            session, trade, mappings=services.mappings, tz=services.config.tz, now=now),
    },
    jobs=(
        ScheduledJob("expire_holds", expire_holds, seconds=15),
        ScheduledJob("release_cancelled_slots", release_cancelled_slots, seconds=10),
        ScheduledJob("sync_slots", sync_slots,
                     interval=lambda services: services.config.slot_sync_interval,
                     enabled=lambda services: services.profile.slot_sync in ("query", "both"),
                     run_at_start=True),
    ),
)
