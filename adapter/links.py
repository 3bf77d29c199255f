"""The links to the HIS and the wallets: their last known state (for /readyz, /metrics and the
status page) and the circuit breaker the outbox runner keeps for each.

A breaker opens after a few consecutive "unavailable" outcomes on its link. While it is open the
link's items wait in the outbox without burning attempts, except one probe every few seconds;
the first success closes it, and everything that waited is due at once.

Written here rather than taken from a library (pybreaker, for one): the state that matters is the
outbox's rows, which must become due together when the link returns, and the clock must be the
runtime's so tests move time; a general-purpose breaker wraps calls and knows neither.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adapter.clock import Clock
from adapter.models import LinkState


class _Recorder(Protocol):
    """What recording a link needs of the runtime (adapter.flows.Services has it)."""

    session_factory: sessionmaker
    clock: Clock

# Consecutive unavailable outcomes that open a link's breaker: one item failing alone (a
# message the HIS chokes on) must not hold every other item back.
OPEN_AFTER = 3
# Seconds between probes while open: the first soon, then at most this often, so a link that
# came back is noticed within a few seconds.
FIRST_PROBE_SECONDS = 1.0
MAX_PROBE_SECONDS = 5.0


def wallet_link(platform: str) -> str:
    """The link name of a wallet platform ("wallet:<platform>")."""
    return f"wallet:{platform}"


def record_link(services: _Recorder, name: str, up: bool, detail: str,
                latency_ms: int | None = None) -> None:
    """Remember the last known state of a link for the status page and /readyz (with how long
    the answer took, when the caller timed it)."""
    with services.session_factory.begin() as session:
        state = session.get(LinkState, name) or LinkState(name=name)
        state.up, state.detail, state.checked_at = up, detail[:500], services.clock.now()
        if latency_ms is not None:
            state.latency_ms = latency_ms
        session.add(state)


@dataclass
class _Breaker:
    failures: int = 0  # consecutive unavailable outcomes
    open: bool = False
    probe_at: dt.datetime | None = None
    probe_every: float = FIRST_PROBE_SECONDS


class LinkBreakers:
    """One breaker per link name ("his", "wallet"), kept in this process."""

    def __init__(self) -> None:
        self._links: dict[str, _Breaker] = {}
        self._lock = threading.Lock()

    def _get(self, link: str) -> _Breaker:
        return self._links.setdefault(link, _Breaker())

    def blocked(self, now: dt.datetime) -> set[str]:
        """The links whose items must wait now (open, and no probe due)."""
        with self._lock:
            return {name for name, b in self._links.items()
                    if b.open and b.probe_at is not None and now < b.probe_at}

    def is_open(self, link: str) -> bool:
        """Whether the link is taken to be down."""
        with self._lock:
            return self._get(link).open

    def failed(self, link: str, now: dt.datetime) -> bool:
        """An unavailable outcome on the link; True when this opened the breaker."""
        with self._lock:
            breaker = self._get(link)
            breaker.failures += 1
            if breaker.open:
                breaker.probe_every = min(breaker.probe_every * 2, MAX_PROBE_SECONDS)
                breaker.probe_at = now + dt.timedelta(seconds=breaker.probe_every)
                return False
            if breaker.failures >= OPEN_AFTER:
                breaker.open, breaker.probe_every = True, FIRST_PROBE_SECONDS
                breaker.probe_at = now + dt.timedelta(seconds=breaker.probe_every)
                return True
            return False

    def succeeded(self, link: str) -> bool:
        """The link answered; True when this closed an open breaker."""
        with self._lock:
            breaker = self._get(link)
            was_open = breaker.open
            breaker.failures, breaker.open, breaker.probe_at = 0, False, None
            return was_open


def link_readiness(session: Session, now: dt.datetime, max_age: dt.timedelta,
                   names: Collection[str]) -> dict[str, bool]:
    """Up or down for each named link from its last recorded outcome: up only when it worked
    and that was at most ``max_age`` ago (a check nobody made lately says nothing)."""
    states = {s.name: s for s in session.scalars(
        select(LinkState).where(LinkState.name.in_(sorted(names))))}
    return {name: bool(states.get(name) and states[name].up
                       and now - states[name].checked_at <= max_age) for name in names}
