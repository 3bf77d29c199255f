"""What a flow package contributes, as plain data, and the services its use cases are given.

Each flow (identity, registration, payments...) declares one :class:`Flow`: its outbox kinds with
their delivery function and retry policy, its handlers of inbound HIS events, its handlers of a
paid trade by purpose, and its scheduled jobs. ``adapter.runtime`` merges the flows listed in
``FLOWS`` there; the worker only runs what was merged. Nothing central names a flow's kinds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from adapter.clock import Clock

if TYPE_CHECKING:
    from adapter.config import Config
    from adapter.his.profile import Hl7Profile
    from adapter.links import LinkBreakers
    from adapter.mappings import Mappings
    from adapter.models import Trade
    from adapter.ports import HisGateway, WalletGateway
    from adapter.protection import DataProtector


class Services(Protocol):
    """The collaborators a flow's deliveries, handlers and jobs are given (the runtime)."""

    config: Config
    session_factory: sessionmaker
    mappings: Mappings
    profile: Hl7Profile
    clock: Clock
    his: HisGateway
    protector: DataProtector
    paid_handlers: Mapping[str, Callable[[Session, Trade], None]]
    # The policy files read from mappings/ at start (registration.toml, booking_rules.toml).
    policy: Any
    booking_rules: Any
    flows: Merged  # every flow's contributions (adapter.runtime.FLOWS)
    links: LinkBreakers  # the outbox runner's breaker per link

    wallets: Mapping[str, WalletGateway]  # every configured wallet by platform

    def wallet_for(self, platform: str) -> WalletGateway:
        """The wallet of a trade or account."""
        ...


@dataclass(frozen=True)
class OutboxJob:
    """An outbox item leased to a worker: plain data, usable outside any transaction."""

    id: int
    kind: str
    subject_type: str  # what subject_id names: "booking", "patient", "refund", "wallet_account"
    subject_id: str
    payload: Mapping[str, Any]
    attempts: int


# A delivery sends one item to the HIS or the wallet and records the answer; it raises
# HisUnavailable / WalletUnavailable when the outcome is unknown (the runner retries).
Delivery = Callable[[Services, OutboxJob, dt.datetime], None]
# Called in the runner's transaction after a failed attempt of a never-parked kind: it may give
# the item up for good (compensating in the same transaction) and then returns True.
GiveUp = Callable[[Services, Session, OutboxJob, dt.datetime], bool]


@dataclass(frozen=True)
class OutboxKind:
    """How one kind of outbox item is delivered and retried."""

    deliver: Delivery
    # Never parked: money on its way back, or an answer a patient's money waits for. Such an
    # item keeps trying (at most every ``max_backoff_seconds``) unless ``give_up`` says so.
    never_parked: bool = False
    give_up: GiveUp | None = None
    max_backoff_seconds: int = 600
    # The link it travels ("his", "wallet"): while that link is down (adapter.links) the item
    # waits without burning attempts, and it is due at once when the link returns.
    link: str = ""


# A handler of a neutral HIS event (adapter.ports), run in the inbound runner's transaction;
# raises adapter.ports.InboundRefused to refuse the message for good.
EventHandler = Callable[[Services, Session, Any, dt.datetime], None]
# A handler of a run of events of one type that came one after another (in arrival order, in
# one transaction): what each would read and write alone, once for all of them. Declared in
# ``Flow.batches`` instead of ``Flow.events`` for that type.
BatchEventHandler = Callable[[Services, Session, list[Any], dt.datetime], None]
# Run in the transaction that found a trade paid (notification, query on close or expiry).
PaidHandler = Callable[[Services, Session, "Trade", dt.datetime], None]


@dataclass(frozen=True)
class ScheduledJob:
    """A job the worker runs every ``seconds`` (or ``interval(services)`` seconds)."""

    name: str
    run: Callable[[Services], object]
    seconds: float = 0
    interval: Callable[[Services], float] | None = None
    enabled: Callable[[Services], bool] = lambda services: True
    run_at_start: bool = False

    def every(self, services: Services) -> float:
        """Seconds between runs."""
        return self.interval(services) if self.interval is not None else self.seconds


@dataclass(frozen=True)
class Flow:
    """Everything one flow package contributes."""

    name: str
    outbox: Mapping[str, OutboxKind] = field(default_factory=dict)
    events: Mapping[type, EventHandler] = field(default_factory=dict)
    batches: Mapping[type, BatchEventHandler] = field(default_factory=dict)
    paid: Mapping[str, PaidHandler] = field(default_factory=dict)
    jobs: tuple[ScheduledJob, ...] = ()


@dataclass(frozen=True)
class Merged:
    """The flows of this release, merged; a name contributed twice is an error at start."""

    outbox: dict[str, OutboxKind]
    events: dict[type, list[EventHandler]]
    paid: dict[str, PaidHandler]
    jobs: tuple[ScheduledJob, ...]
    batches: dict[type, BatchEventHandler] = field(default_factory=dict)


def merge(flows: tuple[Flow, ...]) -> Merged:
    """Merge the flows' contributions; two flows claiming one outbox kind or purpose fail."""
    outbox: dict[str, OutboxKind] = {}
    events: dict[type, list[EventHandler]] = {}
    batches: dict[type, BatchEventHandler] = {}
    paid: dict[str, PaidHandler] = {}
    jobs: list[ScheduledJob] = []
    for flow in flows:
        for kind, spec in flow.outbox.items():
            if kind in outbox:
                raise ValueError(f"outbox kind {kind} declared twice (flow {flow.name})")
            outbox[kind] = spec
        for purpose, handler in flow.paid.items():
            if purpose in paid:
                raise ValueError(f"paid purpose {purpose} declared twice (flow {flow.name})")
            paid[purpose] = handler
        for event_type, handler in flow.events.items():
            events.setdefault(event_type, []).append(handler)
        for event_type, batch in flow.batches.items():
            if event_type in batches:
                raise ValueError(f"{event_type.__name__} handled in batches twice "
                                 f"(flow {flow.name})")
            batches[event_type] = batch
        jobs.extend(flow.jobs)
    for event_type in batches:
        if event_type in events:  # one handler for all, so it alone decides the order
            raise ValueError(f"{event_type.__name__} has a batch handler and others")
    names = [job.name for job in jobs]
    if len(names) != len(set(names)):
        raise ValueError("two scheduled jobs share a name")
    return Merged(outbox, events, paid, tuple(jobs), batches)
