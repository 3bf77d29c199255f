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

from adapter.models import (
    Booking,
    InboundMessage,
    LinkState,
    OutboxMessage,
    Slot,
    Trade,
    WalletNotification,
)
from adapter.web.health import run_checks

bp = Blueprint("metrics", __name__)


class DatabaseCollector(Collector):
    """Gauges of work items by state, and the HIS link."""

    def __init__(self, session_factory: object) -> None:
        self._sessions = session_factory

    def collect(self) -> Iterator[GaugeMetricFamily]:
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
            for state in session.scalars(select(LinkState)):
                link.add_metric([state.name], 1.0 if state.up else 0.0)
            yield link


class ReadinessCollector(Collector):
    """What /readyz checks, with the details /readyz keeps from the public: per dependency,
    up, how long the check took, and what it saw (never an address)."""

    def __init__(self, runtime: object) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[GaugeMetricFamily | InfoMetricFamily]:
        results = run_checks(self._runtime)
        up = GaugeMetricFamily("adapter_dependency_up", "1 when the readiness check passes",
                               labels=["dependency"])
        seconds = GaugeMetricFamily("adapter_dependency_check_seconds",
                                    "How long the readiness check took", labels=["dependency"])
        detail = InfoMetricFamily("adapter_dependency", "What the readiness check saw",
                                  labels=["dependency"])
        for name, result in results.items():
            up.add_metric([name], 1.0 if result.up else 0.0)
            seconds.add_metric([name], result.seconds)
            detail.add_metric([name], {"detail": result.detail})
        yield from (up, seconds, detail)


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition."""
    registry = current_app.extensions["adapter_metrics"]
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")


def init_app(app: Flask) -> None:
    """Register /metrics with a registry reading this app's database."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(app.extensions["adapter"].session_factory))
    registry.register(ReadinessCollector(app.extensions["adapter"]))
    app.extensions["adapter_metrics"] = registry
    app.register_blueprint(bp)
