"""What the staff pages say about roles, result states and times, in the reader's language."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import g
from flask_babel import format_datetime, get_locale, gettext

from adapter.i18n import N_
from adapter.models import ResultState
from adapter.staff.accounts import Permission, StaffRole
from adapter.web.admin.guard import bp, runtime

ROLES = {
    StaffRole.ADMIN: N_("管理员"),
    StaffRole.OPERATOR: N_("运维人员"),
    StaffRole.VIEWER: N_("只读用户"),
    StaffRole.DOCTOR: N_("医生"),
}
STATES = {
    ResultState.UNMATCHED: N_("待人工核对"),
    ResultState.PENDING: N_("初步结果"),
    ResultState.HELD: N_("待医生发布"),
    ResultState.RELEASED: N_("已发布"),
    ResultState.WITHDRAWN: N_("已撤回"),
}


def role_name(role: str) -> str:
    """A role as the page shows it."""
    return gettext(ROLES[role]) if role in ROLES else role


def state_name(state: str) -> str:
    """A result state as the page shows it."""
    return gettext(STATES[state]) if state in STATES else state


def when(moment: dt.datetime | None) -> str:
    """A time in the hospital's zone (Flask-Babel's default zone), to the minute."""
    return format_datetime(moment, "yyyy-MM-dd HH:mm") if moment else ""


def hour_label(moment: dt.datetime) -> str:
    """The hour of a time in the hospital's zone ("08:00")."""
    return format_datetime(moment, "HH:mm")


def doctor_name(code: str) -> str:
    """A HIS doctor code with the doctor's name from mappings/doctors.csv, when known."""
    if not code:
        return ""
    doctor = runtime().mappings.doctors.get(code)
    if doctor is None:
        return code
    english = str(get_locale()) == "en"
    return f"{doctor.name_en if english else doctor.name_zh} ({code})"


@bp.context_processor
def _context() -> dict[str, Any]:
    user = g.get("staff")
    return {
        "staff_user": user,
        "staff_may": lambda permission: user is not None and user.may(Permission(permission)),
        "role_name": role_name, "state_name": state_name, "when": when,
        "doctor_name": doctor_name, "hour_label": hour_label,
    }
