"""MLLP transport: framing and a threaded listener (the client is in adapter.his.mllp_client).

Written here rather than taken from a library: hl7apy's MLLPServer closes after one message, has
no client and drops the connection without an ACK on a non-UTF-8 byte; python-hl7's MLLP is
asyncio-only and its client has no reconnect or ACK timeout. The listener must keep connections
open across many messages and answer malformed input instead of hanging up.

Framing follows HL7 v2.5 Appendix C "Lower Layer Protocols", MLLP release 1:
<SB=0x0B> payload <EB=0x1C><CR=0x0D>.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

logger = logging.getLogger(__name__)

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
_SB = 0x0B
_EB = 0x1C
_CR = 0x0D
MAX_FRAME = 16 * 1024 * 1024
RECV_SIZE = 65536
_INTERFRAME_WHITESPACE = b" \t\r\n"

# FramingError reasons (also passed to MllpServer's on_framing_error).
JUNK = "junk outside frame"
OVERSIZE = "oversize frame"
TRUNCATED = "truncated frame"
EMPTY = "empty frame"
FRAME_TIMEOUT = "frame timeout"
HANDLER_ERROR = "handler error"


def frame(payload: bytes) -> bytes:
    """Wrap one message in MLLP start and end blocks."""
    return START_BLOCK + payload + END_BLOCK


@dataclass(frozen=True)
class FramingError:
    """An event from FrameDecoder: bytes that could not be taken as a complete frame."""

    reason: str


class FrameDecoder:
    """Incremental MLLP decoder: feed it reads, get complete payloads and framing errors in order.

    Decisions: a 0x1C not followed by 0x0D is payload data (MLLP release 1 ends a block only with
    the two-byte sequence; a sender that ends with a bare 0x1C therefore hits the frame timeout,
    visibly, instead of having a data byte taken as an end). Whitespace between frames (senders
    that append CR/LF after the end block) is ignored, not reported as junk. An empty frame is
    reported as a FramingError.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._in_frame = False
        self._discarding = False  # inside an oversize frame: drop until its end or a new start
        self._eb_pending = False  # the last byte seen in a frame was 0x1C
        self._junk_reported = False

    @property
    def pending(self) -> int:
        """Bytes buffered of an unfinished frame (0 when between frames)."""
        return len(self._buf) + (1 if self._eb_pending and not self._discarding else 0)

    @property
    def in_frame(self) -> bool:
        """A start block has been seen and its frame is not finished yet."""
        return self._in_frame

    def discard_pending(self) -> int:
        """Drop an unfinished frame (after a frame timeout); return how many bytes were dropped."""
        dropped = self.pending
        self._buf.clear()
        self._in_frame = self._discarding = self._eb_pending = False
        return dropped

    def _end_frame(self, out: list[bytes | FramingError]) -> None:
        if not self._discarding:
            out.append(bytes(self._buf) if self._buf else FramingError(EMPTY))
        self._buf.clear()
        self._in_frame = self._discarding = False

    def _start_frame(self, out: list[bytes | FramingError]) -> None:
        if self._in_frame and not self._discarding:
            out.append(FramingError(TRUNCATED))
        self._buf.clear()
        self._in_frame, self._discarding, self._junk_reported = True, False, False

    def _append(self, chunk: bytes | memoryview, out: list[bytes | FramingError]) -> None:
        if self._discarding or not chunk:
            return
        if len(self._buf) + len(chunk) > self.max_frame:
            out.append(FramingError(OVERSIZE))
            self._buf.clear()
            self._discarding = True
            return
        self._buf += chunk

    def feed(self, data: bytes) -> list[bytes | FramingError]:
        """Consume one read; return the payloads completed and framing errors, in stream order."""
        out: list[bytes | FramingError] = []
        view = memoryview(data)
        i, n = 0, len(data)
        while i < n:
            if not self._in_frame:
                j = data.find(START_BLOCK, i)
                stop = n if j < 0 else j
                if data[i:stop].strip(_INTERFRAME_WHITESPACE) and not self._junk_reported:
                    out.append(FramingError(JUNK))
                    self._junk_reported = True
                if j < 0:
                    break
                self._start_frame(out)
                i = j + 1
                continue
            if self._eb_pending:
                # End block split across reads: 0x1C ended the previous read.
                self._eb_pending = False
                if data[i] == _CR:
                    self._end_frame(out)
                    i += 1
                    continue
                self._append(b"\x1c", out)
            eb = data.find(b"\x1c", i)
            sb = data.find(START_BLOCK, i)
            if sb >= 0 and (eb < 0 or sb < eb):
                self._append(view[i:sb], out)
                self._start_frame(out)
                i = sb + 1
            elif eb >= 0:
                self._append(view[i:eb], out)
                if eb + 1 == n:
                    self._eb_pending = True
                    i = n
                elif data[eb + 1] == _CR:
                    self._end_frame(out)
                    i = eb + 2
                else:
                    self._append(b"\x1c", out)
                    i = eb + 1
            else:
                self._append(view[i:], out)
                i = n
        return out


