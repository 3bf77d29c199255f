"""MLLP framing on bytes, no sockets (HL7 v2.5 Appendix C, MLLP release 1)."""

import pytest

from adapter.his.mllp import (
    EMPTY,
    END_BLOCK,
    JUNK,
    OVERSIZE,
    START_BLOCK,
    TRUNCATED,
    FrameDecoder,
    FramingError,
    frame,
)

MSG = b"MSH|^~\\&|HIS|H|FHA|W|20240101120000||ORU^R01|1|P|2.5\rPID|1||42\r"


def test_frame_wraps_payload():
    assert frame(b"abc") == b"\x0babc\x1c\x0d"
    assert START_BLOCK == b"\x0b" and END_BLOCK == b"\x1c\r"


def test_one_frame():
    decoder = FrameDecoder()
    assert decoder.feed(frame(MSG)) == [MSG]
    assert decoder.pending == 0 and not decoder.in_frame


def test_many_frames_in_one_read():
    payloads = [MSG.replace(b"|1|", f"|{i}|".encode()) for i in range(5)]
    assert FrameDecoder().feed(b"".join(frame(p) for p in payloads)) == payloads


@pytest.mark.parametrize("cut", range(1, len(frame(MSG)) * 2))
def test_two_frames_split_at_every_position(cut):
    data = frame(MSG) + frame(b"second")
    decoder = FrameDecoder()
    events = decoder.feed(data[:cut])
    events += decoder.feed(data[cut:])
    assert events == [MSG, b"second"]
    assert decoder.pending == 0


def test_byte_by_byte():
    decoder = FrameDecoder()
    events = []
    for byte in frame(MSG) + frame(MSG):
        events += decoder.feed(bytes([byte]))
    assert events == [MSG, MSG]


def test_end_block_split_across_reads():
    decoder = FrameDecoder()
    assert decoder.feed(START_BLOCK + b"abc\x1c") == []
    assert decoder.pending == 4  # "abc" and the 0x1C that may start the end block
    assert decoder.feed(b"\x0d") == [b"abc"]
    assert decoder.pending == 0


def test_lone_end_byte_is_data():
    # Only 0x1C 0x0D ends a block; a 0x1C followed by anything else stays in the payload.
    decoder = FrameDecoder()
    assert decoder.feed(START_BLOCK + b"a\x1cb" + END_BLOCK) == [b"a\x1cb"]
    assert decoder.feed(START_BLOCK + b"a\x1c") == []
    assert decoder.feed(b"b" + END_BLOCK) == [b"a\x1cb"]


def test_junk_before_start_is_reported_once_per_run():
    decoder = FrameDecoder()
    events = decoder.feed(b"garbage")
    events += decoder.feed(b"more garbage" + frame(MSG) + b"junk again" + frame(MSG))
    assert events == [FramingError(JUNK), MSG, FramingError(JUNK), MSG]


def test_whitespace_between_frames_is_not_junk():
    assert FrameDecoder().feed(frame(MSG) + b"\r\n" + frame(MSG) + b"\n") == [MSG, MSG]


def test_oversize_frame_is_discarded_and_next_frame_decoded():
    decoder = FrameDecoder(max_frame=10)
    events = decoder.feed(START_BLOCK + b"x" * 8)
    events += decoder.feed(b"y" * 8)
    assert decoder.pending == 0
    events += decoder.feed(b"z" * 100 + END_BLOCK + frame(b"ok"))
    assert events == [FramingError(OVERSIZE), b"ok"]


def test_oversize_frame_ended_by_new_start_block():
    decoder = FrameDecoder(max_frame=4)
    assert decoder.feed(START_BLOCK + b"123456" + frame(b"ok")) == [FramingError(OVERSIZE), b"ok"]


def test_frame_of_exactly_max_size_is_accepted():
    assert FrameDecoder(max_frame=4).feed(frame(b"1234")) == [b"1234"]


def test_start_inside_frame_reports_truncated_and_starts_over():
    decoder = FrameDecoder()
    events = decoder.feed(START_BLOCK + b"partial" + START_BLOCK + b"whole" + END_BLOCK)
    assert events == [FramingError(TRUNCATED), b"whole"]


def test_empty_frame():
    assert FrameDecoder().feed(frame(b"") + frame(b"x")) == [FramingError(EMPTY), b"x"]


def test_discard_pending():
    decoder = FrameDecoder()
    decoder.feed(START_BLOCK + b"half a message")
    assert decoder.in_frame and decoder.pending == 14
    assert decoder.discard_pending() == 14
    assert not decoder.in_frame and decoder.pending == 0
    assert decoder.feed(frame(b"next")) == [b"next"]
