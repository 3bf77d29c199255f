"""The listener over real MLLP sockets, on SQLite and PostgreSQL."""

from __future__ import annotations

import socket
import threading

import pytest
from sqlalchemy import func, select

from adapter.config import load_config
from adapter.his.header import parse_ack
from adapter.his.listener import make_listener
from adapter.his.mllp import END_BLOCK, START_BLOCK, frame
from adapter.his.mllp_client import MllpClient
from adapter.his.profile import Hl7Profile
from adapter.models import InboundMessage, InboundStatus
from tests.conftest import SAMPLES
from tests.hl7_fixtures import oru_r01


@pytest.fixture
def listener(session_factory):
    config = load_config({}, mllp_frame_timeout=1.0)
    config = config.__class__(**{**config.__dict__, "mllp_listen": config.mllp_listen.__class__(
        "127.0.0.1", 0)})
    server = make_listener(config, session_factory, Hl7Profile())
    server.start()
    yield server
    server.shutdown()


@pytest.fixture
def client(listener):
    host, port = listener.server_address[:2]
    with MllpClient(host, port, connect_timeout=2, ack_timeout=10, retries=1) as c:
        yield c


def _rows(session_factory):
    with session_factory() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def test_result_is_stored_before_it_is_acknowledged(client, session_factory):
    payload = oru_r01("MSG0001").encode()
    ack = parse_ack(client.send(payload))
    assert (ack.code, ack.control_id) == ("AA", "MSG0001")
    [row] = _rows(session_factory)
    assert row.raw == payload
    assert (row.sender, row.control_id, row.message_type) == (
        "LIS^DEMO_HOSPITAL", "MSG0001", "ORU^R01")
    assert row.status == InboundStatus.RECEIVED and row.ack_code == "AA"


def test_retransmission_gets_the_same_ack_and_is_stored_once(client, session_factory):
    payload = oru_r01("MSG0002").encode()
    first = client.send(payload)
    again = client.send(payload)
    assert first == again
    assert len(_rows(session_factory)) == 1


def test_other_message_reusing_a_control_id_is_refused_and_kept(client, session_factory):
    client.send(oru_r01("MSG0003").encode())
    ack = parse_ack(client.send(oru_r01("MSG0003", name="李四").encode()))
    assert (ack.code, ack.error_code) == ("AE", "205")
    assert [r.status for r in _rows(session_factory)] == ["received", "error"]


@pytest.mark.parametrize(
    ("message", "code", "error"),
    [
        (oru_r01("X1").replace("ORU^R01^ORU_R01", "ORU^R30^ORU_R30"), "AR", "201"),
        (oru_r01("X2").replace("ORU^R01^ORU_R01", "ZZZ^Z01"), "AR", "200"),
        (oru_r01("X3", segments=("PID", "OBX")), "AE", "100"),
        (oru_r01("X4").replace("|2.5|", "|3.0|"), "AR", "203"),
    ],
)
def test_what_is_not_handled_is_answered_with_err_and_kept(
    client, session_factory, message, code, error
):
    ack = parse_ack(client.send(message.encode()))
    assert (ack.code, ack.error_code) == (code, error)
    [row] = _rows(session_factory)
    assert row.ack_code == code and row.error_code == error and row.raw == message.encode()


def test_gb18030_declared_message_is_decoded_and_answered_in_gb18030(client, session_factory):
    payload = oru_r01("GB0001", name="欧阳娜娜", charset="GB 18030-2000").encode("gb18030")
    raw_ack = client.send(payload)
    ack_text = raw_ack.decode("gb18030")
    assert "GB 18030-2000" in ack_text.split("\r")[0]
    assert parse_ack(raw_ack).code == "AA"
    assert _rows(session_factory)[0].charset == "GB 18030-2000"


def test_unreadable_messages_get_a_nak_and_the_connection_stays_usable(client, session_factory):
    bad_utf8 = oru_r01("BAD1").encode().replace("张三".encode(), b"\xff\xfe")
    nak = parse_ack(client.send(bad_utf8))
    assert (nak.code, nak.control_id, nak.error_code) == ("AE", "BAD1", "102")
    assert parse_ack(client.send(b"this is not HL7")).code == "AE"
    assert parse_ack(client.send(oru_r01("OK1").encode())).code == "AA"
    rows = _rows(session_factory)
    assert [r.status for r in rows] == ["error", "error", "received"]
    assert rows[0].raw == bad_utf8


def test_junk_outside_frames_gets_a_nak_then_messages_flow(listener, session_factory):
    host, port = listener.server_address[:2]
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n" + frame(oru_r01("J1").encode()))
        data = b""
        while data.count(END_BLOCK) < 2:
            chunk = sock.recv(65536)
            assert chunk, "connection closed"
            data += chunk
    answers = [parse_ack(part.strip(START_BLOCK)) for part in data.split(END_BLOCK)[:2]]
    assert answers[0].code == "AE"
    assert (answers[1].code, answers[1].control_id) == ("AA", "J1")


def test_a_frame_left_unfinished_gets_a_nak_instead_of_silence(listener):
    host, port = listener.server_address[:2]
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(START_BLOCK + b"MSH|^~\\&|half a message")
        data = sock.recv(65536)
    assert data.startswith(START_BLOCK)
    assert parse_ack(data.strip(START_BLOCK + END_BLOCK)).code == "AE"


def test_racing_retransmissions_are_stored_once(listener, session_factory):
    host, port = listener.server_address[:2]
    payload = oru_r01("RACE1").encode()
    acks: list[bytes] = []

    def send() -> None:
        with MllpClient(host, port, connect_timeout=2, ack_timeout=20) as c:
            acks.append(c.send(payload))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(acks) == 8 and len(set(acks)) == 1
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(InboundMessage)) == 1


def test_database_down_means_no_aa(tmp_path):
    from adapter.db import make_engine, make_session_factory

    broken = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'empty.db'}"))
    config = load_config({})
    config = config.__class__(**{**config.__dict__, "mllp_listen": config.mllp_listen.__class__(
        "127.0.0.1", 0)})
    server = make_listener(config, broken, Hl7Profile())
    server.start()
    try:
        with MllpClient(*server.server_address[:2], connect_timeout=2, ack_timeout=10) as c:
            ack = parse_ack(c.send(oru_r01("DOWN1").encode()))
            assert ack.code in ("AE", "AR") and ack.error_code == "207"
    finally:
        server.shutdown()


def test_every_shared_sample_gets_its_ack_and_is_stored(client, session_factory):
    files = sorted(SAMPLES.glob("*.hl7"))
    if not files:
        pytest.skip("shared HL7 samples not found")
    for path in files:
        payload = path.read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r")
        ack = parse_ack(client.send(payload))
        assert ack.code in ("AA", "AE", "AR"), path.name
        if ack.code != "AA":
            assert ack.error_code, f"{path.name}: {ack.code} without ERR"
    rows = _rows(session_factory)
    assert len(rows) == len(files)
    assert {r.ack_code for r in rows} >= {"AA", "AR"}
