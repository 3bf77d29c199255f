"""ORU^R01 read tolerantly: the public samples and generated variants (encodings, repetitions,
escape sequences, Z-segments, missing optional segments) all become reports, and every order
of each is stored, matched or held for staff; none is dropped and none raises."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select, update

from adapter.his.header import decode_message
from adapter.his.inbound import ordering_key, read_event
from adapter.his.profile import Hl7Profile
from adapter.models import Patient, Result, ResultObservation
from adapter.ports import ResultsReported, ResultStatus
from adapter.results.applying import apply_results
from adapter.results.policy import ReleasePolicy
from tests.conftest import SAMPLES
from tests.unit.conftest import TZ, resident_id

DOC_TYPES = {"NNCHN": "RESIDENT_ID", "PPN": "PASSPORT"}
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
MSH = "MSH|^~\\&|LIS|DEMO_HOSPITAL|FHA|WALLET|20300307093100+0800||ORU^R01^ORU_R01|{cid}|P|2.5"
PID = "PID|1||P000001^^^HIS^PI~{doc}^^^CHN^NNCHN||测试1^^^^^^L||19800101|M"
OBR = "OBR|1|ORD1|LAB{n}|{kind}^{kind_name}^L|||20300307083000+0800|||||||||D001^王医生" \
      "||||||20300307093000+0800|||{status}"


def obx(n: int, value_type: str, value: str, *, units: str = "", ref: str = "",
        flags: str = "", status: str = "F", code: str = "WBC^白细胞计数^L") -> str:
    return f"OBX|{n}|{value_type}|{code}||{value}|{units}|{ref}|{flags}|||{status}|||" \
           "20300307090000+0800"


def message(*body: str, cid: str = "V1", msh: str = MSH, sep: str = "\r") -> str:
    return sep.join([msh.format(cid=cid), *body])


def standard(*observations: str, status: str = "F", kind: str = "CBC", n: int = 1) -> list[str]:
    return [PID.format(doc=resident_id(1)),
            OBR.format(n=n, kind=kind, kind_name="血常规", status=status),
            *(observations or (obx(1, "NM", "6.2", units="10*9/L", ref="3.5-9.5", flags="N"),))]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# name -> (raw bytes, what the first observation's text is, or None to skip that check)
VARIANTS: dict[str, tuple[bytes, str | None]] = {
    "standard": (message(*standard()).encode(), "6.2"),
    "lf separators": (message(*standard(), sep="\n").encode(), "6.2"),
    "crlf separators": (message(*standard(), sep="\r\n").encode(), "6.2"),
    "utf-8 bom": (b"\xef\xbb\xbf" + message(*standard()).encode(), "6.2"),
    "gb18030": (message(*standard(obx(1, "ST", "阴性")),
                        msh=MSH + "|||AL|NE|CHN|GB 18030-2000").encode("gb18030"), "阴性"),
    "utf-8 declared": (message(*standard(obx(1, "ST", "阴性")),
                               msh=MSH + "|||AL|NE|CHN|UNICODE UTF-8").encode(), "阴性"),
    "version 2.3": (message(*standard(), msh=MSH.replace("|2.5", "|2.3")).encode(), "6.2"),
    "version 2.5.1 no structure": (
        message(*standard(), msh=MSH.replace("ORU^R01^ORU_R01", "ORU^R01")
                .replace("|2.5", "|2.5.1")).encode(), "6.2"),
    "other escape character": (
        message(*standard(obx(1, "TX", "A!T!B")), msh=MSH.replace("^~\\&", "^~!&")).encode(),
        "A&B"),
    "escape sequences": (
        message(*standard(obx(1, "TX", "1\\F\\2\\S\\3\\T\\4\\R\\5\\E\\6"))).encode(),
        "1|2^3&4~5\\6"),
    "hex escapes": (message(*standard(obx(1, "FT", "a\\X0D\\\\X0A\\b"))).encode(), "a\r\nb"),
    "formatted text line breaks": (
        message(*standard(obx(1, "FT", "第一行\\.br\\第二行"))).encode(), "第一行\n第二行"),
    "highlighting dropped": (message(*standard(obx(1, "FT", "\\H\\重要\\N\\"))).encode(), "重要"),
    "text repetitions": (message(*standard(obx(1, "TX", "一~二~三"))).encode(), "一\n二\n三"),
    "numeric repetitions": (message(*standard(obx(1, "NM", "27~25"))).encode(), "27; 25"),
    "several abnormal flags": (message(*standard(obx(1, "NM", "12.5", flags="L~A"))).encode(),
                               "12.5"),
    "structured numeric comparator": (message(*standard(obx(1, "SN", "<^0.5"))).encode(),
                                      "<0.5"),
    "structured numeric ratio": (message(*standard(obx(1, "SN", "^1^:^128"))).encode(),
                                 "1:128"),
    "structured numeric range": (message(*standard(obx(1, "SN", "^10^-^20"))).encode(),
                                 "10-20"),
    "structured numeric plain": (message(*standard(obx(1, "SN", "^182"))).encode(), "182"),
    "coded with text": (message(*standard(obx(1, "CWE", "260385009^阴性^SCT"))).encode(), "阴性"),
    "coded without text": (message(*standard(obx(1, "CE", "NEG"))).encode(), "NEG"),
    "pdf report": (message(*standard(obx(1, "ED", f"LIS^AP^PDF^Base64^{b64(PDF)}",
                                         code="RPT^影像报告^L"), kind="CT")).encode(), None),
    "pdf with wrapped base64": (message(*standard(obx(
        1, "ED", f"^application^pdf^Base64^{b64(PDF)[:20]}\\X0A\\{b64(PDF)[20:]}"),
        kind="CT")).encode(), None),
    "unreadable base64": (message(*standard(obx(1, "ED", "^AP^PDF^Base64^###"))).encode(), None),
    "empty value": (message(*standard(obx(1, "NM", ""))).encode(), ""),
    "number with a sign": (message(*standard(obx(1, "NM", "+3.0"))).encode(), "+3.0"),
    "number that is not one": (message(*standard(obx(1, "NM", "<5"))).encode(), "<5"),
    "z segments": (message(PID.format(doc=resident_id(1)), "ZPI|1|会员|VIP",
                           OBR.format(n=1, kind="CBC", kind_name="血常规", status="F"),
                           "ZDS|1.2.3^LIS^Application^DICOM", obx(1, "NM", "6.2"),
                           "ZXX|anything").encode(), "6.2"),
    "optional segments present": (message(
        PID.format(doc=resident_id(1)), "PV1|1|O|MZ-PED", "ORC|RE|ORD1|LAB1",
        OBR.format(n=1, kind="CBC", kind_name="血常规", status="F"),
        "NTE|1|L|标本轻度溶血", obx(1, "NM", "6.2"), "NTE|1||复查",
        "SPM|1|S1||BLD").encode(), "6.2"),
    "no obr-25 (status from obx-11)": (message(
        *standard(obx(1, "NM", "6.2", status="F"), status="")).encode(), "6.2"),
    "obx before its obr": (message(
        PID.format(doc=resident_id(1)), obx(1, "NM", "6.2"),
        OBR.format(n=1, kind="CBC", kind_name="血常规", status="F")).encode(), "6.2"),
    "obx without any obr": (message(PID.format(doc=resident_id(1)), obx(1, "NM", "6.2"))
                            .encode(), "6.2"),
    "several orders": (message(*standard(), OBR.format(n=2, kind="LFT", kind_name="肝功能",
                                                       status="F"),
                               obx(1, "NM", "35", code="ALT^丙氨酸氨基转移酶^L")).encode(),
                       "6.2"),
    "two patients": (message(*standard(), "PID|2||P000002^^^HIS^PI||测试2||19800101|F",
                             OBR.format(n=9, kind="CBC", kind_name="血常规", status="F"),
                             obx(1, "NM", "5.0")).encode(), "6.2"),
    "no pid": (message(OBR.format(n=1, kind="CBC", kind_name="血常规", status="F"),
                       obx(1, "NM", "6.2")).encode(), "6.2"),
    "document only in pid-3": (message(
        f"PID|1||{resident_id(1)}^^^CHN^NNCHN||测试1||19800101|M",
        OBR.format(n=1, kind="CBC", kind_name="血常规", status="F"), obx(1, "NM", "6.2"))
        .encode(), "6.2"),
    "another assigning authority": (message(
        "PID|1||P000001^^^OTHER^MR||测试1||19800101|M",
        OBR.format(n=1, kind="CBC", kind_name="血常规", status="F"), obx(1, "NM", "6.2"))
        .encode(), "6.2"),
    "western name": (message("PID|1||P000001^^^HIS^PI||DUCK^DONALD^D||19241010|M",
                             *standard()[1:]).encode(), "6.2"),
    "bad birth date": (message("PID|1||P000001^^^HIS^PI||测试1||1980130|M",
                               *standard()[1:]).encode(), "6.2"),
    "deleted observation": (message(*standard(obx(1, "NM", "6.2"),
                                              obx(2, "NM", "9.9", status="D"))).encode(), "6.2"),
    "cancelled order without results": (message(
        PID.format(doc=resident_id(1)),
        OBR.format(n=1, kind="CBC", kind_name="血常规", status="X")).encode(), None),
    "correction": (message(*standard(obx(1, "NM", "7.1", status="C"), status="C")).encode(),
                   "7.1"),
    "preliminary": (message(*standard(obx(1, "NM", "7.1", status="P"), status="P")).encode(),
                    "7.1"),
    "trailing whitespace and empty lines": (
        (message(*standard()) + "\r\r\n  \r").encode(), "6.2"),
    "unterminated fields": (message(PID.format(doc=resident_id(1)),
                                    "OBR|1|ORD1|LAB1|CBC", "OBX|1|NM|WBC||6.2").encode(), "6.2"),
}


def read(raw: bytes, profile: Hl7Profile | None = None) -> ResultsReported:
    event = read_event(raw, TZ, lambda code: 0, profile=profile or Hl7Profile(),
                       document_types_by_hl7=DOC_TYPES)
    assert isinstance(event, ResultsReported)
    return event


def test_there_are_at_least_thirty_variants():
    assert len(VARIANTS) >= 30


@pytest.fixture
def patient(hospital):
    account_id, patient_id = hospital.patient(1)
    with hospital.runtime.session_factory.begin() as session:
        session.execute(update(Patient).where(Patient.id == patient_id)
                        .values(his_patient_id="P000001"))
    return account_id


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_is_read_and_every_order_stored(hospital, patient, name):
    raw, first_text = VARIANTS[name]
    event = read(raw)
    orders = [order for report in event.reports for order in report.orders]
    assert orders
    if first_text is not None:
        assert orders[0].observations[0].text == first_text
    runtime = hospital.runtime
    with runtime.session_factory.begin() as session:
        touched = apply_results(session, event, ReleasePolicy(), runtime.protector,
                                hospital.clock.now())
    assert len(set(touched)) == len(orders)  # none dropped
    with runtime.session_factory() as session:
        states = set(session.scalars(select(Result.state)))
    assert states <= {"released", "pending", "unmatched", "withdrawn"}


def test_values_are_decimal_strings_never_floats():
    [order] = read(VARIANTS["standard"][0]).reports[0].orders
    assert order.observations[0].number == "6.2"
    assert read(VARIANTS["number with a sign"][0]).reports[0].orders[0].observations[0] \
        .number == "3.0"
    assert read(VARIANTS["number that is not one"][0]).reports[0].orders[0].observations[0] \
        .number == ""
    sn = read(VARIANTS["structured numeric comparator"][0]).reports[0].orders[0].observations[0]
    assert (sn.comparator, sn.number) == ("<", "0.5")


def test_the_identity_and_order_fields_are_read():
    event = read(VARIANTS["standard"][0])
    [report] = event.reports
    assert (report.his_patient_id, report.name, report.birth_date) == \
        ("P000001", "测试1", dt.date(1980, 1, 1))
    assert (report.document_type, report.document_number) == ("RESIDENT_ID", resident_id(1))
    [order] = report.orders
    assert (order.placer_order, order.filler_order, order.kind, order.kind_name) == \
        ("ORD1", "LAB1", "CBC", "血常规")
    assert order.observed_at == dt.datetime(2030, 3, 7, 8, 30, tzinfo=TZ)
    assert order.status is ResultStatus.FINAL
    assert order.ordering_provider == "D001"  # OBR-16.1: whose page it shows on
    [wbc] = order.observations
    assert (wbc.value_type, wbc.code, wbc.name, wbc.units, wbc.reference_range,
            wbc.abnormal_flags, wbc.status) == \
        ("NM", "WBC", "白细胞计数", "10*9/L", "3.5-9.5", ("N",), "F")
    assert (event.control_id, event.sender) == ("V1", "LIS^DEMO_HOSPITAL")


def test_statuses_follow_obr_25():
    assert read(VARIANTS["correction"][0]).reports[0].orders[0].status is ResultStatus.CORRECTED
    assert read(VARIANTS["preliminary"][0]).reports[0].orders[0].status is \
        ResultStatus.PRELIMINARY
    assert read(VARIANTS["cancelled order without results"][0]).reports[0].orders[0].status \
        is ResultStatus.CANCELLED


def test_a_pdf_is_decoded_and_typed_by_its_bytes():
    for name in ("pdf report", "pdf with wrapped base64"):
        attachment = read(VARIANTS[name][0]).reports[0].orders[0].observations[0].attachment
        assert (attachment.content_type, attachment.data, attachment.problem) == \
            ("application/pdf", PDF, "")
    bad = read(VARIANTS["unreadable base64"][0]).reports[0].orders[0].observations[0]
    assert bad.attachment.problem == "unreadable" and bad.attachment.data == b""
    fake = message(*standard(obx(1, "ED", f"^AP^PDF^Base64^{b64(b'MZ not a pdf')}")))
    assert read(fake.encode()).reports[0].orders[0].observations[0].attachment.content_type \
        == "application/octet-stream"


def test_a_pdf_over_the_cap_is_not_kept():
    capped = Hl7Profile(result_attachment_max_bytes=len(PDF) - 1)
    attachment = read(VARIANTS["pdf report"][0], capped).reports[0].orders[0] \
        .observations[0].attachment
    assert (attachment.problem, attachment.data) == ("too_large", b"")


def test_a_message_with_neither_obr_nor_obx_is_refused_for_staff():
    from adapter.ports import InboundRefused

    with pytest.raises(InboundRefused) as refused:
        read_event(message(PID.format(doc=resident_id(1))).encode(), TZ, lambda c: 0,
                   profile=Hl7Profile(), document_types_by_hl7=DOC_TYPES)
    assert resident_id(1) not in str(refused.value) and "测试1" not in str(refused.value)


def _oru_samples() -> list[Path]:
    found = []
    for path in sorted(SAMPLES.glob("*.hl7")):
        if decode_message(path.read_bytes())[1].message_type == "ORU^R01":
            found.append(path)
    return found


ORU_SAMPLES = _oru_samples() if SAMPLES.is_dir() else []


@pytest.mark.skipif(not ORU_SAMPLES, reason="the public HL7 samples are not available")
@pytest.mark.parametrize("path", ORU_SAMPLES, ids=lambda p: p.name)
def test_every_public_sample_is_read_and_held_for_staff(hospital, patient, path):
    event = read(path.read_bytes())
    orders = [order for report in event.reports for order in report.orders]
    runtime = hospital.runtime
    with runtime.session_factory.begin() as session:
        touched = apply_results(session, event, ReleasePolicy(), runtime.protector,
                                hospital.clock.now())
    assert orders and len(set(touched)) == len(orders)
    with runtime.session_factory() as session:
        rows = list(session.scalars(select(Result)))
        assert {r.state for r in rows} == {"unmatched"}  # nobody here is our patient
        assert session.scalar(select(ResultObservation.id).limit(1)) is not None


def test_the_ordering_key_is_the_patient_else_the_order_and_tolerates_every_variant():
    profile = Hl7Profile()

    def key(raw: bytes) -> str:
        text, header = decode_message(raw)
        return ordering_key(text, header, profile)

    keys = {name: key(raw) for name, (raw, _) in VARIANTS.items()}
    by_his_id = keys["standard"]
    # One patient's messages share a key whatever their encoding, orders or statuses...
    for name in ("lf separators", "crlf separators", "utf-8 bom", "gb18030", "version 2.3",
                 "z segments", "several orders", "correction", "preliminary",
                 "cancelled order without results", "other escape character"):
        assert keys[name] == by_his_id, name
    # ...another authority's id or a document still names one patient; without a PID, the
    # order number keeps the order's messages together.
    assert keys["another assigning authority"] not in ("", by_his_id)
    assert keys["document only in pid-3"] not in ("", by_his_id)
    no_pid = message(OBR.format(n=1, kind="CBC", kind_name="血常规", status="C"),
                     obx(1, "NM", "6.3"), cid="V2").encode()
    assert keys["no pid"] == key(no_pid) != by_his_id
    assert key(message("OBX|1|NM|WBC||6.2").encode()) == ""  # nothing to keep it by
    other_sender = VARIANTS["standard"][0].replace(b"|LIS|", b"|PACS|")
    assert key(other_sender) != by_his_id
