"""What registration tells patients in the wallet, and the HIS refusal reasons it names."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session

from adapter.identity.notices import tell_account
from adapter.mappings import Mappings
from adapter.models import (
    Booking,
    Slot,
)
from adapter.money import yuan

logger = logging.getLogger(__name__)


PATIENT_MESSAGES = {
    "confirmed": "您已成功预约{department}{doctor}医生{time}的号，请按时就诊。",
    "rejected": "很抱歉，医院未能确认您的预约（{reason}），挂号费¥{fee}将原路退回。",
    "cancelled": "您已取消{department}{doctor}医生{time}的预约，挂号费¥{fee}将原路退回。",
    "hospital_cancelled": "因医院停诊，您预约的{department}{doctor}医生{time}的号已取消，"
                          "挂号费¥{fee}将原路退回。",
    "late_payment": "您的支付晚于预约保留时间且号源已无剩余，挂号费¥{fee}将原路退回。",
    "cancel_refused": "医院未能取消您{department}{doctor}医生{time}的预约（{reason}），"
                      "预约仍然有效。如需帮助请联系医院。",
}

HIS_REASONS = {
    "SLOT_TAKEN": "号源已被占用",
    "CLINIC_CLOSED": "医生停诊",
    "204": "医院系统中找不到该号源或就诊人",
}


def patient_message(kind: str, booking: Booking, mappings: Mappings, tz: dt.tzinfo,
                    slot: Slot | None = None, reason: str = "") -> str:
    """The wallet message telling a patient what happened to their booking (zh-CN)."""
    department = mappings.departments.get(booking.department_code)
    doctor = mappings.doctors.get(booking.doctor_code)
    when = slot.start_at.astimezone(tz).strftime("%m月%d日%H:%M") if slot else \
        booking.visit_date.strftime("%m月%d日")
    return PATIENT_MESSAGES[kind].format(
        department=department.name_zh if department else booking.department_code,
        doctor=doctor.name_zh if doctor else booking.doctor_code,
        time=when, fee=yuan(booking.fee_fen), reason=reason or "医院拒绝",
    )


def tell(session: Session, booking: Booking, kind: str, mappings: Mappings, tz: dt.tzinfo,
         now: dt.datetime, reason: str = "") -> None:
    """Queue the wallet message of ``kind`` to the booking's account, linking to its page."""
    slot = session.get(Slot, booking.slot_id)
    tell_account(session, booking.wallet_account_id,
                 patient_message(kind, booking, mappings, tz, slot, reason),
                 f"/h5/bookings/{booking.public_id}", now, message_kind=kind)
