"""The inbound side of the HIS link: every HL7 message is stored durably, then acknowledged.

DESIGN invariant 5: the row (raw bytes, type, control id, sender, status and the ACK itself) is
committed before the ACK leaves, so an ACKed message is never lost; a retransmission (same
sender and MSH-10, HL7 v2.5 section 2.10.1) gets the very same ACK bytes back and no second
effect. The hot path reads only MSH (adapter.his.header); the use cases parse the rest later.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
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
        # SQLite has one writer at a time and its busy handler waits by sleeping, which put
        # the 8-connection p99 above 100 ms; queueing this process's writers on a lock instead
        # keeps the wait to the commit in front. PostgreSQL writes concurrently.
        bind = session_factory.kw.get("bind")
        self._write_lock: contextlib.AbstractContextManager[object] = (
            threading.Lock() if bind is not None and bind.dialect.name == "sqlite"
            else contextlib.nullcontext()
        )

    def __call__(self, payload: bytes) -> bytes:
        """Store the message, then return the ACK to send."""
        failure: HeaderError | None = None
        try:
            text, header = decode_message(payload)
        except HeaderError as exc:
            if exc.header is None or not exc.header.control_id:
                return self._store_unreadable(payload, exc)
            # MSH was readable (the body was not): stored under its sender and MSH-10 like
            # any message, so a retransmission gets the stored ACK and staff find it by id.
            text, header, failure = "", exc.header, exc
        digest = hashlib.sha256(payload).hexdigest()
        try:
            # One transaction: look for an earlier copy, then store; the unique constraint
            # settles a race between two connections carrying the same retransmission.
            with self._write_lock, self._sessions.begin() as session:
                earlier = self._earlier(session, header)
                if digest in earlier:
                    logger.info("retransmission of control id %s from %s answered with the "
                                "stored ACK", header.control_id, header.sender)
                    return earlier[digest]
                row = self._row(payload, text, header, digest, reused_id=bool(earlier),
                                failure=failure)
                session.add(row)
        except IntegrityError:
            with self._sessions() as session:
                stored = self._earlier(session, header).get(digest)
            if stored is not None:
                return stored
            raise
        logger.info("stored %s control id %s from %s as %s (%s)", header.message_type,
                    header.control_id, header.sender, row.id, row.ack_code)
        return row.ack

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
    def _earlier(session: Session, header: Header) -> dict[str, bytes]:
        """Digest -> stored ACK of the messages already received under this sender and id."""
        rows = session.execute(
            select(InboundMessage.digest, InboundMessage.ack).where(
                InboundMessage.sender == header.sender[:200],
                InboundMessage.control_id == header.control_id[:199],
            )
        )
        return {digest: ack for digest, ack in rows}

    def _store_unreadable(self, payload: bytes, exc: HeaderError) -> bytes:
        """A frame without a usable MSH-10: kept as an error, answered with an empty MSA-2."""
        code, reason = exc.code, exc.message
        ack = self.nak(reason, code)
        with self._write_lock, self._sessions.begin() as session:
            session.add(
                InboundMessage(
                    received_at=self._clock(),
                    sender=None,
                    control_id=None,
                    digest=hashlib.sha256(payload).hexdigest(),
                    status=InboundStatus.ERROR,
                    ack_code="AE",
                    error_code=code,
                    error_text=reason[:200],
                    raw=payload,
                    ack=ack,
                )
            )
        logger.warning("unreadable HL7 message of %d bytes stored as error (code %s)",
                       len(payload), code)
        return ack

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