class DropConnection(Exception):
    """Raised by a server handler to close the connection now, after writing ``partial`` raw."""

    def __init__(self, partial: bytes = b"") -> None:
        super().__init__("drop connection")
        self.partial = partial


Handler = Callable[[bytes], bytes | None]
FramingErrorHandler = Callable[[str], bytes | None]
ConnectHook = Callable[[socket.socket, tuple], bool]


class MllpServer:
    """Threaded MLLP listener: one thread per connection, many messages per connection.

    ``handler(payload)`` returns the response payload (framed here) or None for no response.
    ``on_framing_error(reason)`` returns the NAK payload to send for framing errors, frame
    timeouts and handler failures; the connection stays open in every such case.
    """

    def __init__(
        self,
        host: str,
        port: int,
        handler: Handler,
        *,
        on_framing_error: FramingErrorHandler | None = None,
        on_connect: ConnectHook | None = None,
        idle_timeout: float = 300,
        frame_timeout: float = 30,
        max_frame: int = MAX_FRAME,
        max_connections: int = 256,
    ) -> None:
        self.handler = handler
        self.on_framing_error = on_framing_error
        self.on_connect = on_connect
        self.idle_timeout = idle_timeout
        self.frame_timeout = frame_timeout
        self.max_frame = max_frame
        self.max_connections = max_connections
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._thread: threading.Thread | None = None
        self._socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((host, port))
            self._socket.listen(128)
            # Kept now: a shutdown() racing the accept thread's start closes the socket, and
            # getsockname() on it would then fail.
            self._address: tuple[str, int] = self._socket.getsockname()[:2]
            # Accept wakes at least this often to notice shutdown where shutdown() on a
            # listening socket does not interrupt accept() (it does on Linux).
            self._socket.settimeout(0.5)
        except OSError:
            self._socket.close()
            raise

    @property
    def server_address(self) -> tuple[str, int]:
        """(host, port) actually bound; the real port when constructed with port 0."""
        return self._address

    def __enter__(self) -> MllpServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="mllp-accept", daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        """Accept connections until shutdown()."""
        logger.info("MLLP listener on %s:%s", *self.server_address)
        while not self._stopping.is_set():
            try:
                conn, peer = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    break
                logger.warning("accept failed", exc_info=True)
                time.sleep(0.05)
                continue
            self._admit(conn, peer)

    def _admit(self, conn: socket.socket, peer: tuple) -> None:
        with self._lock:
            full = len(self._connections) >= self.max_connections
        if full or self._stopping.is_set():
            logger.warning("MLLP connection from %s refused: %d open", _peer(peer),
                           len(self._connections))
            close_quietly(conn)
            return
        try:
            if self.on_connect is not None and not self.on_connect(conn, peer):
                logger.info("MLLP connection from %s refused by on_connect", _peer(peer))
                close_quietly(conn)
                return
        except Exception as exc:
            logger.error("on_connect failed for %s: %s", _peer(peer), type(exc).__name__)
            close_quietly(conn)
            return
        thread = threading.Thread(
            target=self._serve_connection, args=(conn, peer), name=f"mllp-{_peer(peer)}",
            daemon=True,
        )
        with self._lock:
            self._connections[conn] = thread
        thread.start()

    def shutdown(self) -> None:
        """Stop accepting, close the listening socket and every open connection, promptly."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        with self._lock:
            connections = list(self._connections.items())
        for conn, _thread in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for _conn, thread in connections:
            if thread is not threading.current_thread():
                thread.join(timeout=2)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def _reply(self, conn: socket.socket, payload: bytes | None) -> None:
        if payload is not None:
            conn.settimeout(max(self.idle_timeout, 1.0))  # a peer that never reads
            conn.sendall(frame(payload))

    def _nak(self, reason: str, peer: tuple) -> bytes | None:
        if self.on_framing_error is None:
            return None
        try:
            return self.on_framing_error(reason)
        except Exception as exc:
            logger.error("on_framing_error failed for %s: %s", _peer(peer), type(exc).__name__)
            return None

    def _serve_connection(self, conn: socket.socket, peer: tuple) -> None:
        logger.info("MLLP connection from %s", _peer(peer))
        decoder = FrameDecoder(self.max_frame)
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        last_activity = time.monotonic()
        frame_started: float | None = None
        messages = 0
        try:
            while not self._stopping.is_set():
                deadline = last_activity + self.idle_timeout
                if frame_started is not None:
                    deadline = min(deadline, frame_started + self.frame_timeout)
                conn.settimeout(max(deadline - time.monotonic(), 0.001))
                try:
                    data = conn.recv(RECV_SIZE)
                except TimeoutError:
                    now = time.monotonic()
                    if frame_started is not None and now >= frame_started + self.frame_timeout:
                        dropped = decoder.discard_pending()
                        frame_started = None
                        logger.warning("MLLP frame timeout from %s after %d bytes",
                                       _peer(peer), dropped)
                        self._reply(conn, self._nak(FRAME_TIMEOUT, peer))
                    elif now >= last_activity + self.idle_timeout:
                        logger.info("MLLP connection from %s idle, closing", _peer(peer))
                        break
                    continue
                if not data:
                    break
                now = time.monotonic()
                last_activity = now
                events = decoder.feed(data)
                if not decoder.in_frame:
                    frame_started = None
                elif frame_started is None or events:
                    frame_started = now  # a new frame began in this read
                for event in events:
                    if isinstance(event, FramingError):
                        logger.warning("MLLP %s from %s", event.reason, _peer(peer))
                        self._reply(conn, self._nak(event.reason, peer))
                        continue
                    messages += 1
                    try:
                        response = self.handler(event)
                    except DropConnection as drop:
                        logger.info("MLLP handler dropped connection from %s", _peer(peer))
                        if drop.partial:
                            conn.sendall(drop.partial)
                        return
                    except Exception as exc:
                        logger.error("MLLP handler failed on a %d-byte message from %s: %s",
                                     len(event), _peer(peer), type(exc).__name__)
                        response = self._nak(HANDLER_ERROR, peer)
                    self._reply(conn, response)
        except OSError as exc:
            # Peer reset, broken pipe, send timeout: this connection ends, the server goes on.
            logger.info("MLLP connection from %s ended: %s", _peer(peer), type(exc).__name__)
        finally:
            close_quietly(conn)
            with self._lock:
                self._connections.pop(conn, None)
            logger.info("MLLP connection from %s closed after %d messages", _peer(peer), messages)


def _peer(peer: tuple) -> str:
    return f"{peer[0]}:{peer[1]}" if len(peer) >= 2 else str(peer)


def close_quietly(sock: socket.socket) -> None:
    """Shut down and close a socket, ignoring a peer that is already gone."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
