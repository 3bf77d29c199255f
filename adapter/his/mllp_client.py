"""MLLP client: one persistent connection to the HIS, reconnect with backoff, ACK timeout.

python-hl7's MLLP client is asyncio-only and has no reconnect or ACK timeout, hence this one.
Framing (adapter.his.mllp) follows HL7 v2.5 Appendix C, MLLP release 1.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import socket
import threading
import time
from types import TracebackType

from adapter.his.header import AckResult, HeaderError, parse_ack
from adapter.his.mllp import (
    MAX_FRAME,
    RECV_SIZE,
    FrameDecoder,
    FramingError,
    close_quietly,
    frame,
)
from adapter.ports import HisUnavailable

logger = logging.getLogger(__name__)


class MllpConnectionError(HisUnavailable):
    """The peer could not be reached, or the connection broke with the outcome unknown."""


class MllpTimeout(HisUnavailable):
    """No complete response within the ACK timeout; the outcome is unknown."""


class AckMismatch(HisUnavailable):
    """The response does not acknowledge the message sent (MSA-2 != MSH-10, or no MSA).

    A HisUnavailable because the outcome of the message is unknown; resending the same
    MSH-10 is safe.
    """

    def __init__(self, expected: str, received: str) -> None:
        super().__init__(f"ACK for control id {received!r}, expected {expected!r}")
        self.expected = expected
        self.received = received


class MllpClient:
    """Persistent MLLP client: one connection reused across sends, one message in flight.

    Thread-safe; concurrent callers take turns. Resending after a broken connection reuses the
    same bytes, i.e. the same MSH-10: an HL7 original-mode retransmission receivers dedupe.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout: float = 5.0,
        ack_timeout: float = 30.0,
        retries: int = 3,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        max_frame: int = MAX_FRAME,
    ) -> None:
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.ack_timeout = ack_timeout
        self.retries = retries
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_frame = max_frame
        self._sock: socket.socket | None = None
        self._lock = threading.RLock()

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; the next send opens a new one."""
        with self._lock:
            if self._sock is not None:
                close_quietly(self._sock)
                self._sock = None

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_initial * 2**attempt)
        return delay / 2 + random.uniform(0, delay / 2)  # "equal jitter"

    def _connect(self) -> socket.socket:
        last: OSError | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self._backoff(attempt - 1))
            try:
                sock = socket.create_connection((self.host, self.port), self.connect_timeout)
            except OSError as exc:
                last = exc
                logger.warning("MLLP connect to %s:%s failed (attempt %d): %s",
                               self.host, self.port, attempt + 1, type(exc).__name__)
                continue
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            logger.info("MLLP connected to %s:%s", self.host, self.port)
            return sock
        raise MllpConnectionError(
            f"cannot connect to {self.host}:{self.port} after {self.retries + 1} attempts"
        ) from last

    def _usable(self, sock: socket.socket) -> bool:
        """Drain bytes that arrived unasked (a stale response) and tell whether the peer closed."""
        sock.setblocking(False)
        try:
            while True:
                data = sock.recv(RECV_SIZE)
                if not data:
                    return False
                logger.warning("MLLP discarding %d unsolicited bytes from %s:%s",
                               len(data), self.host, self.port)
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            with contextlib.suppress(OSError):
                sock.setblocking(True)

    def send(self, payload: bytes) -> bytes:
        """Send one message and return the response payload.

        Raises MllpConnectionError (cannot connect, or the connection broke after part of the
        response) and MllpTimeout (no complete response within ack_timeout).
        """
        data = frame(payload)
        with self._lock:
            resends = self.retries
            while True:
                if self._sock is not None and not self._usable(self._sock):
                    self.close()  # closed by the peer while idle
                if self._sock is None:
                    self._sock = self._connect()
                sock = self._sock
                try:
                    sock.settimeout(self.ack_timeout)
                    sock.sendall(data)
                    return self._read_response(sock)
                except _Broken as broken:
                    self.close()
                    if broken.received or resends <= 0:
                        raise MllpConnectionError(
                            f"connection to {self.host}:{self.port} lost"
                            + (" after part of the response" if broken.received else "")
                        ) from None
                    resends -= 1
                    logger.info("MLLP connection to %s:%s broke before a response; resending "
                                "%d bytes", self.host, self.port, len(payload))
                except OSError as exc:  # sendall failed
                    self.close()
                    if resends <= 0:
                        raise MllpConnectionError(
                            f"connection to {self.host}:{self.port} lost"
                        ) from exc
                    resends -= 1

    def _read_response(self, sock: socket.socket) -> bytes:
        decoder = FrameDecoder(self.max_frame)
        deadline = time.monotonic() + self.ack_timeout
        received = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._timeout(received)
            sock.settimeout(remaining)
            try:
                data = sock.recv(RECV_SIZE)
            except TimeoutError:
                self._timeout(received)
            except OSError:
                raise _Broken(received) from None
            if not data:
                raise _Broken(received)
            received += len(data)
            events = decoder.feed(data)
            for index, event in enumerate(events):
                if isinstance(event, FramingError):
                    logger.warning("MLLP %s in response from %s:%s", event.reason, self.host,
                                   self.port)
                    continue
                if decoder.in_frame or index + 1 < len(events):
                    # More than one frame: the stream is out of step; the next send must not
                    # read the rest, so it starts on a fresh connection.
                    logger.warning("MLLP extra bytes after response from %s:%s",
                                   self.host, self.port)
                    self.close()
                return event

    def _timeout(self, received: int) -> None:
        # Close so that a late ACK is never read as the answer to the next message.
        self.close()
        logger.warning("MLLP no response from %s:%s within %.1f s (%d bytes received)",
                       self.host, self.port, self.ack_timeout, received)
        raise MllpTimeout(f"no ACK from {self.host}:{self.port} within {self.ack_timeout} s")

    def send_checked(self, payload: bytes, control_id: str) -> AckResult:
        """Send and return the parsed ACK; AckMismatch if it does not acknowledge control_id.

        AE/AR are returned, not raised: the caller decides what a rejection means.
        """
        with self._lock:
            response = self.send(payload)
            try:
                ack = parse_ack(response)
            except HeaderError:
                self.close()
                raise AckMismatch(control_id, "") from None
            if ack.control_id != control_id:
                self.close()
                raise AckMismatch(control_id, ack.control_id)
            return ack


class _Broken(Exception):
    def __init__(self, received: int) -> None:
        super().__init__("connection broken")
        self.received = received


class MllpClientPool:
    """Up to ``size`` MllpClient connections to one peer, each carrying one message at a time.

    HL7 original mode has one message in flight per connection, so concurrency toward the HIS
    is a number of connections. Each is opened on its first use and reused afterwards (last
    used first, so an idle surplus is closed by the peer and costs nothing). A caller waits for
    a free connection; it never opens more than ``size``.
    """

    def __init__(self, host: str, port: int, size: int, **client_options: float) -> None:
        if size < 1:
            raise ValueError("an MLLP pool needs at least one connection")
        self.host, self.port, self.size = host, port, size
        self._idle: queue.LifoQueue[MllpClient] = queue.LifoQueue()
        self._clients = [MllpClient(host, port, **client_options) for _ in range(size)]
        for client in self._clients:
            self._idle.put(client)

    def send(self, payload: bytes) -> bytes:
        """Send one message on a free connection and return the response payload."""
        client = self._idle.get()
        try:
            return client.send(payload)
        finally:
            self._idle.put(client)

    def close(self) -> None:
        """Close every connection; the next sends open new ones."""
        for client in self._clients:
            client.close()

    def __enter__(self) -> MllpClientPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
