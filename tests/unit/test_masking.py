"""Kept messages shown to admins: every ID number masked, the rest as received."""

from adapter.his.masking import mask_id_numbers
from tests.hl7_fixtures import oru_r01


def test_pid_3_documents_and_any_resident_id_shaped_token_are_masked():
    message = oru_r01("M1")
    assert "110101199003077777" in message
    masked = mask_id_numbers(message, {"NNCHN", "PPN"})
    assert "110101199003077777" not in masked and "110***********7777" in masked
    assert "P000123^^^HIS^PI" in masked  # the HIS's own patient id stays readable
    assert masked.count("\r") == message.count("\r")


def test_a_passport_in_pid_3_and_a_number_in_another_segment_are_masked():
    message = ("MSH|^~\\&|HIS|H|FHA|W|20300101||ADT^A28|C1|P|2.5\r"
               "PID|1||P1^^^HIS^PI~E12345678^^^CHN^PPN||测试\r"
               "NK1|1|家长||||||||||||||||||||||||||||||11010119800101001X\r")
    masked = mask_id_numbers(message, {"PPN"})
    assert "E12345678" not in masked and "E*****678" in masked
    assert "11010119800101001X" not in masked
    assert mask_id_numbers("trade_no=2030&out_trade_no=RB1") == "trade_no=2030&out_trade_no=RB1"
