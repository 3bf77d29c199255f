"""MllpServer and MllpClient over real sockets on 127.0.0.1."""

import itertools
import os
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from adapter.his.header import (
    HeaderError,
    build_ack,
    build_nak,
    decode_message,
    encode_message,
    parse_ack,
)
from adapter.his.mllp import START_BLOCK, DropConnection, FrameDecoder, MllpServer, frame
from adapter.his.mllp_client import AckMismatch, MllpClient, MllpConnectionError, MllpTimeout
from adapter.ports import HisUnavailable

_ids = itertools.count(1)


def message(control_id: str, body: str = "PID|1||42") -> bytes:
    return (
        f"MSH|^~\\&|HIS|HOSP|FHA|WALLET|20240301083000||ORU^R01^ORU_R01|{control_id}|P|2.5\r"
        f"{body}\r"
    ).encode()


def nak(reason: str) -> bytes:
    return build_nak(
        sending_application="FHA", sending_facility="WALLET", error_code="100",
        error_text=reason, control_id=f"N{next(_ids)}", timestamp="20240301083001",
    ).encode()


class Recorder:
    """A handler that ACKs like the listener does and remembers the control ids it saw."""

    def __init__(self):
        self.seen: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, payload: bytes) -> bytes:
        try:
            _text, header = decode_message(payload)
        except HeaderError as exc:
            if exc.header is None:
                return nak(exc.message)
            header, code, error = exc.header, "AE", exc.code
        else:
            code, error = "AA", ""
        with self.lock:
            self.seen.append(header.control_id)
        ack = build_ack(
            header, code, sending_application="FHA", sending_facility="WALLET",
            error_code=error, control_id=f"A{next(_ids)}", timestamp="20240301083001",
        )
        return encode_message(ack, header.charset)


@pytest.fixture
def recorder():
    return Recorder()


def serve(handler, **options) -> MllpServer:
    options.setdefault("on_framing_error", nak)
    server = MllpServer("127.0.0.1", 0, handler, **options)
    server.start()
    return server


@pytest.fixture
def server(recorder):
    server = serve(recorder)
    yield server
    server.shutdown()


def client_for(server: MllpServer, **options) -> MllpClient:
    host, port = server.server_address
    options.setdefault("ack_timeout", 2.0)
    options.setdefault("backoff_initial", 0.01)
    return MllpClient(host, port, **options)


def read_frames(sock: socket.socket, count: int, timeout: float = 3.0) -> list[bytes]:
    decoder = FrameDecoder()
    frames: list[bytes] = []
    sock.settimeout(timeout)
    while len(frames) < count:
        data = sock.recv(65536)
        assert data, "connection closed"
        frames += [e for e in decoder.feed(data) if isinstance(e, bytes)]
    return frames


def test_many_messages_on_one_connection(server, recorder):
    with client_for(server) as client:
        for i in range(200):
            ack = client.send_checked(message(f"M{i}"), f"M{i}")
            assert ack.code == "AA"
        assert len(server._connections) == 1
    assert recorder.seen == [f"M{i}" for i in range(200)]


def test_eight_concurrent_connections(server, recorder):
    errors = []

    def run(n):
        try:
            with client_for(server) as client:
                for i in range(50):
                    assert client.send_checked(message(f"C{n}-{i}"), f"C{n}-{i}").accepted
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(recorder.seen) == 400 and len(set(recorder.seen)) == 400


