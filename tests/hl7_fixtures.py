"""HL7 v2.5 messages for tests, written out as a HIS would send them, and checks tests share."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from adapter.his.header import Header, decode_message
from adapter.his.segments import MessageError


def hl7apy_valid(text: str) -> None:
    """The encoded text itself parses in hl7apy v2.5 STRICT and validates."""
    assert "\n" not in text and text.count("\r") >= 1
    msg = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert msg.validate()
    assert msg.to_er7() == text  # our writer and hl7apy encode alike


def header_of(text: str) -> Header:
    """The MSH of a message as the receiving end reads it."""
    return decode_message(text.encode("utf-8"))[1]


def error_code_of(call: Callable[[], object]) -> str:
    """The HL7 table 0357 code of the MessageError that ``call`` raises."""
    with pytest.raises(MessageError) as exc:
        call()
    return exc.value.code


def oru_r01(
    control_id: str,
    *,
    sender: str = "LIS^DEMO_HOSPITAL",
    name: str = "张三",
    charset: str = "",
    segments: tuple[str, ...] = ("PID", "OBR", "OBX"),
    observations: int = 3,
) -> str:
    """An ORU^R01 lab result (full blood count) with Chinese text; \\r separated."""
    body = {
        "PID": f"PID|1||P000123^^^HIS^PI~110101199003077777^^^CHN^NNCHN||{name}^^^^^^L||"
               "19900307|M|||北京市东城区^^北京^^100010^CHN||13800138000",
        "OBR": "OBR|1|ORD123|LAB456|CBC^血常规^L|||20261126083000+0800|||||||||"
               "D001^王医生||||||20261126093000+0800|||F",
    }
    lines = [
        f"MSH|^~\\&|{sender.replace('^', '|')}|FHA|WALLET|20261126093100+0800||ORU^R01^ORU_R01|"
        f"{control_id}|P|2.5|||AL|NE|CHN|{charset}",
    ]
    for segment in segments:
        if segment == "OBX":
            for i in range(1, observations + 1):
                lines.append(
                    f"OBX|{i}|NM|WBC^白细胞计数^L||{5 + i}.2|10*9/L|3.5-9.5|N|||F|||"
                    "20261126090000+0800"
                )
        else:
            lines.append(body[segment])
    return "\r".join(lines)
