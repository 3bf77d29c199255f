"""The simulated hospital's laboratory and imaging (LIS, PACS): results for the day's visits,
sent to the adapter's listener as ORU^R01 over MLLP, as a real LIS sends them.

Each visitor of the day (a patient with an appointment today, or one the adapter found in or
added to the HIS today) gets their blood count of three months ago (the history the trends
start from), then the day's blood count, a biochemistry panel with some abnormal values (the
day's first visitor also one critical potassium) and a chest CT report whose PDF travels in an
ED observation; on the next round the blood count is corrected (OBR-25 C). The mirror of
adapter.his.results; docs/hl7-profile.md describes the fields.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from adapter.his.header import escape
from adapter.his.profile import Hl7Profile
from adapter.his.segments import Grp, Seg, build_message, dtm, pid_segment
from adapter.ports import HisUnavailable, PatientIdentity

logger = logging.getLogger(__name__)

ORU = "ORU^R01^ORU_R01"
_PDF_PLACE = "REPORTFILE"


@dataclass(frozen=True)
class Analyte:
    """One value of a panel: code, names, value (a decimal string), units, range, flag."""

    code: str
    name: str
    value: str
    units: str
    reference_range: str
    flag: str = "N"


BLOOD_COUNT = ("CBC", "血常规", (
    Analyte("WBC", "白细胞计数", "6.8", "10*9/L", "3.5-9.5"),
    Analyte("RBC", "红细胞计数", "4.52", "10*12/L", "4.3-5.8"),
    Analyte("HGB", "血红蛋白", "128", "g/L", "130-175", "L"),
    Analyte("PLT", "血小板计数", "412", "10*9/L", "125-350", "H"),
    Analyte("NEUT%", "中性粒细胞百分比", "0.62", "1", "0.40-0.75"),
))
# The same patient's blood count three months earlier: the values the trends start from.
EARLIER_VALUES = (("5.9", "N"), ("4.61", "N"), ("134", "N"), ("298", "N"), ("0.58", "N"))
# The correction the laboratory sends on the next round: the haemoglobin was re-measured.
CORRECTED_HGB = Analyte("HGB", "血红蛋白", "131", "g/L", "130-175")
BIOCHEMISTRY = ("BMP", "生化全项", (
    Analyte("GLU", "葡萄糖", "7.2", "mmol/L", "3.9-6.1", "H"),
    Analyte("ALT", "丙氨酸氨基转移酶", "35", "U/L", "9-50"),
    Analyte("CREA", "肌酐", "88", "umol/L", "57-111"),
    Analyte("NA", "钠", "139", "mmol/L", "137-147"),
    Analyte("K", "钾", "4.2", "mmol/L", "3.5-5.3"),
))
CRITICAL_K = Analyte("K", "钾", "6.9", "mmol/L", "3.5-5.3", "HH")
IMAGING = ("CT", "胸部CT平扫")
IMPRESSION = "双肺纹理清晰，未见明确实质性病变。\\.br\\纵隔居中，心影大小正常。"
REPORT_LINES = ("Chest CT (plain scan) - imaging report",
                "Findings: both lungs clear; no focal lesion.",
                "Mediastinum central; heart size normal.",
                "Impression: no abnormality seen.")


def report_pdf(lines: tuple[str, ...]) -> bytes:
    """A one-page PDF with ``lines`` of ASCII text.

    Written by hand, not with a PDF library: the simulator needs one small, valid sample
    file, and the adapter only stores and serves the bytes (PDF 1.4, ISO 32000-1 7.5: header,
    objects, cross-reference table with each object's byte offset, trailer).
    """
    text = "".join(f"({line.replace('(', '[').replace(')', ']')}) Tj T* " for line in lines)
    stream = f"BT /F1 12 Tf 16 TL 56 780 Td {text}ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def _obx(n: int, analyte: Analyte, status: str, at: dt.datetime) -> Seg:
    return Seg("OBX", {1: str(n), 2: "NM", 3: f"{escape(analyte.code)}^{escape(analyte.name)}^L",
                       5: analyte.value, 6: escape(analyte.units),
                       7: escape(analyte.reference_range), 8: analyte.flag, 11: status,
                       14: dtm(at)})


def _order(n: int, placer: str, filler: str, kind: tuple[str, str], status: str,
           taken: dt.datetime, reported: dt.datetime, observations: list[Seg]) -> Grp:
    obr = Seg("OBR", {1: str(n), 2: escape(placer), 3: escape(filler),
                      4: f"{escape(kind[0])}^{escape(kind[1])}^L", 7: dtm(taken),
                      22: dtm(reported), 25: status})
    return Grp("ORU_R01_ORDER_OBSERVATION", [
        Seg("ORC", {1: "RE", 2: escape(placer), 3: escape(filler)}), obr,
        *(Grp("ORU_R01_OBSERVATION", [obx]) for obx in observations)])


def build_oru(profile: Hl7Profile, control_id: str, now: dt.datetime, patient: PatientIdentity,
              hl7_id_type: str, orders: list[Grp]) -> str:
    """One ORU^R01 about one patient (validated by hl7apy like every simulator message)."""
    body = [Grp("ORU_R01_PATIENT_RESULT", [
        Grp("ORU_R01_PATIENT", [pid_segment(profile, patient, hl7_id_type)]), *orders])]
    return build_message(profile, ORU, control_id, now, body, to_his=False)


@dataclass
class _Visit:
    patient: PatientIdentity
    day: dt.date
    number: int  # the laboratory's running number that day
    history: bool = False  # the earlier blood count sent
    sent: bool = False
    corrected: bool = False


class Laboratory:
    """The LIS and PACS: ``due(now)`` are the messages to send now, ``run`` sends them."""

    def __init__(self, visitors: Callable[[dt.date], list[PatientIdentity]],
                 profile: Hl7Profile, tz: dt.tzinfo, hl7_id_types: dict[str, str]) -> None:
        self._visitors = visitors
        self.profile = profile
        self.tz = tz
        self._hl7_id_types = hl7_id_types
        self._visits: dict[tuple[dt.date, str], _Visit] = {}
        self._lock = threading.Lock()
        self._pdf = report_pdf(REPORT_LINES)

    def due(self, now: dt.datetime) -> list[tuple[tuple[dt.date, str, str], str]]:
        """(what, message) pairs: the first results of the day's new visitors, and the
        corrections of those sent in an earlier round. ``sent(what)`` marks one delivered."""
        today = now.astimezone(self.tz).date()
        out = []
        with self._lock:
            for patient in self._visitors(today):
                key = (today, patient.his_patient_id)
                if key not in self._visits:
                    self._visits[key] = _Visit(patient, today, len(
                        [k for k in self._visits if k[0] == today]) + 1)
            for (day, his_id), visit in self._visits.items():
                if day != today:
                    continue
                if not visit.history:
                    out.append(((day, his_id, "history"), self._history(visit, now)))
                if not visit.sent:
                    out.append(((day, his_id, "first"), self._first(visit, now)))
                elif not visit.corrected:
                    out.append(((day, his_id, "correction"), self._correction(visit, now)))
        return out

    def sent(self, what: tuple[dt.date, str, str]) -> None:
        """The adapter acknowledged the message ``what`` (AA)."""
        day, his_id, step = what
        with self._lock:
            visit = self._visits[day, his_id]
            if step == "history":
                visit.history = True
            elif step == "first":
                visit.sent = True
            else:
                visit.corrected = True

    @staticmethod
    def _numbers(visit: _Visit, kind: str) -> tuple[str, str]:
        """Placer (the order as the clinic placed it) and filler (the laboratory's) numbers."""
        return (f"{visit.patient.his_patient_id}-{visit.day:%Y%m%d}-{kind}",
                f"LIS{visit.day:%Y%m%d}{visit.number:04d}{kind}")

    def _hl7_type(self, patient: PatientIdentity) -> str:
        return self._hl7_id_types.get(patient.document_type, patient.document_type)

    def _first(self, visit: _Visit, now: dt.datetime) -> str:
        taken = now - dt.timedelta(hours=1)
        chemistry = [CRITICAL_K if a.code == "K" and visit.number == 1 else a
                     for a in BIOCHEMISTRY[2]]
        imaging = [
            Seg("OBX", {1: "1", 2: "TX", 3: "IMP^影像所见^L", 5: IMPRESSION, 11: "F"}),
            Seg("OBX", {1: "2", 2: "ED", 3: "RPT^影像报告^L", 5: f"PACS^AP^PDF^Base64^{_PDF_PLACE}",
                        11: "F"}),
        ]
        orders = [
            _order(1, *self._numbers(visit, "CBC"), BLOOD_COUNT[:2], "F", taken, now,
                   [_obx(n, a, "F", now) for n, a in enumerate(BLOOD_COUNT[2], start=1)]),
            _order(2, *self._numbers(visit, "BMP"), BIOCHEMISTRY[:2], "F", taken, now,
                   [_obx(n, a, "F", now) for n, a in enumerate(chemistry, start=1)]),
            _order(3, *self._numbers(visit, "CT"), IMAGING, "F", taken, now, imaging),
        ]
        text = build_oru(self.profile, f"L{now:%y%m%d%H%M%S}{visit.number:03d}A", now,
                         visit.patient, self._hl7_type(visit.patient), orders)
        # hl7apy caps ED-5 far below any real report file (v2.5 lets OBX-5 reach 99,999
        # characters, and laboratories send PDFs larger still): it validates a placeholder,
        # and the file's base64 (no HL7 delimiter among its characters) takes its place.
        return text.replace(_PDF_PLACE, base64.b64encode(self._pdf).decode("ascii"))

    def _history(self, visit: _Visit, now: dt.datetime) -> str:
        """The blood count of the patient's visit three months ago, which the laboratory
        reports with the day's (the report page draws each value's trend from it)."""
        taken = now - dt.timedelta(days=90)
        earlier = [Analyte(a.code, a.name, value, a.units, a.reference_range, flag)
                   for a, (value, flag) in zip(BLOOD_COUNT[2], EARLIER_VALUES, strict=True)]
        placer, filler = self._numbers(visit, "CBC")
        orders = [_order(1, f"{placer}-H", f"{filler}H", BLOOD_COUNT[:2], "F", taken, taken,
                         [_obx(n, a, "F", taken) for n, a in enumerate(earlier, start=1)])]
        return build_oru(self.profile, f"L{now:%y%m%d%H%M%S}{visit.number:03d}H", now,
                         visit.patient, self._hl7_type(visit.patient), orders)

    def _correction(self, visit: _Visit, now: dt.datetime) -> str:
        taken = now - dt.timedelta(hours=1)
        values = [CORRECTED_HGB if a.code == "HGB" else a for a in BLOOD_COUNT[2]]
        orders = [_order(1, *self._numbers(visit, "CBC"), BLOOD_COUNT[:2], "C", taken, now,
                         [_obx(n, a, "C", now) for n, a in enumerate(values, start=1)])]
        return build_oru(self.profile, f"L{now:%y%m%d%H%M%S}{visit.number:03d}C", now,
                         visit.patient, self._hl7_type(visit.patient), orders)

    def run(self, send: Callable[[bytes], str], every: float, stop: threading.Event,
            now: Callable[[], dt.datetime]) -> None:
        """Every ``every`` seconds send what is due; what the adapter did not answer AA (or
        could not be reached for) is sent again in a later round."""
        while not stop.wait(every):
            for what, text in self.due(now()):
                try:
                    code = send(text.encode("utf-8"))
                except (HisUnavailable, OSError) as exc:
                    logger.info("LIS: the adapter's listener is not reachable (%s)",
                                type(exc).__name__)
                    break
                if code == "AA":
                    self.sent(what)
                    logger.info("LIS: results %s for %s sent", what[2], what[1])
                else:
                    logger.warning("LIS: results %s for %s answered %s", what[2], what[1], code)
