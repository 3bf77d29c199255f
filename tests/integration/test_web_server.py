"""The web server of `hospital-adapter run`, on a real socket: a malformed request gets a 400
and the server keeps serving."""

from __future__ import annotations

import socket
import threading

import pytest
from flask import Flask

from adapter.cli import make_web_server


@pytest.fixture
def server():
    app = Flask("probe")
    app.add_url_rule("/ok", "ok", lambda: "ok")
    web = make_web_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=web.serve_forever, daemon=True)
    thread.start()
    yield web.server_port
    web.shutdown()
    thread.join(timeout=5)


def _exchange(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(raw)
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    return answer


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /ok\x01?auth_code=secret HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET /?auth_code=secret x HTTP/1.1\r\n\r\n",  # four words
])
def test_a_malformed_request_line_is_answered_400_and_the_server_keeps_serving(
        server, raw, caplog):
    caplog.set_level("INFO")
    answer = _exchange(server, raw)
    assert answer.startswith(b"HTTP/1.") and answer.split(b" ", 2)[1] in (b"400", b"505")
    ok = _exchange(server, b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200") and ok.endswith(b"ok")
    assert "auth_code" not in caplog.text and "secret" not in caplog.text
