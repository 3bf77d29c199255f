"""/metrics for the hospital's Prometheus, and what each request leaves behind: its counts and
latency, a log line with its request id (JSON with ADAPTER_LOG_FORMAT=json), never personal data.

Work items, money and job runs are read from the database at scrape time rather than kept in
process memory: the web, listener and worker roles run as separate processes (and many
instances), and the database is the one place that sees them all. Request counts and latencies
are the web process's own; under gunicorn with several workers they are kept in prometheus-
client's multiprocess files (PROMETHEUS_MULTIPROC_DIR, set by `hospital-adapter web` and
deploy/gunicorn.conf.py) and summed over the workers at scrape time.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Iterator

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from adapter.clock import Clock
from adapter.db import aggregate_utc
from adapter.models import (
    Booking,
    InboundMessage,
    JobRun,
    LinkState,
    OutboxMessage,
    OutboxStatus,
    Refund,
    Slot,
    Trade,
    WalletNotification,
)

bp = Blueprint("metrics", __name__)
logger = logging.getLogger("adapter.web.requests")

# A request id the client (nginx's $request_id) may pass; anything else is replaced.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class DatabaseCollector(Collector):
    """Gauges of work items by state, money by state, the links and the scheduled jobs."""

    def __init__(self, session_factory: object, clock: Clock) -> None:
        self._sessions = session_factory
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily | InfoMetricFamily | CounterMetricFamily]:
        counts = (
            ("adapter_inbound_messages", "HL7 messages received, by type and status",
             (InboundMessage.message_type, InboundMessage.status), None),
            ("adapter_outbox_messages", "Outgoing HIS/wallet work, by kind and status",
             (OutboxMessage.kind, OutboxMessage.status), None),
            ("adapter_wallet_notifications", "Wallet notifications, by outcome",
             (WalletNotification.outcome,), None),
            ("adapter_bookings", "Registration bookings, by status", (Booking.status,), None),
            ("adapter_trades", "Wallet trades, by purpose and status",
             (Trade.purpose, Trade.status), None),
            ("adapter_trades_fen", "Sum of wallet trades in fen, by purpose and status",
             (Trade.purpose, Trade.status), Trade.total_fen),
            ("adapter_refunds", "Refunds, by status", (Refund.status,), None),
            ("adapter_refunds_fen", "Sum of refunds in fen, by status", (Refund.status,),
             Refund.refund_fen),
            ("adapter_slots", "Slots in the wallet channel's pool, by status", (Slot.status,),
             None),
        )
        now = self._clock.now()
        with self._sessions() as session:  # type: ignore[operator]
            for name, documentation, columns, summed in counts:
                family = GaugeMetricFamily(name, documentation,
                                           labels=[c.key for c in columns])
                measure = func.count() if summed is None else func.coalesce(func.sum(summed), 0)
                for row in session.execute(select(*columns, measure).group_by(*columns)):
                    family.add_metric([str(v) for v in row[:-1]], row[-1])
                yield family
            oldest = GaugeMetricFamily("adapter_outbox_oldest_pending_seconds",
                                       "Age of the oldest pending outbox item, by kind",
                                       labels=["kind"])
            for kind, created in session.execute(
                    select(OutboxMessage.kind, func.min(OutboxMessage.created_at))
                    .where(OutboxMessage.status == OutboxStatus.PENDING)
                    .group_by(OutboxMessage.kind)):
                oldest.add_metric([kind], max(0.0, (now - aggregate_utc(created)).total_seconds()))
            yield oldest
            yield from self._links(session, now)
            yield from self._jobs(session, now)

    @staticmethod
    def _links(session: object, now: object) -> Iterator[GaugeMetricFamily | InfoMetricFamily]:
        link = GaugeMetricFamily("adapter_link_up", "1 when the link last worked",
                                 labels=["link"])
        age = GaugeMetricFamily("adapter_link_checked_seconds_ago",
                                "Seconds since the link's last recorded outcome",
                                labels=["link"])
        info = InfoMetricFamily("adapter_link", "The link's last outcome, in words",
                                labels=["link"])
        for state in session.scalars(select(LinkState)):  # type: ignore[attr-defined]
            link.add_metric([state.name], 1.0 if state.up else 0.0)
            age.add_metric([state.name],
                           max(0.0, (now - state.checked_at).total_seconds()))
            info.add_metric([state.name], {"detail": state.detail[:200]})
        yield link
        yield age
        yield info

    @staticmethod
    def _jobs(session: object, now: object) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        runs = CounterMetricFamily("adapter_job_runs", "Runs of each scheduled job, over every "
                                   "worker", labels=["job"])
        failures = CounterMetricFamily("adapter_job_failures", "Runs that raised, by job",
                                       labels=["job"])
        ago = GaugeMetricFamily("adapter_job_last_run_seconds_ago",
                                "Seconds since the job last started", labels=["job"])
        took = GaugeMetricFamily("adapter_job_last_duration_seconds",
                                 "How long the job's last run took", labels=["job"])
        ok = GaugeMetricFamily("adapter_job_last_ok", "1 when the job's last run succeeded",
                               labels=["job"])
        for job in session.scalars(select(JobRun)):  # type: ignore[attr-defined]
            runs.add_metric([job.name], job.runs)
            failures.add_metric([job.name], job.failures)
            ago.add_metric([job.name],
                           max(0.0, (now - job.last_started_at).total_seconds()))
            took.add_metric([job.name], job.last_milliseconds / 1000)
            ok.add_metric([job.name], 1.0 if job.last_ok else 0.0)
        yield from (runs, failures, ago, took, ok)


class RequestMetrics:
    """Counts and latencies of this app's requests, by method, route and status."""

    def __init__(self) -> None:
        # Not in the global registry: each app (tests build many) registers them in its own.
        self.requests = Counter("adapter_http_requests", "HTTP requests, by method, route and "
                                "status", ["method", "route", "status"], registry=None)
        self.latency = Histogram("adapter_http_request_duration_seconds",
                                 "HTTP request latency, by method and route",
                                 ["method", "route"], buckets=_LATENCY_BUCKETS, registry=None)

    def before(self) -> None:
        g.adapter_started = time.perf_counter()
        offered = request.headers.get("X-Request-Id", "")
        g.request_id = offered if _REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex

    def after(self, response: Response) -> Response:
        started = g.pop("adapter_started", None)
        if started is None:  # a request refused before our hook ran
            return response
        seconds = time.perf_counter() - started
        # The route's rule, never the path: bounded labels, and no id in a metric.
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        status = str(response.status_code)
        self.requests.labels(request.method, route, status).inc()
        self.latency.labels(request.method, route).observe(seconds)
        response.headers["X-Request-Id"] = g.request_id
        # The path without its query string (sign-in codes travel there); paths carry
        # public ids only.
        logger.info("%s %s %s %.1fms", request.method, request.path, status, seconds * 1000,
                    extra={"request_id": g.request_id, "method": request.method,
                           "route": route, "status": response.status_code,
                           "duration_ms": round(seconds * 1000, 1)})
        return response


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition."""
    registry = current_app.extensions["adapter_metrics"]
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")


def init_app(app: Flask) -> None:
    """Register /metrics with a registry reading this app's database, and the request hooks."""
    registry = CollectorRegistry()
    runtime = app.extensions["adapter"]
    registry.register(DatabaseCollector(runtime.session_factory, runtime.clock))
    measured = RequestMetrics()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)  # every gunicorn worker's requests
    else:
        registry.register(measured.requests)
        registry.register(measured.latency)
    app.before_request(measured.before)
    app.after_request(measured.after)
    app.extensions["adapter_metrics"] = registry
    app.register_blueprint(bp)
