"""The listener's group commit: messages that arrive together are stored in one transaction,
and none is acknowledged before its batch committed (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from adapter.his.header import parse_ack
from adapter.his.listener import GroupCommitter, InboundHandler
from adapter.his.profile import Hl7Profile
from adapter.models import InboundMessage, InboundStatus
from tests.hl7_fixtures import oru_r01


def _rows(session_factory):
    with session_factory() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def test_messages_arriving_while_a_batch_commits_go_together_in_the_next():
    batches: list[list[str]] = []
    first_writing, release = threading.Event(), threading.Event()

    def write(batch):
        batches.append([item.digest for item in batch])
        if len(batches) == 1:
            first_writing.set()
            release.wait(5)

    committer = GroupCommitter(write)

    def store(name):
        committer.store(_item(name))

    first = threading.Thread(target=store, args=("a",))
    first.start()
    assert first_writing.wait(5)
    others = [threading.Thread(target=store, args=(name,)) for name in "bcdef"]
    for thread in others:
        thread.start()
    while committer._queue.qsize() < 5:  # all five wait behind the first batch
        threading.Event().wait(0.01)
    release.set()
    for thread in [first, *others]:
        thread.join(5)
    assert batches[0] == ["a"]
    assert sorted(batches[1]) == list("bcdef")


def test_when_a_batch_cannot_be_stored_every_message_in_it_is_refused():
    def write(batch):
        raise OSError("database down")

    committer = GroupCommitter(write)
    with pytest.raises(OSError):
        committer.store(_item("a"))


def test_one_batch_tells_a_retransmission_from_a_reused_control_id(session_factory):
    handler = InboundHandler(session_factory, Hl7Profile())
    first = handler.prepare(oru_r01("GC1").encode())
    again = handler.prepare(oru_r01("GC1").encode())
    reused = handler.prepare(oru_r01("GC1", name="李四").encode())
    other = handler.prepare(oru_r01("GC2").encode())
    batch = [first, again, reused, other]
    handler._write_batch(batch)
    assert again.retransmission and again.ack == first.ack
    assert parse_ack(reused.ack).code == "AE" and parse_ack(reused.ack).error_code == "205"
    assert parse_ack(other.ack).code == "AA"
    assert [(r.control_id, r.status) for r in _rows(session_factory)] == [
        ("GC1", InboundStatus.RECEIVED), ("GC1", InboundStatus.ERROR),
        ("GC2", InboundStatus.RECEIVED)]


def test_a_message_that_cannot_be_stored_does_not_fail_the_rest_of_its_batch(session_factory):
    handler = InboundHandler(session_factory, Hl7Profile())
    good = handler.prepare(oru_r01("GC3").encode())
    bad = handler.prepare(oru_r01("GC4").encode())
    bad.row.raw = None  # NOT NULL: this one insert fails
    handler._write_batch([good, bad])
    assert bad.error is not None and good.error is None
    assert parse_ack(good.ack).code == "AA"
    assert [r.control_id for r in _rows(session_factory)] == ["GC3"]


def test_a_batch_stored_by_another_listener_meanwhile_answers_with_the_stored_acks(
        session_factory):
    elsewhere = InboundHandler(session_factory, Hl7Profile())
    here = InboundHandler(session_factory, Hl7Profile())
    stored = elsewhere.prepare(oru_r01("GC5").encode())
    racing = here.prepare(oru_r01("GC5").encode())
    fresh = here.prepare(oru_r01("GC6").encode())
    # Both looked before either stored: the unique constraint settles it.
    looks = []
    original_earlier = here._earlier

    def earlier(session, headers):
        looks.append(len(headers))
        return {} if len(looks) == 1 else original_earlier(session, headers)

    here._earlier = earlier
    elsewhere._write_batch([stored])
    here._write_batch([racing, fresh])
    assert racing.error is None and racing.ack == stored.ack and racing.retransmission
    assert fresh.error is None and parse_ack(fresh.ack).code == "AA"
    assert sorted(r.control_id for r in _rows(session_factory)) == ["GC5", "GC6"]


def _item(name: str):
    from adapter.his.listener import _Pending

    return _Pending(None, name, InboundMessage(), b"")