def test_one_client_shared_by_threads(server, recorder):
    client = client_for(server)
    threads = [
        threading.Thread(
            target=lambda n=n: [client.send_checked(message(f"T{n}-{i}"), f"T{n}-{i}")
                                for i in range(25)]
        )
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    assert len(recorder.seen) == 100


def test_handler_error_answers_nak_and_connection_stays(recorder):
    def handler(payload):
        if b"BOOM" in payload:
            raise RuntimeError("secret patient data must not be logged")
        return recorder(payload)

    server = serve(handler)
    try:
        with client_for(server) as client:
            response = parse_ack(client.send(message("X1", "PID|1||BOOM")))
            assert response.code == "AR" and response.error_text == "handler error"
            sock = client._sock
            assert client.send_checked(message("X2"), "X2").accepted
            assert client._sock is sock  # same connection
    finally:
        server.shutdown()


def test_junk_and_garbage_frames_get_nak_and_connection_stays(server):
    with socket.create_connection(server.server_address) as sock:
        sock.sendall(b"hello?" + frame(b"\x00\x01garbage") + frame(message("J1")))
        junk, garbage, ack = (parse_ack(f) for f in read_frames(sock, 3))
        assert (junk.code, junk.error_text) == ("AR", "junk outside frame")
        assert (garbage.code, garbage.control_id, garbage.error_code) == ("AR", "", "100")
        assert (ack.code, ack.control_id) == ("AA", "J1")


def test_undecodable_message_gets_ae_with_control_id(server):
    raw = message("E1", "PID|1||42||张^三").replace(b"|2.5\r", b"|2.5|||||CHN|ASCII\r")
    with socket.create_connection(server.server_address) as sock:
        sock.sendall(frame(raw) + frame(message("E2")))
        bad, good = (parse_ack(f) for f in read_frames(sock, 2))
    assert (bad.code, bad.control_id, bad.error_code) == ("AE", "E1", "102")
    assert (good.code, good.control_id) == ("AA", "E2")


def test_partial_frame_timeout_gets_nak(recorder):
    server = serve(recorder, frame_timeout=0.3)
    try:
        with socket.create_connection(server.server_address) as sock:
            sock.sendall(START_BLOCK + message("P1")[:20])
            started = time.monotonic()
            (timeout_nak,) = read_frames(sock, 1)
            assert 0.25 < time.monotonic() - started < 2
            assert parse_ack(timeout_nak).error_text == "frame timeout"
            sock.sendall(frame(message("P2")))
            assert parse_ack(read_frames(sock, 1)[0]).control_id == "P2"
    finally:
        server.shutdown()
    assert recorder.seen == ["P2"]


def test_idle_connection_closed_and_client_reconnects(recorder):
    server = serve(recorder, idle_timeout=0.2)
    try:
        with client_for(server) as client:
            assert client.send_checked(message("I1"), "I1").accepted
            time.sleep(0.5)  # the server closes the idle connection
            assert client.send_checked(message("I2"), "I2").accepted
    finally:
        server.shutdown()
    assert recorder.seen == ["I1", "I2"]


def test_client_resends_after_server_drops_before_answering(recorder):
    dropped = []

    def handler(payload):
        if b"|D1|" in payload and not dropped:
            dropped.append(1)
            raise DropConnection()
        return recorder(payload)

    server = serve(handler)
    try:
        with client_for(server) as client:
            assert client.send_checked(message("D1"), "D1").accepted
            assert client.send_checked(message("D2"), "D2").accepted
    finally:
        server.shutdown()
    assert recorder.seen == ["D1", "D2"]


def test_drop_mid_response_is_an_unknown_outcome(recorder):
    def handler(payload):
        raise DropConnection(partial=START_BLOCK + b"MSH|^~\\&|HIS")

    server = serve(handler)
    try:
        with client_for(server, retries=1) as client, pytest.raises(MllpConnectionError):
            client.send(message("Q1"))
    finally:
        server.shutdown()


def test_client_timeout_does_not_mix_up_the_next_ack(recorder):
    def handler(payload):
        if b"|SLOW|" in payload:
            time.sleep(0.6)
        return recorder(payload)

    server = serve(handler)
    try:
        with client_for(server, ack_timeout=0.2) as client:
            with pytest.raises(MllpTimeout) as info:
                client.send(message("SLOW"))
            assert isinstance(info.value, HisUnavailable)
            assert client.send_checked(message("FAST"), "FAST").accepted
            time.sleep(0.6)  # the late ACK for SLOW goes to the old, closed connection
            assert client.send_checked(message("AFTER"), "AFTER").accepted
    finally:
        server.shutdown()


def test_connection_refused_after_retries():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    client = MllpClient("127.0.0.1", port, retries=2, backoff_initial=0.01, connect_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(MllpConnectionError) as info:
        client.send(message("R1"))
    assert isinstance(info.value, HisUnavailable)
    assert time.monotonic() - started < 1


def test_on_connect_refusal(recorder):
    server = serve(recorder, on_connect=lambda sock, peer: False)
    try:
        with client_for(server, retries=1) as client, pytest.raises(MllpConnectionError):
            client.send(message("O1"))
    finally:
        server.shutdown()
    assert recorder.seen == []


def test_ack_mismatch(recorder):
    server = serve(lambda payload: recorder(message("OTHER")))
    try:
        with client_for(server) as client:
            with pytest.raises(AckMismatch) as info:
                client.send_checked(message("M1"), "M1")
            assert (info.value.expected, info.value.received) == ("M1", "OTHER")
            assert client._sock is None  # a fresh connection for the next message
            with pytest.raises(AckMismatch):
                client.send_checked(message("M2"), "M2")
    finally:
        server.shutdown()


def test_peer_reset_does_not_hurt_the_server(server):
    sock = socket.create_connection(server.server_address)
    sock.sendall(START_BLOCK + b"MSH|half")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST
    with client_for(server) as client:
        assert client.send_checked(message("AFTER-RST"), "AFTER-RST").accepted


def test_shutdown_closes_open_connections_promptly(recorder):
    server = serve(recorder, idle_timeout=60)
    sock = socket.create_connection(server.server_address)
    sock.sendall(frame(message("S1")))
    read_frames(sock, 1)
    started = time.monotonic()
    server.shutdown()
    assert time.monotonic() - started < 1.5
    sock.settimeout(2)
    assert sock.recv(100) == b""
    sock.close()


def test_shutdown_before_the_accept_thread_runs_is_quiet(recorder):
    # A test skipped right after its server fixture started shut the server down before the
    # accept thread had read the bound address: the thread died on a closed socket.
    server = MllpServer("127.0.0.1", 0, recorder)
    address = server.server_address
    server.shutdown()
    server.serve_forever()  # what the accept thread runs: returns at once, no OSError
    assert server.server_address == address


def test_max_connections(recorder):
    server = serve(recorder, max_connections=1)
    try:
        first = socket.create_connection(server.server_address)
        first.sendall(frame(message("F1")))
        read_frames(first, 1)
        second = socket.create_connection(server.server_address)
        second.settimeout(2)
        assert second.recv(100) == b""
        second.close()
        first.close()
    finally:
        server.shutdown()


def _samples_dir() -> Path:
    configured = os.environ.get("ADAPTER_HL7_SAMPLES")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "hl7-samples"


SAMPLES = sorted(_samples_dir().glob("*.hl7")) if _samples_dir().is_dir() else []


@pytest.mark.skipif(not SAMPLES, reason="shared HL7 samples not present")
def test_shared_samples_over_one_connection(server):
    with client_for(server) as client:
        for path in SAMPLES:
            raw = path.read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r")
            _text, header = decode_message(raw)
            ack = client.send_checked(raw, header.control_id)
            assert ack.code == "AA", path.name
