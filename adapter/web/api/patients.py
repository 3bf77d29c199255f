"""Patients: the signed-in user and the dependants they book for."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from adapter.identity.dependants import Dependant
from adapter.identity.patients import add_dependant, list_patients
from adapter.models import Patient
from adapter.refusals import Refusal
from adapter.web.api.errors import now, refused, runtime, signed_in, today
from adapter.web.api.schemas import NewPatient
from adapter.web.api.validation import body

bp = Blueprint("patients", __name__)


def patient_json(patient: Patient) -> dict[str, Any]:
    """A patient as the pages show them: masked document and phone, never the full number."""
    return {
        "id": patient.id,
        "relation": patient.relation,
        "name": patient.name,
        "document_type": patient.document_type,
        "document_number": patient.document_masked,
        "birth_date": patient.birth_date.isoformat() if patient.birth_date else None,
        "sex": patient.sex,
        "phone": patient.phone_masked,
    }


@bp.get("/patients")
@signed_in
def get_patients(account_id: int) -> ResponseReturnValue:
    """The signed-in user's patients (self and dependants)."""
    with runtime().session_factory() as db:
        return jsonify(patients=[patient_json(p) for p in list_patients(db, account_id)])


@bp.post("/patients")
@signed_in
def post_patient(account_id: int) -> ResponseReturnValue:
    """Add a dependant (a child needs relation "child" and the guardian's consent)."""
    new = body(NewPatient)
    dependant = Dependant(
        name=new.name, document_type=new.document_type, document_number=new.document_number,
        relation=new.relation, guardian_consent=new.guardian_consent, birth_date=new.birth_date,
    )
    rt = runtime()
    try:
        with rt.session_factory.begin() as db:
            patient = add_dependant(db, rt.protector, account_id, dependant, today(),
                                    phone=new.phone, now=now())
            result = patient_json(patient)
    except Refusal as refusal:
        return refused(refusal)
    return jsonify(result), 201
