"""/healthz and /readyz."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from adapter import create_app
from adapter.config import Address, load_config
from adapter.his.profile import Hl7Profile
from adapter.mappings import load_mappings
from adapter.runtime import Runtime
from tests.conftest import MAPPINGS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def make_client(engine, session_factory):
    def make(his_port: int):
        config = replace(load_config({}), his_mllp=Address("127.0.0.1", his_port))
        runtime = Runtime(config, engine, session_factory, load_mappings(MAPPINGS), Hl7Profile())
        return create_app(runtime=runtime).test_client()

    return make


def test_healthz(make_client):
    response = make_client(_free_port()).get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_names_the_his_link_when_it_is_down(make_client):
    response = make_client(_free_port()).get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["database"]["up"] is True
    assert response.json["checks"]["his"]["up"] is False


def test_readyz_tells_the_public_up_or_down_only(make_client):
    """No address, port or error text of a dependency in the public answer."""
    port = _free_port()
    response = make_client(port).get("/readyz")
    assert response.json == {"status": "not ready",
                             "checks": {"database": {"up": True}, "his": {"up": False}}}
    assert str(port) not in response.text and "127.0.0.1" not in response.text


def test_the_details_of_readiness_go_to_the_metrics(make_client):
    port = _free_port()
    body = make_client(port).get("/metrics").text
    assert 'adapter_dependency_up{dependency="database"} 1.0' in body
    assert 'adapter_dependency_up{dependency="his"} 0.0' in body
    assert 'adapter_dependency_info{dependency="his",detail="Connection refused"} 1.0' in body
    assert 'adapter_dependency_check_seconds{dependency="database"}' in body
    assert str(port) not in body


def test_readyz_ready_when_database_and_his_are_up(make_client):
    with socket.socket() as his:
        his.bind(("127.0.0.1", 0))
        his.listen()
        response = make_client(his.getsockname()[1]).get("/readyz")
    assert response.status_code == 200 and response.json["status"] == "ready"


def test_metrics_count_work_by_state(make_client, session_factory):
    from adapter.his.listener import InboundHandler
    from tests.hl7_fixtures import oru_r01

    InboundHandler(session_factory, Hl7Profile())(oru_r01("M1").encode())
    body = make_client(_free_port()).get("/metrics").text
    assert 'adapter_inbound_messages{status="received"} 1.0' in body
    assert "# TYPE adapter_bookings gauge" in body
