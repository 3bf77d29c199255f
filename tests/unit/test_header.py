"""The listener's MSH fast path and ACK building/reading, no sockets."""

import os
import time
from pathlib import Path

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from adapter.his.header import (
    CHARSETS,
    AckResult,
    Header,
    HeaderError,
    build_ack,
    build_nak,
    decode_message,
    encode_message,
    escape,
    parse_ack,
    unescape,
)

ORU = (
    "MSH|^~\\&|LIS|HOSP|FHA|WALLET|20240301083000||ORU^R01^ORU_R01|MSG0001|P|2.5|||AL|NE|CHN|{cs}\r"
    "PID|1||P123^^^HIS^PI||{name}||19800101|F\r"
    "OBR|1||R1|GLU^Glucose\r"
    "OBX|1|NM|GLU^Glucose||5.6|mmol/L|3.9-6.1|N|||F\r"
)


def oru(name="Zhang^San", charset="UNICODE UTF-8", codec="utf-8", sep="\r"):
    return ORU.format(name=name, cs=charset).replace("\r", sep).encode(codec)


def ack_kwargs(**extra):
    return {
        "sending_application": "FHA",
        "sending_facility": "WALLET",
        "control_id": "ACK0001",
        "timestamp": "20240301083001",
        **extra,
    }


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
def test_segment_terminators_normalised(sep):
    text, header = decode_message(oru(sep=sep))
    assert text.split("\r")[0].startswith("MSH|")
    assert [s[:3] for s in text.split("\r")] == ["MSH", "PID", "OBR", "OBX"]
    assert "\n" not in text
    assert header.message_type == "ORU^R01"
    assert header.structure == "ORU_R01"
    assert header.control_id == "MSG0001"
    assert header.version == "2.5"
    assert header.processing_id == "P"
    assert header.sender == "LIS^HOSP"
    assert header.timestamp == "20240301083000"


def test_bom_and_leading_newlines():
    _text, header = decode_message(b"\xef\xbb\xbf\r\n" + oru())
    assert header.control_id == "MSG0001"


def test_custom_delimiters():
    raw = (
        b"MSH#$%&~#LIS$X#HOSP#FHA#W#20240301##ORU$R01#C-9#T#2.5\r"
        b"PID#1##P1$$$HIS$PI##Wang$Wu\r"
    )
    text, header = decode_message(raw)
    assert (header.field_sep, header.component_sep, header.repetition_sep) == ("#", "$", "%")
    assert (header.escape_char, header.subcomponent_sep) == ("&", "~")
    assert header.message_type == "ORU^R01"
    assert header.sender == "LIS^HOSP"
    assert header.control_id == "C-9"
    assert text.endswith("Wang$Wu")


def test_utf8_chinese_name():
    text, header = decode_message(oru(name="张^三丰"))
    assert "张^三丰" in text
    assert header.charset == "UNICODE UTF-8"


def test_gb18030_declared_message():
    # "亅" encodes as 0x81 0x7C in GB18030: its trail byte is "|" and shifts a byte-level split.
    raw = (
        "MSH|^~\\&|LIS|亅医院|FHA|WALLET|20240301||ORU^R01|G1|P|2.5|||||CHN|GB18030\r"
        "PID|1||P1^^^HIS^PI||李^四\r"
    ).encode("gb18030")
    assert b"\x81|" in raw
    text, header = decode_message(raw)
    assert header.charset == "GB18030"
    assert header.sending_facility == "亅医院"
    assert header.control_id == "G1"
    assert "李^四" in text


def test_gb_18030_2000_spelling():
    _text, header = decode_message(oru(name="王^五", charset="GB 18030-2000", codec="gb18030"))
    assert CHARSETS[header.charset] == "gb18030"


def test_undeclared_charset_defaults_to_utf8():
    text, header = decode_message(oru(name="赵^六", charset=""))
    assert header.charset == ""
    assert "赵^六" in text


def test_invalid_bytes_for_declared_charset():
    with pytest.raises(HeaderError) as info:
        decode_message(oru(name="张^三", charset="ASCII"))
    assert info.value.code == "102"
    assert info.value.header is not None and info.value.header.control_id == "MSG0001"


def test_gb18030_bytes_in_undeclared_message():
    with pytest.raises(HeaderError) as info:
        decode_message(oru(name="张^三", charset="", codec="gb18030"))
    assert info.value.code == "102"


