"""Departments, doctors and slots: what a patient can book, and when it opens."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from adapter.money import yuan
from adapter.registration.slots import browse_slots
from adapter.web.api.errors import locale, now, runtime
from adapter.web.api.schemas import SlotsQuery
from adapter.web.api.validation import query

bp = Blueprint("slots", __name__)


def name_of(item: Any) -> str:  # noqa: ANN401 - a mapping row with name_zh/name_en
    """A department's or doctor's name in the patient's language."""
    return item.name_en if locale() == "en" else item.name_zh


def title_of(doctor: Any) -> str:  # noqa: ANN401 - a mappings Doctor or None
    """A doctor's title in the patient's language."""
    if doctor is None:
        return ""
    return doctor.title_en if locale() == "en" else doctor.title_zh


@bp.get("/departments")
def departments() -> ResponseReturnValue:
    """Departments and their doctors, with when their slots open."""
    mappings = runtime().mappings
    return jsonify(departments=[
        {"code": d.code, "name": name_of(d), "location": d.location,
         "release_time": d.release_time.strftime("%H:%M"),
         "release_days_ahead": d.release_days_ahead,
         "doctors": [{"code": doc.code, "name": name_of(doc), "title": title_of(doc)}
                     for doc in mappings.doctors_of(d.code)]}
        for d in mappings.departments.values()
    ])


@bp.get("/slots")
def slots() -> ResponseReturnValue:
    """One day's slots of a department and/or doctor."""
    rt = runtime()
    asked = query(SlotsQuery)
    department, doctor, visit_date = asked.department, asked.doctor, asked.date
    tz, mappings = rt.config.tz, rt.mappings
    with rt.session_factory() as db:
        views = browse_slots(db, mappings, tz, visit_date=visit_date,
                             department_code=department, doctor_code=doctor, now=now())
    result = []
    for view in views:
        slot, doc = view.slot, mappings.doctors.get(view.slot.doctor_code)
        result.append({
            "id": slot.id, "department_code": slot.department_code,
            "doctor_code": slot.doctor_code, "doctor_name": name_of(doc) if doc else "",
            "doctor_title": title_of(doc),
            "start_at": slot.start_at.astimezone(tz).isoformat(),
            "end_at": slot.end_at.astimezone(tz).isoformat(),
            "fee": yuan(slot.fee_fen), "fee_fen": slot.fee_fen, "capacity": slot.capacity,
            "remaining": view.remaining, "status": view.status,
            "release_at": view.release_at.isoformat(),
        })
    return jsonify(slots=result)
