"""/metrics for the hospital's Prometheus.

Counts are read from the database at scrape time rather than kept in process memory: the web,
listener and worker roles run as separate processes (and many instances), and the database is
the one place that sees them all.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Flask, Response, current_app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from adapter.clock import Clock
from adapter.models import (
    Booking,
    InboundMessage,
    LinkState,
    OutboxMessage,
    Slot,
    Trade,
    WalletNotification,
)

bp = Blueprint("metrics", __name__)


class DatabaseCollector(Collector):
    """Gauges of work items by state, and the HIS link."""

    def __init__(self, session_factory: object, clock: Clock) -> None:
        self._sessions = session_factory
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily | InfoMetricFamily]:
        queries = (
            ("adapter_inbound_messages", "HL7 messages received, by status",
             InboundMessage.status),
            ("adapter_outbox_messages", "Outgoing HIS/wallet work, by status",
             OutboxMessage.status),
            ("adapter_wallet_notifications", "Wallet notifications, by outcome",
             WalletNotification.outcome),
            ("adapter_bookings", "Registration bookings, by status", Booking.status),
            ("adapter_trades", "Wallet trades, by status", Trade.status),
            ("adapter_slots", "Slots in the wallet channel's pool, by status", Slot.status),
        )
        with self._sessions() as session:  # type: ignore[operator]
            for name, documentation, column in queries:
                family = GaugeMetricFamily(name, documentation, labels=[column.key])
                for value, count in session.execute(
                        select(column, func.count()).group_by(column)):
                    family.add_metric([value], count)
                yield family
            link = GaugeMetricFamily("adapter_link_up", "1 when the link last worked",
                                     labels=["link"])
            age = GaugeMetricFamily("adapter_link_checked_seconds_ago",
                                    "Seconds since the link's last recorded outcome",
                                    labels=["link"])
            info = InfoMetricFamily("adapter_link", "The link's last outcome, in words",
                                    labels=["link"])
            now = self._clock.now()
            for state in session.scalars(select(LinkState)):
                link.add_metric([state.name], 1.0 if state.up else 0.0)
                age.add_metric([state.name], max(0.0, (now - state.checked_at).total_seconds()))
                info.add_metric([state.name], {"detail": state.detail[:200]})
            yield link
            yield age
            yield info


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition."""
    registry = current_app.extensions["adapter_metrics"]
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")


def init_app(app: Flask) -> None:
    """Register /metrics with a registry reading this app's database."""
    registry = CollectorRegistry()
    runtime = app.extensions["adapter"]
    registry.register(DatabaseCollector(runtime.session_factory, runtime.clock))
    app.extensions["adapter_metrics"] = registry
    app.register_blueprint(bp)
