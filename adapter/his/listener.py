"""The inbound side of the HIS link: every HL7 message is stored durably, then acknowledged.

DESIGN invariant 5: the row (raw bytes, type, control id, sender, status and the ACK itself) is
committed before the ACK leaves, so an ACKed message is never lost; a retransmission (same
sender and MSH-10, HL7 v2.5 section 2.10.1) gets the very same ACK bytes back and no second
effect. The hot path reads only MSH (adapter.his.header); the use cases parse the rest later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from adapter.config import Config
from adapter.db import utcnow
from adapter.his.codes import (
    APPLICATION_INTERNAL_ERROR,
    DUPLICATE_KEY,
    SEGMENT_SEQUENCE_ERROR,
    UNSUPPORTED_EVENT_CODE,
    UNSUPPORTED_MESSAGE_TYPE,
    UNSUPPORTED_VERSION_ID,
)
from adapter.his.control_ids import ControlIds
from adapter.his.header import (
    CHARSETS,
    Header,
    HeaderError,
    build_ack,
    build_nak,
    decode_message,
    encode_message,
)
from adapter.his.inbound import ordering_key
from adapter.his.mllp import HANDLER_ERROR, MllpServer
from adapter.his.profile import Hl7Profile
from adapter.models import InboundMessage, InboundStatus

logger = logging.getLogger(__name__)

# Segments a message must carry before the adapter accepts responsibility for it (AA). The
# use cases check the fields; this is only the shape without which nothing can be applied.
REQUIRED_SEGMENTS: dict[str, tuple[str, ...]] = {
    "ORU": ("PID", "OBR"),  # no OBX: a cancelled order (OBR-25 X) carries no results
    "SIU": ("SCH",),
    "DFT": ("PID", "FT1"),
    "ADT": ("PID",),
}


@dataclass(frozen=True)
class Verdict:
    """What the listener answers to a readable message."""

    ack_code: str  # AA, AE or AR
    status: str  # InboundStatus
    error_code: str = ""  # HL7 table 0357
    error_text: str = ""


def judge(text: str, header: Header, profile: Hl7Profile) -> Verdict:
    """Decide AA/AE/AR for a decoded message from its header and segment shape."""
    if not header.version.startswith("2."):
        return Verdict("AR", InboundStatus.REJECTED, UNSUPPORTED_VERSION_ID,
                       "unsupported version id")
    if header.message_type not in profile.inbound:
        known_codes = {t.split("^", 1)[0] for t in profile.inbound}
        if header.message_code in known_codes:
            return Verdict("AR", InboundStatus.REJECTED, UNSUPPORTED_EVENT_CODE,
                           "unsupported event code")
        return Verdict("AR", InboundStatus.REJECTED, UNSUPPORTED_MESSAGE_TYPE,
                       "unsupported message type")
    present = {segment[:3] for segment in text.split("\r") if segment}
    for required in REQUIRED_SEGMENTS.get(header.message_code, ()):
        if required not in present:
            return Verdict("AE", InboundStatus.ERROR, SEGMENT_SEQUENCE_ERROR,
                           f"segment {required} missing")
    return Verdict("AA", InboundStatus.RECEIVED)


class InboundHandler:
    """The MLLP handler of the listener: payload bytes in, ACK bytes out, never an exception."""

    def __init__(
        self,
        session_factory: sessionmaker,
        profile: Hl7Profile,
        *,
        tz: dt.tzinfo = dt.UTC,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._sessions = session_factory
        self._profile = profile
        self._tz = tz
        self._clock = clock
        self._control_ids = ControlIds("A")
        self._committer = GroupCommitter(self._write_batch)

    def __call__(self, payload: bytes) -> bytes:
        """Store the message, then return the ACK to send."""
        item = self._committer.store(self.prepare(payload))
        if item.header is None:
            logger.warning("unreadable HL7 message of %d bytes stored as error (code %s)",
                           len(payload), item.row.error_code)
        elif item.retransmission:
            logger.info("retransmission of control id %s from %s answered with the stored ACK",
                        item.header.control_id, item.header.sender)
        else:
            logger.info("stored %s control id %s from %s as %s (%s)", item.header.message_type,
                        item.header.control_id, item.header.sender, item.row.id,
                        item.row.ack_code)
        return item.ack

    def prepare(self, payload: bytes) -> _Pending:
        """Read the header and build the row and its ACK (in the connection's thread; rebuilt
        only for the rare reused MSH-10): what the writer stores."""
        failure: HeaderError | None = None
        digest = hashlib.sha256(payload).hexdigest()
        try:
            text, header = decode_message(payload)
        except HeaderError as exc:
            if exc.header is None or not exc.header.control_id:
                return _Pending(None, digest, self._unreadable_row(payload, digest, exc),
                                payload)
            # MSH was readable (the body was not): stored under its sender and MSH-10 like
            # any message, so a retransmission gets the stored ACK and staff find it by id.
            text, header, failure = "", exc.header, exc
        row = self._row(payload, text, header, digest, reused_id=False, failure=failure)
        return _Pending(header, digest, row, payload, text, failure)

    def _write_batch(self, batch: list[_Pending]) -> None:
        """Store a batch of messages in one transaction (one commit, one WAL flush for all);
        when another listener stored one of them meanwhile, each on its own."""
        try:
            with self._sessions.begin() as session:
                self._store(session, batch)
            return
        except Exception:
            if len(batch) == 1:
                self._write_one(batch[0])  # a race settled by the unique constraint, or raise
                return
        # A retransmission raced in through another process (the unique constraint settled
        # it), or one message could not be stored: each on its own, so the others still are.
        for item in batch:
            item.ack, item.retransmission, item.row = b"", False, _unsaved(item.row)
            try:
                self._write_one(item)
            except Exception as exc:  # noqa: BLE001 - answered AE 207 by its connection
                item.error = exc

    def _write_one(self, item: _Pending) -> None:
        try:
            with self._sessions.begin() as session:
                self._store(session, [item])
        except IntegrityError:
            with self._sessions() as session:
                stored = self._earlier(session, [item.header]).get(item.key, {}).get(item.digest)
            if stored is None:
                raise
            item.ack, item.retransmission = stored, True

    def _store(self, session: Session, batch: list[_Pending]) -> None:
        """Look for earlier copies of the whole batch at once, then store the new ones (a
        later message of the batch sees the earlier ones: one sender may repeat itself)."""
        earlier = self._earlier(session, [item.header for item in batch
                                          if item.header is not None])
        rows = []
        for item in batch:
            if item.header is None:  # unreadable: stored as an error, never deduplicated
                rows.append(item.row)
                item.ack = item.row.ack
                continue
            seen = earlier.setdefault(item.key, {})
            if item.digest in seen:
                item.ack, item.retransmission = seen[item.digest], True
                continue
            if seen:
                item.row = self._row(item.payload, item.text, item.header, item.digest,
                                     reused_id=True, failure=item.failure)
            seen[item.digest] = item.ack = item.row.ack
            rows.append(item.row)
        session.add_all(rows)

    def _row(
        self, payload: bytes, text: str, header: Header, digest: str, *, reused_id: bool,
        failure: HeaderError | None = None,
    ) -> InboundMessage:
        # An ACK goes out in the character set the message declared, when the adapter knows it.
        charset = header.charset if header.charset.upper() in CHARSETS else ""
        if failure is not None:
            verdict = Verdict("AE", InboundStatus.ERROR, failure.code, failure.message)
        elif reused_id:
            # Another message under an id already used: not a retransmission, and applying it
            # could shadow the first. Kept, and refused so the sender's staff notice.
            verdict = Verdict("AE", InboundStatus.ERROR, DUPLICATE_KEY,
                              "duplicate key identifier: MSH-10 already used by another message")
        else:
            verdict = judge(text, header, self._profile)
        ack = encode_message(build_ack(
            header,
            verdict.ack_code,
            sending_application=self._profile.sending_application,
            sending_facility=self._profile.sending_facility,
            error_code=verdict.error_code,
            error_text=verdict.error_text,
            control_id=self._control_ids.next(),
            timestamp=self._timestamp(),
            charset=charset,
        ), charset)
        return InboundMessage(
            received_at=self._clock(),
            sender=header.sender[:200],
            control_id=header.control_id[:199],
            digest=digest,
            message_type=header.message_type[:20],
            version=header.version[:10],
            charset=header.charset[:20],
            status=verdict.status,
            ack_code=verdict.ack_code,
            error_code=verdict.error_code,
            error_text=verdict.error_text,
            raw=payload,
            ack=ack,
            ordering_key=ordering_key(text, header, self._profile)
            if verdict.status == InboundStatus.RECEIVED else "",
        )

    @staticmethod
    def _earlier(session: Session,
                 headers: list[Header]) -> dict[tuple[str, str], dict[str, bytes]]:
        """(sender, control id) -> digest -> stored ACK of the messages already received
        under these senders and ids."""
        keys = {_key(header) for header in headers}
        found: dict[tuple[str, str], dict[str, bytes]] = {}
        if not keys:
            return found
        rows = session.execute(
            select(InboundMessage.sender, InboundMessage.control_id, InboundMessage.digest,
                   InboundMessage.ack)
            .where(tuple_(InboundMessage.sender, InboundMessage.control_id).in_(sorted(keys))))
        for sender, control_id, digest, ack in rows:
            found.setdefault((sender, control_id), {})[digest] = ack
        return found

    def _unreadable_row(self, payload: bytes, digest: str, exc: HeaderError) -> InboundMessage:
        """A frame without a usable MSH-10: kept as an error, answered with an empty MSA-2."""
        return InboundMessage(
            received_at=self._clock(),
            sender=None,
            control_id=None,
            digest=digest,
            status=InboundStatus.ERROR,
            ack_code="AE",
            error_code=exc.code,
            error_text=exc.message[:200],
            raw=payload,
            ack=self.nak(exc.message, exc.code),
        )

    def nak(self, reason: str, code: str = SEGMENT_SEQUENCE_ERROR) -> bytes:
        """An AE acknowledgment for a frame with no usable header."""
        if reason == HANDLER_ERROR:
            # The message could not be stored (database down...): AE 207, so the sender keeps
            # it and sends it again; never AA for what is not durable.
            code = APPLICATION_INTERNAL_ERROR
        return build_nak(
            ack_code="AE",
            error_text=reason,
            error_code=code,
            sending_application=self._profile.sending_application,
            sending_facility=self._profile.sending_facility,
            control_id=self._control_ids.next(),
            timestamp=self._timestamp(),
        ).encode("utf-8")

    def _timestamp(self) -> str:
        return self._clock().astimezone(self._tz).strftime("%Y%m%d%H%M%S%z")


def _unsaved(row: InboundMessage) -> InboundMessage:
    """A fresh copy of a row whose transaction rolled back, to be stored again."""
    return InboundMessage(**{column.key: getattr(row, column.key)
                             for column in InboundMessage.__table__.columns
                             if column.key != "id"})


def _key(header: Header) -> tuple[str, str]:
    return header.sender[:200], header.control_id[:199]


@dataclass(eq=False)
class _Pending:
    """A message on its way to the database, and what its connection answers once stored."""

    header: Header | None  # None: an unreadable frame
    digest: str
    row: InboundMessage  # what is stored (unless it is a retransmission)
    payload: bytes
    text: str = ""
    failure: HeaderError | None = None
    ack: bytes = b""
    retransmission: bool = False
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def key(self) -> tuple[str, str]:
        assert self.header is not None
        return _key(self.header)


class GroupCommitter:
    """One writer thread that stores what every connection received in shared transactions.

    Under load (8 connections at once) each commit was a WAL flush of its own, and the
    commits, not the work, set the ACK rate; here the messages that arrive while one batch
    commits go together in the next (group commit, as databases do for their own log). A
    lone message waits for no one: its batch is itself. No ACK leaves before its batch has
    committed (DESIGN invariant 5); when the batch fails, every message in it is answered
    AE 207 and its sender sends it again. SQLite's one writer is this thread, so its writers
    no longer queue on its busy handler either.
    """

    MAX_BATCH = 64
    IDLE_SECONDS = 5.0  # the thread ends after this long without work (started again on need)

    def __init__(self, write: Callable[[list[_Pending]], None]) -> None:
        self._write = write
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def store(self, item: _Pending) -> _Pending:
        """Hand the message to the writer and wait until it is stored (or raise why not)."""
        with self._lock:
            self._queue.put(item)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mllp-store",
                                                daemon=True)
                self._thread.start()
        item.done.wait()
        if item.error is not None:
            raise item.error
        return item

    def _run(self) -> None:
        while True:
            try:
                batch = [self._queue.get(timeout=self.IDLE_SECONDS)]
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            while len(batch) < self.MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(batch)
            except Exception as exc:  # noqa: BLE001 - each connection answers AE for it
                for item in batch:
                    item.error = exc
            for item in batch:
                item.done.set()


def make_listener(
    config: Config, session_factory: sessionmaker, profile: Hl7Profile
) -> MllpServer:
    """The MLLP listener of the adapter, bound to ADAPTER_MLLP_LISTEN."""
    handler = InboundHandler(session_factory, profile, tz=config.tz)
    return MllpServer(
        config.mllp_listen.host,
        config.mllp_listen.port,
        handler,
        on_framing_error=lambda reason: handler.nak(reason),
        idle_timeout=config.mllp_idle_timeout,
        frame_timeout=config.mllp_frame_timeout,
        max_frame=config.mllp_max_frame_bytes,
    )
