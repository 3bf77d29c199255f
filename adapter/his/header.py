"""The listener's fast path: decode an inbound HL7 v2 frame, read its MSH, build and read ACKs.

Why plain string splitting instead of hl7apy or python-hl7 here: this runs for every frame the
HIS sends, before the message is stored and acknowledged, and hl7apy costs about 17 ms a message
(python-hl7 is faster but still builds the whole tree). Only MSH (and MSA/ERR of ACKs) is needed
at this point, and the code must tolerate whatever delimiter set the sender declares in MSH-1 and
MSH-2, undeclared defaults, BOMs and newline segment terminators. Full parsing happens later, off
the hot path, with the message already stored.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from dataclasses import fields as dataclass_fields

from adapter.his.codes import (
    ACCEPT_ACK_CODES,
    ACK_CODES,
    DATA_TYPE_ERROR,
    ERROR_TEXTS,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
)

logger = logging.getLogger(__name__)

# HL7 table 0211 (MSH-18 character set) -> Python codec. An empty MSH-18 means the default, which
# this adapter takes to be UTF-8 (DESIGN.md invariant 5).
CHARSETS: dict[str, str] = {
    "": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "ASCII": "ascii",
    "8859/1": "latin-1",
    "GB 18030-2000": "gb18030",
    "GB18030": "gb18030",
}

_BOM = b"\xef\xbb\xbf"
_LEADING_WHITESPACE = b" \t\r\n"
_STANDARD_DELIMITERS = "|^~\\&"


class HeaderError(Exception):
    """The frame cannot be taken as an HL7 message; ``code`` is its HL7 table 0357 code.

    ``header`` is set when MSH was readable enough to answer with a proper ACK (MSA-2 = MSH-10).
    """

    def __init__(self, code: str, message: str, header: Header | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.header = header

    def __str__(self) -> str:
        return f"{self.code} {self.message}"


@dataclass(frozen=True)
class Header:
    """The MSH of one message; fields kept raw (still escaped, in the sender's delimiters)."""

    field_sep: str = "|"
    component_sep: str = "^"
    repetition_sep: str = "~"
    escape_char: str = "\\"
    subcomponent_sep: str = "&"
    sending_application: str = ""  # MSH-3
    sending_facility: str = ""  # MSH-4
    receiving_application: str = ""  # MSH-5
    receiving_facility: str = ""  # MSH-6
    timestamp: str = ""  # MSH-7, raw
    message_code: str = ""  # MSH-9.1
    trigger_event: str = ""  # MSH-9.2
    structure: str = ""  # MSH-9.3
    control_id: str = ""  # MSH-10
    processing_id: str = ""  # MSH-11
    version: str = ""  # MSH-12.1
    charset: str = ""  # MSH-18, first repetition, raw

    @property
    def encoding_characters(self) -> str:
        """MSH-2 as sent."""
        return self.component_sep + self.repetition_sep + self.escape_char + self.subcomponent_sep

    @property
    def message_type(self) -> str:
        """``ORU^R01`` (always written with ``^``, whatever the sender's component separator)."""
        if not self.trigger_event:
            return self.message_code
        return f"{self.message_code}^{self.trigger_event}"

    @property
    def sender(self) -> str:
        """``APP^FACILITY`` from the first components of MSH-3 and MSH-4."""
        app = self.sending_application.split(self.component_sep, 1)[0]
        facility = self.sending_facility.split(self.component_sep, 1)[0]
        return f"{app}^{facility}"


STANDARD_HEADER = Header()


@dataclass(frozen=True)
class AckResult:
    """What an acknowledgement says (MSA, ERR)."""

    code: str  # MSA-1, HL7 table 0008
    control_id: str  # MSA-2: the MSH-10 it acknowledges
    text: str = ""  # MSA-3
    error_code: str = ""  # ERR-3.1, else MSA-6.1 (v2.3), else ERR-1.4.1 (v2.3 ELD)
    error_text: str = ""

    @property
    def accepted(self) -> bool:
        """AA or CA."""
        return self.code in ACCEPT_ACK_CODES


def codec_for(charset: str) -> str:
    """The Python codec for an MSH-18 value; HeaderError 102 if the adapter does not know it."""
    try:
        return CHARSETS[charset.strip().upper()]
    except KeyError:
        raise HeaderError(DATA_TYPE_ERROR, "unsupported character set in MSH-18") from None


def encode_message(text: str, charset: str = "") -> bytes:
    """Encode an outgoing message (e.g. an ACK) in the MSH-18 character set it declares."""
    # A character the declared set cannot carry (say a Chinese error text in an ASCII ACK)
    # becomes "?" rather than making the ACK impossible to send.
    return text.encode(codec_for(charset), errors="replace")


def _split_segments(text: str) -> list[str]:
    # HL7 v2.5 section 2.5.3: segments end with CR. Many senders (and the shared samples) use
    # LF or CRLF; a newline inside data must be escaped (\X0A\, \.br\), so a bare LF is a
    # terminator too. Empty lines are dropped.
    return [s for s in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if s]


def _read_delimiters(first_segment: str) -> tuple[str, str, str, str, str]:
    if len(first_segment) < 4:
        raise HeaderError(REQUIRED_FIELD_MISSING, "MSH-1 field separator missing")
    field_sep = first_segment[3]
    end = first_segment.find(field_sep, 4)
    encoding = first_segment[4:] if end < 0 else first_segment[4:end]
    # MSH-2 has four characters; v2.7+ may add a fifth (truncation), which is not needed here.
    delimiters = (field_sep, *encoding[:4])
    if len(encoding) not in (4, 5) or len(set(delimiters)) != 5:
        raise HeaderError(DATA_TYPE_ERROR, "MSH-2 encoding characters invalid")
    if any(c.isalnum() or c in "\r\n" or not c.isascii() for c in delimiters):
        raise HeaderError(DATA_TYPE_ERROR, "MSH-1/MSH-2 delimiters invalid")
    return delimiters  # type: ignore[return-value]


def _parse_msh(first_segment: str) -> Header:
    fs, cs, rs, ec, ss = _read_delimiters(first_segment)
    fields = first_segment.split(fs)
    # fields[0] is "MSH" and fields[1] is MSH-2, so MSH-n (n >= 2) is fields[n - 1].

    def msh(n: int) -> str:
        return fields[n - 1] if n - 1 < len(fields) else ""

    message_type = msh(9).split(rs, 1)[0].split(cs)
    return Header(
        field_sep=fs,
        component_sep=cs,
        repetition_sep=rs,
        escape_char=ec,
        subcomponent_sep=ss,
        sending_application=msh(3),
        sending_facility=msh(4),
        receiving_application=msh(5),
        receiving_facility=msh(6),
        timestamp=msh(7).split(cs, 1)[0],
        message_code=message_type[0].strip(),
        trigger_event=message_type[1].strip() if len(message_type) > 1 else "",
        structure=message_type[2].strip() if len(message_type) > 2 else "",
        control_id=msh(10).strip(),
        processing_id=msh(11).split(cs, 1)[0].strip(),
        version=msh(12).split(cs, 1)[0].strip(),
        # MSH-18 repeats: the first repetition is the message's own character set, later ones
        # are alternates switched to by escape sequences (HL7 v2.5 section 2.15.9.18).
        charset=msh(18).split(rs, 1)[0].strip(),
    )


def _without_nul(header: Header) -> Header | None:
    """The header with NULs dropped from its fields, or None when they sit where the message
    is identified (delimiters, MSH-3, MSH-4, MSH-10): then it cannot be answered by its id."""
    identity = (header.encoding_characters, header.field_sep, header.sending_application,
                header.sending_facility, header.control_id)
    if any("\x00" in value for value in identity):
        return None
    return replace(header, **{f.name: getattr(header, f.name).replace("\x00", "")
                              for f in dataclass_fields(header)})


def decode_message(payload: bytes) -> tuple[str, Header]:
    """Decode one frame's payload in its declared character set; return (text, header).

    The text has CR segment terminators only. Raises HeaderError (100 not an HL7 message,
    101 MSH-9/MSH-10 missing, 102 bad delimiters, unknown charset or undecodable bytes).
    """
    if payload.startswith(_BOM):
        payload = payload[len(_BOM) :]
    payload = payload.lstrip(_LEADING_WHITESPACE)
    if not payload.startswith(b"MSH"):
        raise HeaderError(SEGMENT_SEQUENCE_ERROR, "message does not start with MSH")

    # Read MSH-18 before knowing the charset: take the first segment as latin-1 (every byte maps
    # to one character, so this cannot fail). MSH up to MSH-18 is ASCII in practice; CR and LF
    # never occur inside a GB18030 or UTF-8 multi-byte sequence, so the segment end is safe to
    # find on bytes. GB18030 trail bytes can equal "|" or "^", but only inside non-ASCII text (a
    # Chinese facility name in MSH-4, say): when MSH has non-ASCII bytes, each candidate codec is
    # tried and kept only if the MSH it decodes declares that same codec in MSH-18.
    cut = min((i for i in (payload.find(b"\r"), payload.find(b"\n")) if i >= 0), default=-1)
    first_bytes = payload if cut < 0 else payload[:cut]
    provisional = _parse_msh(first_bytes.decode("latin-1"))
    candidates = [CHARSETS.get(provisional.charset.upper(), "")]
    if not first_bytes.isascii():
        candidates += ["utf-8", "gb18030"]
    for codec in dict.fromkeys(c for c in candidates if c):
        try:
            header = _parse_msh(first_bytes.decode(codec))
            if CHARSETS.get(header.charset.upper()) != codec:
                continue
            text = payload.decode(codec)
        except (HeaderError, UnicodeDecodeError):
            continue
        break
    else:
        if provisional.charset.upper() not in CHARSETS:
            raise HeaderError(DATA_TYPE_ERROR, "unsupported character set in MSH-18",
                              _without_nul(provisional))
        raise HeaderError(DATA_TYPE_ERROR, "bytes invalid for the declared character set",
                          _without_nul(provisional))
    if "\x00" in text:
        # HL7 data types allow no NUL; PostgreSQL text cannot hold one either. The message is
        # unreadable, but an MSH without NUL still says what to answer to (MSA-2 = MSH-10).
        raise HeaderError(DATA_TYPE_ERROR, "NUL character in message", _without_nul(header))
    segments = _split_segments(text)
    if not header.message_code:
        raise HeaderError(REQUIRED_FIELD_MISSING, "MSH-9 message type missing", header)
    if not header.control_id:
        raise HeaderError(REQUIRED_FIELD_MISSING, "MSH-10 message control id missing", header)
    return "\r".join(segments), header


def escape(text: str, header: Header = STANDARD_HEADER) -> str:
    """Escape text for an HL7 field in the header's delimiters (HL7 v2.5 section 2.7.4)."""
    ec = header.escape_char
    out = text.replace(ec, f"{ec}E{ec}")
    for char, code in (
        (header.field_sep, "F"),
        (header.component_sep, "S"),
        (header.subcomponent_sep, "T"),
        (header.repetition_sep, "R"),
    ):
        out = out.replace(char, f"{ec}{code}{ec}")
    # CR/LF would end the segment: hexadecimal escapes (section 2.7.6).
    return out.replace("\r", f"{ec}X0D{ec}").replace("\n", f"{ec}X0A{ec}")


def unescape(text: str, header: Header = STANDARD_HEADER) -> str:
    """Undo HL7 escape sequences; highlighting and unknown sequences are dropped or kept as-is."""
    ec = header.escape_char
    if ec not in text:
        return text
    simple = {
        "F": header.field_sep,
        "S": header.component_sep,
        "T": header.subcomponent_sep,
        "R": header.repetition_sep,
        "E": ec,
        "H": "",
        "N": "",
        ".br": "\n",
    }
    pattern = re.compile(re.escape(ec) + r"([^" + re.escape(ec) + r"\r]*)" + re.escape(ec))

    def replace(match: re.Match[str]) -> str:
        seq = match.group(1)
        if seq in simple:
            return simple[seq]
        if seq[:1] == "X" and len(seq) > 1 and len(seq) % 2 == 1:
            try:
                raw = bytes.fromhex(seq[1:])
            except ValueError:
                return match.group(0)
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw.decode("latin-1")
        return match.group(0)

    return pattern.sub(replace, text)


def build_ack(
    header: Header,
    ack_code: str,
    *,
    sending_application: str,
    sending_facility: str,
    error_code: str = "",
    error_text: str = "",
    severity: str = "E",
    control_id: str,
    timestamp: str,
    charset: str = "",
) -> str:
    """Build an original-mode ACK for ``header``'s message in its delimiters, CR between segments.

    ``sending_application``/``sending_facility`` are ours (plain text, escaped here);
    ``control_id`` and ``timestamp`` (HL7 DTM) are the ACK's own MSH-10 and MSH-7.
    """
    if ack_code not in ACK_CODES:
        raise ValueError(f"ack_code must be one of {', '.join(ACK_CODES)}")
    if severity not in ("E", "W", "I"):  # HL7 table 0516
        raise ValueError("severity must be E, W or I")
    fs, cs = header.field_sep, header.component_sep
    msh = fs.join(
        [
            "MSH",
            header.encoding_characters,
            escape(sending_application, header),
            escape(sending_facility, header),
            # Receiver of the ACK is the original sender: copied raw, already in these delimiters.
            header.sending_application,
            header.sending_facility,
            timestamp,
            "",
            cs.join(["ACK", header.trigger_event, "ACK"]),
            escape(control_id, header),
            header.processing_id or "P",
            header.version or "2.5",
        ]
        + ([""] * 5 + [escape(charset, header)] if charset else [])
    )
    # HL7 v2.5 section 2.9.2 (original acknowledgment rules) and 2.14.8 (MSA): MSA-1 is the
    # acknowledgment code and MSA-2 echoes the MSH-10 of the message being acknowledged.
    msa_fields = ["MSA", ack_code, header.control_id]
    if error_text:
        # MSA-3 is deprecated since v2.4 but still the only place older senders read; ST max 80.
        msa_fields.append(escape(error_text[:80], header))
    segments = [msh, fs.join(msa_fields)]
    if error_code:
        text = error_text or ERROR_TEXTS.get(error_code, "")
        # ERR-3 (CWE: identifier^text^coding system) and ERR-4 severity, HL7 v2.5 section 2.15.5.
        err3 = cs.join([escape(error_code, header), escape(text, header), "HL70357"])
        segments.append(fs.join(["ERR", "", "", err3, severity]))
    return "\r".join(segments)


def build_nak(
    *,
    sending_application: str,
    sending_facility: str,
    error_code: str,
    error_text: str = "",
    control_id: str,
    timestamp: str,
    ack_code: str = "AR",
    severity: str = "E",
    version: str = "2.5",
    charset: str = "",
) -> str:
    """A minimal ACK (MSA-2 empty) for a frame without a usable MSH, in standard delimiters."""
    return build_ack(
        Header(version=version, processing_id="P"),
        ack_code,
        sending_application=sending_application,
        sending_facility=sending_facility,
        error_code=error_code,
        error_text=error_text,
        severity=severity,
        control_id=control_id,
        timestamp=timestamp,
        charset=charset,
    )


def parse_ack(message: str | bytes) -> AckResult:
    """Read MSA (and ERR) of an acknowledgement, tolerantly; HeaderError 100 if it has no MSA."""
    if isinstance(message, bytes):
        try:
            text, header = decode_message(message)
        except HeaderError as exc:
            # A sloppy ACK (no MSH-10, unknown charset...) still says what it acknowledges.
            charset = exc.header.charset if exc.header else ""
            raw = message.removeprefix(_BOM)
            try:
                text = raw.decode(codec_for(charset))
            except (HeaderError, UnicodeDecodeError):
                text = raw.decode("utf-8", errors="replace")
            header = exc.header or STANDARD_HEADER
    else:
        text = message.lstrip("\ufeff \t\r\n")
        header = STANDARD_HEADER
        if text.startswith("MSH"):
            try:
                header = _parse_msh(_split_segments(text)[0])
            except HeaderError:
                pass
    fs, cs, ss = header.field_sep, header.component_sep, header.subcomponent_sep
    msa: list[str] | None = None
    err: list[str] | None = None
    for segment in _split_segments(text):
        name = segment[:3]
        if name == "MSA" and msa is None:
            msa = segment.split(fs)
        elif name == "ERR" and err is None:
            err = segment.split(fs)
    if msa is None:
        raise HeaderError(SEGMENT_SEQUENCE_ERROR, "acknowledgement has no MSA segment")

    def field(fields: list[str] | None, n: int) -> str:
        return fields[n] if fields is not None and n < len(fields) else ""

    error_code, error_text = "", ""
    err3 = field(err, 3).split(header.repetition_sep, 1)[0].split(cs)
    msa6 = field(msa, 6).split(cs)
    err1 = field(err, 1).split(header.repetition_sep, 1)[0].split(cs)
    if err3[0]:
        error_code = err3[0]
        error_text = err3[1] if len(err3) > 1 else ""
        error_text = error_text or field(err, 8)  # ERR-8 user message
    elif msa6[0]:
        error_code, error_text = msa6[0], msa6[1] if len(msa6) > 1 else ""
    elif len(err1) > 3 and err1[3]:
        # v2.3 ERR-1 (ELD): segment^sequence^field^code&text&table
        code_parts = err1[3].split(ss)
        error_code = code_parts[0]
        error_text = code_parts[1] if len(code_parts) > 1 else ""
    return AckResult(
        code=field(msa, 1).strip().upper(),
        control_id=unescape(field(msa, 2).strip(), header),
        text=unescape(field(msa, 3), header),
        error_code=unescape(error_code.strip(), header),
        error_text=unescape(error_text, header),
    )