def test_unknown_charset():
    with pytest.raises(HeaderError) as info:
        decode_message(oru(charset="ISO IR87"))
    assert info.value.code == "102"
    assert info.value.header.control_id == "MSG0001"  # enough to answer with MSA-2


def test_missing_control_id():
    with pytest.raises(HeaderError) as info:
        decode_message(b"MSH|^~\\&|LIS|H|FHA|W|20240301||ORU^R01||P|2.5\rPID|1\r")
    assert info.value.code == "101"


def test_missing_message_type():
    with pytest.raises(HeaderError) as info:
        decode_message(b"MSH|^~\\&|LIS|H|FHA|W|20240301|||C1|P|2.5\r")
    assert info.value.code == "101"
    assert info.value.header.control_id == "C1"


@pytest.mark.parametrize("raw", [b"PID|1||42\rMSH|^~\\&|", b"", b"\x00\x01garbage", b"hello"])
def test_not_starting_with_msh(raw):
    with pytest.raises(HeaderError) as info:
        decode_message(raw)
    assert info.value.code == "100"


def test_bad_encoding_characters():
    with pytest.raises(HeaderError) as info:
        decode_message(b"MSH|^^\\&|LIS|H|FHA|W|20240301||ORU^R01|C1|P|2.5\r")
    assert info.value.code == "102"


def test_decode_is_fast():
    raw = oru(name="张^三") * 1  # about the size of a small ORU
    raw = raw + b"OBX|2|TX|NOTE||" + b"x" * 2000 + b"\r"
    start = time.perf_counter()
    for _ in range(500):
        decode_message(raw)
    assert (time.perf_counter() - start) / 500 < 0.001


def test_ack_is_valid_v25_for_hl7apy():
    _text, header = decode_message(oru())
    ack = build_ack(header, "AA", **ack_kwargs(charset="UNICODE UTF-8"))
    message = parse_message(ack, validation_level=VALIDATION_LEVEL.STRICT)
    assert message.validate()
    assert message.msh.msh_9.value == "ACK^R01^ACK"
    assert message.msa.msa_2.value == "MSG0001"
    assert message.msh.msh_5.value == "LIS"
    assert message.msh.msh_6.value == "HOSP"
    assert message.msh.msh_18.value == "UNICODE UTF-8"


def test_error_ack_is_valid_v25_for_hl7apy():
    _text, header = decode_message(oru())
    ack = build_ack(header, "AE", **ack_kwargs(error_code="207", error_text="db down"))
    message = parse_message(ack, validation_level=VALIDATION_LEVEL.STRICT)
    assert message.validate()
    assert message.err.err_3.value == "207^db down^HL70357"
    assert message.err.err_4.value == "E"


def test_ack_fields():
    _text, header = decode_message(oru())
    ack = build_ack(header, "AR", **ack_kwargs(error_code="200", severity="E"))
    msh, msa, err = ack.split("\r")
    assert msh == (
        "MSH|^~\\&|FHA|WALLET|LIS|HOSP|20240301083001||ACK^R01^ACK|ACK0001|P|2.5"
    )
    assert msa == "MSA|AR|MSG0001"
    assert err == "ERR|||200^Unsupported message type^HL70357|E"


def test_ack_in_the_senders_delimiters_with_escaped_text():
    raw = b"MSH#$%&~#LIS#HOSP#FHA#W#20240301##ORU$R01#C-9#T#2.4\r"
    _text, header = decode_message(raw)
    ack = build_ack(header, "AE", **ack_kwargs(error_code="102", error_text="bad # $ % & ~ |"))
    assert ack.startswith("MSH#$%&~#FHA#WALLET#LIS#HOSP#")
    assert "#ACK$R01$ACK#ACK0001#T#2.4" in ack
    assert "ERR###102$bad &F& &S& &R& &E& &T& |$HL70357#E" in ack
    result = parse_ack(ack)
    assert result == AckResult("AE", "C-9", "bad # $ % & ~ |", "102", "bad # $ % & ~ |")


def test_ack_without_version_says_25():
    header = Header(message_code="ADT", trigger_event="A01", control_id="X1")
    assert "|ACK^A01^ACK|ACK0001|P|2.5" in build_ack(header, "AA", **ack_kwargs())


def test_ack_rejects_unknown_codes():
    with pytest.raises(ValueError):
        build_ack(Header(control_id="1"), "OK", **ack_kwargs())
    with pytest.raises(ValueError):
        build_ack(Header(control_id="1"), "AE", **ack_kwargs(error_code="207", severity="X"))


