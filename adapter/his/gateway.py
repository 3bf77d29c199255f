"""HisGateway over HL7 v2.5 and MLLP: what the use cases call to reach the HIS."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TypeVar

from adapter.db import utcnow
from adapter.his import billing, patients, queue, schedule, settlement
from adapter.his.codes import APPLICATION_INTERNAL_ERROR, ERROR_ACK_CODES
from adapter.his.control_ids import ControlIds
from adapter.his.header import HeaderError, decode_message, encode_message, parse_ack
from adapter.his.mllp_client import AckMismatch, MllpClient, MllpClientPool
from adapter.his.profile import Hl7Profile
from adapter.his.segments import MessageError, refusal_of
from adapter.mappings import Mappings
from adapter.ports import (
    AppointmentRequest,
    ArrivalNotice,
    HisOutcome,
    HisRefused,
    HisUnavailable,
    PatientIdentity,
    QueueSnapshot,
    SettlementList,
    SlotRecord,
)
from adapter.ports_billing import (
    ChargeLine,
    CommitRequest,
    PreSettled,
    PreSettleRequest,
    Receipt,
    SettlementAtHis,
    SettlementRecord,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

# HL7 table 0357 code 207 "application internal error" with no business reason in ERR-5: the
# HIS failed, it did not refuse. The outcome is unknown, so the caller retries (same placer id)
# instead of compensating. A 207 with an ERR-5 code (SLOT_TAKEN...) is a real refusal.
TRANSIENT_ERROR_CODES = frozenset({APPLICATION_INTERNAL_ERROR})


class MllpHisGateway:
    """The HIS reached over persistent MLLP connections (thread-safe)."""

    def __init__(
        self,
        client: MllpClient | MllpClientPool,
        profile: Hl7Profile,
        mappings: Mappings,
        tz: dt.tzinfo,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._client = client
        self._profile = profile
        self._mappings = mappings
        self._tz = tz
        self._clock = clock
        self._ids = ControlIds("M")
        self._by_hl7 = {d.hl7_type: d.code for d in mappings.document_types.values()}

    @classmethod
    def from_runtime(cls, runtime: object) -> MllpHisGateway:
        """Build from a Runtime: ADAPTER_HIS_MLLP, its timeouts and ADAPTER_HIS_CONNECTIONS."""
        config = runtime.config  # type: ignore[attr-defined]
        client = MllpClientPool(
            config.his_mllp.host,
            config.his_mllp.port,
            config.his_connections,
            connect_timeout=config.his_connect_timeout,
            ack_timeout=config.his_ack_timeout,
        )
        return cls(client, runtime.profile, runtime.mappings, config.tz)  # type: ignore[attr-defined]

    def close(self) -> None:
        """Close the MLLP connections."""
        self._client.close()

    # -- plumbing --------------------------------------------------------------------------

    def _exchange(self, build: Callable[[str, dt.datetime], str]) -> tuple[str, str]:
        """Send one message, return (control id, response text) once MSA-2 matches."""
        control_id = self._ids.next()
        text = build(control_id, self._clock().astimezone(self._tz))
        response = self._client.send(encode_message(text, self._profile.charset))
        try:
            response_text, _header = decode_message(response)
        except HeaderError as exc:
            raise HisUnavailable(f"unreadable answer from the HIS ({exc.code})") from None
        ack = parse_ack(response)
        if ack.control_id != control_id:
            raise AckMismatch(control_id, ack.control_id)
        if ack.code in ERROR_ACK_CODES and ack.error_code in TRANSIENT_ERROR_CODES:
            _code, application_code, _text = refusal_of(response_text)
            if not application_code:
                raise HisUnavailable(f"HIS application error {ack.error_code}")
        return control_id, response_text

    def _hl7_type(self, document_type: str) -> str:
        try:
            return self._mappings.document_types[document_type].hl7_type
        except KeyError:
            raise ValueError(f"document type {document_type!r} is not in the mappings") from None

    # -- HisGateway ----------------------------------------------------------------------

    def find_patient(self, document_type: str, document_number: str) -> PatientIdentity | None:
        """QBP^Q22 -> RSP^K22; the candidate whose document matches exactly, if any."""
        hl7_type = self._hl7_type(document_type)
        _cid, response = self._exchange(
            lambda cid, now: patients.build_qbp_q22(
                self._profile, cid, now, query_tag=cid, hl7_id_type=hl7_type,
                document_number=document_number,
            )
        )
        try:
            candidates = patients.parse_rsp_k22(response, self._by_hl7, self._profile)
        except MessageError as exc:
            raise HisRefused(HisOutcome(False, error_code=exc.code, error_text=exc.text)) from None
        for patient in candidates:
            if (patient.document_type, patient.document_number) == (document_type,
                                                                    document_number):
                return patient
        return None

    def register_patient(self, patient: PatientIdentity) -> PatientIdentity:
        """ADT^A28, then QBP^Q22 for the id the HIS assigned."""
        hl7_type = self._hl7_type(patient.document_type)
        _cid, response = self._exchange(
            lambda cid, now: patients.build_adt_a28(
                self._profile, cid, now, patient=patient, hl7_id_type=hl7_type
            )
        )
        ack = parse_ack(response)
        if not ack.accepted:
            raise HisRefused(HisOutcome(False, error_code=ack.error_code, error_text=ack.text))
        found = self.find_patient(patient.document_type, patient.document_number)
        if found is None or not found.his_patient_id:
            raise HisUnavailable("the HIS accepted the patient but does not return an id yet")
        return found

    def book_appointment(self, request: AppointmentRequest) -> HisOutcome:
        """SRM^S01 -> SRR^S01; accepted with the filler appointment id (SCH-2) or refused."""
        department = self._mappings.departments.get(request.department_code)
        location = department.location if department else request.department_code
        cid, response = self._exchange(
            lambda cid, now: schedule.build_srm_s01(
                self._profile, cid, now, request=request, his_location=location
            )
        )
        return self._srr(response, cid)

    def cancel_appointment(
        self, placer_appointment_id: str, filler_appointment_id: str, his_slot_id: str
    ) -> HisOutcome:
        """SRM^S04 -> SRR^S04, or SIU^S15 -> ACK, as the hospital's profile says."""
        build = (
            schedule.build_srm_s04 if self._profile.cancel_message == "SRM^S04"
            else schedule.build_siu_s15
        )
        cid, response = self._exchange(
            lambda cid, now: build(
                self._profile, cid, now, placer_appointment_id=placer_appointment_id,
                filler_appointment_id=filler_appointment_id, his_slot_id=his_slot_id,
            )
        )
        if self._profile.cancel_message == "SRM^S04":
            return self._srr(response, cid)
        ack = parse_ack(response)
        return HisOutcome(
            ack.accepted, filler_appointment_id=filler_appointment_id,
            error_code=ack.error_code, error_text=ack.text,
        )

    def query_slot_pool(self, start: dt.date, end: dt.date) -> list[SlotRecord]:
        """SQM^S25 -> SQR^S25 for [start, end]."""
        _cid, response = self._exchange(
            lambda cid, now: schedule.build_sqm_s25(
                self._profile, cid, now, query_tag=cid, start=start, end=end
            )
        )
        try:
            return schedule.parse_sqr_s25(response, self._tz, self._mappings.fee_fen)
        except MessageError as exc:
            raise HisRefused(HisOutcome(False, error_code=exc.code, error_text=exc.text)) from None

    def settlement_list(self, day: dt.date) -> SettlementList:
        """QBP^Q13 -> RTB^K13: the HIS's settlements of one day."""
        _cid, response = self._exchange(
            lambda cid, now: settlement.build_qbp_q13(self._profile, cid, now, query_tag=cid,
                                                      day=day)
        )
        try:
            return settlement.parse_rtb_k13(response, day, self._tz)
        except MessageError as exc:
            raise HisRefused(HisOutcome(False, error_code=exc.code, error_text=exc.text)) from None

    def patient_arrived(self, notice: ArrivalNotice) -> HisOutcome:
        """ADT^A10 -> ACK: accepted, or refused with the HIS's code."""
        _cid, response = self._exchange(
            lambda cid, now: queue.build_adt_a10(self._profile, cid, now, notice=notice))
        ack = parse_ack(response)
        return HisOutcome(ack.accepted, filler_appointment_id=notice.filler_appointment_id,
                          error_code=ack.error_code, error_text=ack.text)

    def query_queue(self, doctor_code: str, visit_date: dt.date, session: str) -> QueueSnapshot:
        """SQM^S25 (QRD-9 QUEUE) -> SQR^S25: the session's queue as the HIS has it now."""
        taken_at = self._clock()
        _cid, response = self._exchange(lambda cid, now: queue.build_queue_query(
            self._profile, cid, now, doctor_code=doctor_code, visit_date=visit_date,
            session=session))
        try:
            return queue.parse_queue_snapshot(
                response, self._profile.queue_statuses, doctor_code=doctor_code,
                visit_date=visit_date, session=session, taken_at=taken_at)
        except MessageError as exc:
            raise HisRefused(HisOutcome(False, error_code=exc.code, error_text=exc.text)) from None
    # -- fee payment (adapter.ports_billing.BillingHis) -----------------------------------

    def _billing(self, event: str, params: list[tuple[str, str]],
                 parse: Callable[[str], T]) -> T:
        """One query of the billing profile: its answer read, or HisRefused with the HIS's
        ERR-5 code (and ERR-6, the charge it is about), or HisUnavailable when the answer is
        unusable (the outcome is unknown)."""
        _cid, response = self._exchange(
            lambda cid, now: billing.build_query(self._profile, cid, now, event, params))
        try:
            return parse(response)
        except MessageError as exc:
            app_code = getattr(exc, "app_code", None)
            if app_code is None:
                raise HisUnavailable(f"unusable RSP^{event} ({exc.code})") from None
            raise HisRefused(HisOutcome(False, error_code=app_code or exc.code,
                                        error_text=exc.text,
                                        details={"charge": exc.parameter})) from None

    def query_charges(self, his_patient_id: str, visit_number: str = "") -> list[ChargeLine]:
        """QBP^ZB1 -> RSP^ZB1: the patient's unpaid charges."""
        params = [("PATIENT", his_patient_id)] + ([("VISIT", visit_number)] if visit_number
                                                  else [])
        return self._billing("ZB1", params, lambda text: billing.parse_charges(
            text, self._tz, his_patient_id))

    def pre_settle(self, request: PreSettleRequest) -> PreSettled:
        """QBP^ZB2 -> RSP^ZB2: the charges locked until lock_until, with the HIS's amounts."""
        params = [("PATIENT", request.his_patient_id), ("SETTLEMENT", request.settlement_no),
                  *(("CHARGE", c) for c in request.his_charge_ids),
                  ("LOCK_UNTIL", billing.time_param(request.lock_until.astimezone(self._tz)))]
        return self._billing("ZB2", params, lambda text: billing.parse_presettled(
            text, request.settlement_no))

    def commit_settlement(self, request: CommitRequest) -> Receipt:
        """QBP^ZB3 -> RSP^ZB3 (ZRC): the payment posted, its receipt."""
        paid_at = request.paid_at.astimezone(self._tz) if request.paid_at else None
        params = [("PATIENT", request.his_patient_id), ("SETTLEMENT", request.settlement_no),
                  ("OUT_TRADE_NO", request.out_trade_no), ("TRADE_NO", request.trade_no),
                  ("TOTAL", billing.yuan_text(request.total_fen)),
                  ("SELF_PAY", billing.yuan_text(request.self_pay_fen)),
                  ("FUND", billing.yuan_text(request.insurance_fund_fen)),
                  ("ACCOUNT", billing.yuan_text(request.personal_account_fen))]
        if paid_at is not None:
            params.append(("PAID_AT", billing.time_param(paid_at)))
        return self._billing("ZB3", params, billing.parse_receipt)

    def settlement_status(self, settlement_no: str) -> SettlementAtHis:
        """QBP^ZB4 -> RSP^ZB4: committed (with its receipt), locked, or not found."""
        return self._billing("ZB4", [("SETTLEMENT", settlement_no)], billing.parse_status)

    def release_settlement(self, settlement_no: str) -> None:
        """QBP^ZB5 -> RSP^ZB5: the lock released (unknown settlements are fine)."""
        self._billing("ZB5", [("SETTLEMENT", settlement_no)], billing.parse_released)

    def bill_settlement_list(self, day: dt.date) -> list[SettlementRecord]:
        """QBP^ZB6 -> RSP^ZB6: the HIS's payments and refunds of a day (its zone)."""
        return self._billing("ZB6", [("DATE", billing.day_param(day))],
                             lambda text: billing.parse_settlement_list(text, self._tz))

    def _srr(self, response: str, control_id: str) -> HisOutcome:
        try:
            return schedule.parse_srr(response, control_id)
        except MessageError as exc:
            if "SRR" not in response.split("\r", 1)[0]:
                # A plain ACK (AE/AR) instead of an SRR: the HIS refused before booking.
                ack = parse_ack(response)
                return HisOutcome(False, error_code=ack.error_code, error_text=ack.text)
            raise HisUnavailable(f"unusable SRR from the HIS ({exc.code})") from None
