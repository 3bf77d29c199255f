"""/healthz, /readyz from recorded link outcomes, and /metrics."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from adapter import create_app
from adapter.config import Address, load_config
from adapter.his.mllp import MllpServer
from adapter.his.profile import Hl7Profile
from adapter.his.simulator import HisSimulator
from adapter.mappings import load_mappings
from adapter.runtime import Runtime
from adapter.worker.links import check_links
from tests.conftest import MAPPINGS
from tests.fakes import FakeWallet

MAP = load_mappings(MAPPINGS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def make_system(engine, session_factory):
    def make(his_port: int):
        config = replace(load_config({}), his_mllp=Address("127.0.0.1", his_port),
                         his_connect_timeout=1, his_ack_timeout=2)
        runtime = Runtime(config, engine, session_factory, MAP, Hl7Profile())
        runtime.wallet = FakeWallet()
        return runtime, create_app(runtime=runtime).test_client()

    return make


@pytest.fixture
def his():
    simulator = HisSimulator(MAP, tz=load_config({}).tz, seed=1)
    server = MllpServer("127.0.0.1", 0, simulator.handle, on_connect=simulator.on_connect)
    server.start()
    yield simulator, server.server_address[1]
    server.shutdown()


def test_healthz(make_system):
    _runtime, client = make_system(_free_port())
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_is_not_ready_before_any_link_was_checked(make_system):
    _runtime, client = make_system(_free_port())
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"] == {"database": {"up": True}, "his": {"up": False},
                                       "wallet:fake": {"up": False}}


def test_readyz_ready_when_the_his_application_and_the_wallet_answer(make_system, his):
    _simulator, port = his
    runtime, client = make_system(port)
    check_links(runtime)
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json["status"] == "ready"


def test_a_his_that_accepts_connections_and_closes_them_is_down(make_system, his):
    simulator, port = his
    simulator.refuse_connections = True
    runtime, client = make_system(port)
    check_links(runtime)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json["checks"]["his"] == {"up": False}
    assert response.json["checks"]["wallet:fake"] == {"up": True}


def test_the_wallet_is_its_own_check(make_system, his):
    _simulator, port = his
    runtime, client = make_system(port)
    runtime.wallet.down = True
    check_links(runtime)
    checks = client.get("/readyz").json["checks"]
    assert checks["his"] == {"up": True} and checks["wallet:fake"] == {"up": False}


def test_readyz_tells_the_public_no_address_and_no_detail(make_system):
    port = _free_port()
    runtime, client = make_system(port)
    check_links(runtime)  # the HIS is down: its reason is recorded
    body = client.get("/readyz").get_data(as_text=True)
    assert str(port) not in body and "127.0.0.1" not in body
    assert "HisUnavailable" not in body and "detail" not in body
    metrics = client.get("/metrics").text
    assert 'adapter_link_up{link="his"} 0.0' in metrics
    assert 'ConnectionError after ' in metrics  # the reason, for admins
    assert 'adapter_link_checked_seconds_ago{link="his"}' in metrics


def test_metrics_count_work_by_state(make_system, session_factory):
    from adapter.his.listener import InboundHandler
    from tests.hl7_fixtures import oru_r01

    InboundHandler(session_factory, Hl7Profile())(oru_r01("M1").encode())
    _runtime, client = make_system(_free_port())
    body = client.get("/metrics").text
    assert 'adapter_inbound_messages{message_type="ORU^R01",status="received"} 1.0' in body
    assert "# TYPE adapter_bookings gauge" in body
