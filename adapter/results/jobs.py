"""The results flow's event handler and scheduled jobs (each one transaction)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from adapter.flows import Services
from adapter.ports import ResultsReported
from adapter.results.alerts import escalate_alerts
from adapter.results.applying import apply_reported
from adapter.results.policy import policy_of
from adapter.results.release import release_due


def results_reported(services: Services, session: Session, events: list[ResultsReported],
                     now: dt.datetime) -> None:
    """ORU^R01 read by the inbound runner, one after another: applied together in the
    runner's transaction (adapter.results.applying.apply_reported)."""
    apply_reported(session, events, policy_of(services), services.protector, now)


def release_held_results(services: Services) -> int:
    """Release the held results whose days have passed."""
    with services.session_factory.begin() as session:
        return len(release_due(session, services.clock.now()))


def escalate_critical_alerts(services: Services) -> int:
    """Escalate critical alerts nobody acknowledged in time."""
    with services.session_factory.begin() as session:
        return len(escalate_alerts(session, policy_of(services).escalate_after,
                                   services.clock.now()))
