"""/metrics: requests (summed over gunicorn workers), money, work by kind, job runs; and the
request log line in JSON."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import requests

from adapter import create_app
from adapter.config import load_config
from adapter.his.profile import Hl7Profile
from adapter.models import Refund, Trade
from adapter.outbox import enqueue
from adapter.runtime import Runtime
from adapter.worker.scheduler import recorded
from tests.fakes import FakeClock, FakeWallet
from tests.integration.test_crash_recovery import MAP

NOW = dt.datetime(2026, 12, 3, 1, 0, tzinfo=dt.UTC)


def _sample(body: str, name: str, **labels: str) -> float | None:
    for line in body.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if found == labels:
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture
def system(engine, session_factory):
    config = replace(load_config({}), secret_key="k")
    runtime = Runtime(config, engine, session_factory, MAP, Hl7Profile(), clock=FakeClock(NOW))
    runtime.wallet = FakeWallet()
    return runtime, create_app(runtime=runtime).test_client()


def test_requests_money_work_and_jobs_are_measured(system, session_factory):
    runtime, client = system
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    client.get("/no/such/page/123")
    with session_factory.begin() as session:
        for n, (status, fen) in enumerate((("paid", 2500), ("paid", 1250), ("closed", 900))):
            session.add(Trade(out_trade_no=f"M{n}", platform="alipay", purpose="registration",
                              reference=str(n), subject="挂号费", total_fen=fen, buyer_id="b",
                              status=status, expire_at=NOW, created_at=NOW))
        session.flush()
        session.add(Refund(out_request_no="M0-R1", out_trade_no="M0", refund_fen=2500,
                           reason="cancelled", status="done"))
        enqueue(session, "his_book", ("booking", 1), NOW - dt.timedelta(seconds=90))
    runtime.clock.advance(seconds=30)

    def failing() -> None:
        raise RuntimeError("boom")

    recorded(runtime, "demo_job", lambda: None)()
    with pytest.raises(RuntimeError):
        recorded(runtime, "demo_job", failing)()

    body = client.get("/metrics").text
    assert _sample(body, "adapter_http_requests_total", method="GET", route="/healthz",
                   status="200") == 3.0
    # a path nobody routes is one label, whatever its text (no id in a metric)
    assert _sample(body, "adapter_http_requests_total", method="GET", route="unmatched",
                   status="404") == 1.0
    assert "/no/such/page/123" not in body
    assert _sample(body, "adapter_http_request_duration_seconds_count", method="GET",
                   route="/healthz") == 3.0
    assert _sample(body, "adapter_trades_fen", purpose="registration", status="paid") == 3750
    assert _sample(body, "adapter_trades", purpose="registration", status="closed") == 1
    assert _sample(body, "adapter_refunds_fen", status="done") == 2500
    assert _sample(body, "adapter_outbox_messages", kind="his_book", status="pending") == 1
    assert _sample(body, "adapter_outbox_oldest_pending_seconds", kind="his_book") == 120.0
    assert _sample(body, "adapter_job_runs_total", job="demo_job") == 2.0
    assert _sample(body, "adapter_job_failures_total", job="demo_job") == 1.0
    assert _sample(body, "adapter_job_last_ok", job="demo_job") == 0.0


def test_a_request_id_is_kept_when_well_formed_and_made_otherwise(system):
    _runtime, client = system
    assert client.get("/healthz", headers={"X-Request-Id": "nginx-4f2a"}).headers[
        "X-Request-Id"] == "nginx-4f2a"
    made = client.get("/healthz", headers={"X-Request-Id": "x" * 65}).headers[
        "X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_several_gunicorn_workers_are_summed_and_log_json_lines(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADAPTER_", "PROMETHEUS"))}
    env.update({"ADAPTER_DATA_DIR": str(tmp_path), "ADAPTER_WEB_LISTEN": f"127.0.0.1:{port}",
                "ADAPTER_DATABASE_URL": f"sqlite:///{tmp_path / 'adapter.db'}",
                "ADAPTER_LOG_FORMAT": "json"})
    subprocess.run([sys.executable, "-m", "adapter.cli", "db", "upgrade"], env=env,
                   check=True, capture_output=True, timeout=60)
    log = tmp_path / "web.log"
    web = subprocess.Popen([sys.executable, "-m", "adapter.cli", "web", "--workers", "2"],
                           env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{url}/readyz", timeout=2)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        for _ in range(40):  # new connections each: both workers answer some
            assert requests.get(f"{url}/healthz?auth_code=secret-code",
                                timeout=5).status_code == 200
        body = requests.get(f"{url}/metrics", timeout=5).text
        assert _sample(body, "adapter_http_requests_total", method="GET", route="/healthz",
                       status="200") == 40.0, body
    finally:
        web.terminate()
        web.wait(timeout=30)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    served = [line for line in lines if line.get("route") == "/healthz"]
    assert len(served) == 40
    assert {"time", "level", "logger", "message", "request_id", "method", "status",
            "duration_ms"} <= set(served[0])
    assert len({line["request_id"] for line in served}) == 40
    assert "secret-code" not in log.read_text()
