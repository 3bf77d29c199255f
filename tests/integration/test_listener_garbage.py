"""No input, however broken, makes the listener's handler raise or answer with nothing."""

from __future__ import annotations

import random

from sqlalchemy import func, select

from adapter.his.header import HeaderError, _parse_msh, parse_ack
from adapter.his.listener import InboundHandler
from adapter.his.profile import Hl7Profile
from adapter.models import InboundMessage
from tests.hl7_fixtures import oru_r01


def _mutations(rng: random.Random, count: int):
    base = oru_r01("FUZZ").encode()
    pieces = [b"MSH|", b"|", b"^", b"~", b"\\", b"&", b"\r", b"\n", b"\xff", b"\xe4\xb8",
              b"\x00", b"\x0b", b"\x1c", "张".encode(), b"MSH|^~\\&", b"MSH"]
    for i in range(count):
        kind = i % 4
        if kind == 0:  # random bytes
            yield bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        elif kind == 1:  # truncated message
            yield base[: rng.randrange(0, len(base))]
        elif kind == 2:  # random splices of delimiters into a real message
            data = bytearray(base)
            for _ in range(rng.randrange(1, 12)):
                at = rng.randrange(len(data))
                data[at:at] = rng.choice(pieces)
            yield bytes(data)
        else:  # header-only variants
            yield b"MSH" + bytes(rng.choice(b"|^~\\&#$%") for _ in range(rng.randrange(1, 40)))


def test_every_mutation_gets_an_ack_and_is_kept(session_factory):
    handler = InboundHandler(session_factory, Hl7Profile())
    rng = random.Random(20261126)
    payloads = list(_mutations(rng, 400))
    for payload in payloads:
        ack = handler(payload)
        assert parse_ack(ack).code in ("AA", "AE", "AR"), payload
    with session_factory() as session:
        stored = session.scalar(select(func.count()).select_from(InboundMessage))
    # Nothing is dropped; a readable retransmission is stored once, while a frame with no
    # usable header cannot be told from a new one and is kept every time.
    assert len(set(payloads)) <= stored <= len(payloads)


def _ascii_msh10(payload: bytes) -> str | None:
    """MSH-10 as a sender reads its own message: None when MSH is unreadable or not plain."""
    first = payload.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n").replace(b"\n", b"\r")
    first = first.split(b"\r", 1)[0]
    if not first.startswith(b"MSH") or not first.isascii() or b"\x00" in first[:9]:
        return None
    try:
        header = _parse_msh(first.decode("ascii"))
    except HeaderError:
        return None
    identity = header.control_id + header.sending_application + header.sending_facility
    if "\x00" in identity or header.escape_char in header.control_id:
        return None
    return header.control_id or None


def test_every_answer_to_a_readable_header_cites_its_control_id(session_factory):
    handler = InboundHandler(session_factory, Hl7Profile())
    rng = random.Random(20261202)
    checked = 0
    for payload in _mutations(rng, 600):
        control_id = _ascii_msh10(payload)
        ack = parse_ack(handler(payload))
        if control_id is not None:
            checked += 1
            assert ack.control_id == control_id, payload
            assert ack.code in ("AA", "AE", "AR") and (ack.code == "AA" or ack.error_code)
    assert checked > 100


def test_a_nul_in_the_body_is_answered_by_its_control_id(session_factory):
    handler = InboundHandler(session_factory, Hl7Profile())
    payload = oru_r01("NUL0001").replace("OBX|1|", "OBX|1|\x00").encode()
    ack = parse_ack(handler(payload))
    assert (ack.code, ack.control_id, ack.error_code) == ("AE", "NUL0001", "102")
    [row] = _stored(session_factory)
    assert (row.sender, row.control_id, row.message_type) == (
        "LIS^DEMO_HOSPITAL", "NUL0001", "ORU^R01")


def test_a_nul_inside_msh10_cannot_be_cited(session_factory):
    handler = InboundHandler(session_factory, Hl7Profile())
    ack = parse_ack(handler(oru_r01("NUL\x000002").encode()))
    assert (ack.code, ack.control_id) == ("AE", "")
    [row] = _stored(session_factory)
    assert row.control_id is None and row.status == "error"


def test_an_undecodable_body_is_kept_under_its_id_and_its_retransmission_recognised(
        session_factory):
    handler = InboundHandler(session_factory, Hl7Profile())
    payload = oru_r01("BAD0001").encode().replace("张".encode(), b"\xff\xfe")
    first = handler(payload)
    ack = parse_ack(first)
    assert (ack.code, ack.control_id, ack.error_code) == ("AE", "BAD0001", "102")
    assert handler(payload) == first  # the stored ACK, not a new one
    other = payload.replace(b"\xff\xfe", b"\xff\xfd")
    assert parse_ack(handler(other)).code == "AE"  # another message under that id: kept too
    rows = _stored(session_factory)
    assert [(r.sender, r.control_id, r.status) for r in rows] == [
        ("LIS^DEMO_HOSPITAL", "BAD0001", "error")] * 2
    assert rows[0].raw == payload


def _stored(session_factory) -> list[InboundMessage]:
    with session_factory() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))