def test_nak():
    nak = build_nak(**ack_kwargs(error_code="100", error_text="not HL7"))
    result = parse_ack(nak)
    assert result.code == "AR"
    assert result.control_id == ""
    assert result.error_code == "100"
    assert result.error_text == "not HL7"
    assert nak.split("\r")[1] == "MSA|AR||not HL7"
    assert parse_message(nak, validation_level=VALIDATION_LEVEL.TOLERANT).msh.msh_12.value == "2.5"


@pytest.mark.parametrize("code", ["AA", "AE", "AR", "CA", "CE", "CR"])
def test_parse_ack_codes(code):
    result = parse_ack(f"MSH|^~\\&|HIS|H|FHA|W|20240301||ACK|A1|P|2.5\rMSA|{code}|C1\r")
    assert result.code == code and result.control_id == "C1"
    assert result.accepted == (code in ("AA", "CA"))


def test_parse_ack_v23_styles():
    msa6 = parse_ack(b"MSH|^~\\&|HIS|H|FHA|W|2024||ACK|A1|P|2.3\nMSA|AE|C1|oops||0|207^busy\n")
    assert (msa6.error_code, msa6.error_text, msa6.text) == ("207", "busy", "oops")
    eld = parse_ack(
        "MSH|^~\\&|HIS|H|FHA|W|2024||ACK|A1|P|2.3\rMSA|AR|C2\rERR|PID^1^3^101&Missing&HL70357"
    )
    assert (eld.error_code, eld.error_text) == ("101", "Missing")


def test_parse_ack_tolerates_sloppy_bytes():
    # No MSH-10, Latin-1 text undeclared: still tells what it acknowledges.
    result = parse_ack(b"\xef\xbb\xbfMSH|^~\\&|HIS|H|FHA|W|2024||ACK||P|2.5\rMSA|AA|C7|caf\xe9\r")
    assert (result.code, result.control_id) == ("AA", "C7")


def test_parse_ack_in_gb18030():
    ack = "MSH|^~\\&|HIS|H|FHA|W|2024||ACK|A1|P|2.5|||||CHN|GB18030\rMSA|AE|C1|号源已满\r"
    assert parse_ack(ack.encode("gb18030")).text == "号源已满"


def test_parse_ack_without_msa():
    with pytest.raises(HeaderError) as info:
        parse_ack(b"MSH|^~\\&|HIS|H|FHA|W|2024||ACK|A1|P|2.5\r")
    assert info.value.code == "100"


def test_escape_round_trip():
    text = "a|b^c&d~e\\f\rg\nh 张三"
    escaped = escape(text)
    assert escaped == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X0D\\g\\X0A\\h 张三"
    assert unescape(escaped) == text


def test_unescape_other_sequences():
    assert unescape("\\H\\bold\\N\\ line\\.br\\two \\Zvendor\\ \\XE5BC A0\\") == (
        "bold line\ntwo \\Zvendor\\ \\XE5BC A0\\"
    )
    assert unescape("\\XE5BCA0\\") == "张"


def test_encode_message_replaces_what_the_charset_cannot_carry():
    assert encode_message("MSA|AE|1|满", "ASCII") == b"MSA|AE|1|?"
    assert encode_message("满", "GB18030") == "满".encode("gb18030")
    with pytest.raises(HeaderError):
        encode_message("x", "EBCDIC")


def _samples_dir() -> Path:
    configured = os.environ.get("ADAPTER_HL7_SAMPLES")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "hl7-samples"


SAMPLES = sorted(_samples_dir().glob("*.hl7")) if _samples_dir().is_dir() else []


@pytest.mark.skipif(not SAMPLES, reason="shared HL7 samples not present")
def test_every_shared_sample_decodes():
    for path in SAMPLES:
        text, header = decode_message(path.read_bytes())
        assert header.message_code and header.control_id, path.name
        assert len(header.message_code) == 3, path.name
        assert "\n" not in text, path.name
        ack = build_ack(header, "AA", **ack_kwargs())
        assert parse_ack(ack).control_id == header.control_id, path.name


def test_control_ids_of_two_sources_made_in_one_second_never_repeat():
    from adapter.his.control_ids import ControlIds

    first, second = ControlIds("M"), ControlIds("M")
    ids = [first.next(), second.next(), first.next(), second.next()]
    assert len(set(ids)) == 4
