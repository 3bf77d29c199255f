"""No input, however broken, makes the listener's handler raise or answer with nothing."""

from __future__ import annotations

import random

from sqlalchemy import func, select

from adapter.his.header import parse_ack
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
