"""Use case: move personal data to the active data key and the current blind-index key.

Run after ``hospital-adapter data-key add`` (or after an index key rotation, see
adapter/protection.py). Each batch commits on its own, so it can stop and restart any time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from adapter.identity.patients import DOCUMENT_CONTEXT, PHONE_CONTEXT
from adapter.models import Patient
from adapter.protection import DataProtector

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RotationReport:
    """How many rows were looked at and rewritten."""

    examined: int
    reencrypted: int
    reindexed: int


def rotate_personal_data(
    session_factory: sessionmaker, protector: DataProtector, batch_size: int = 500
) -> RotationReport:
    """Re-encrypt every blob not under the active key and refresh every stale blind index."""
    examined = reencrypted = reindexed = 0
    last_id = 0
    while True:
        with session_factory.begin() as session:
            patients = list(session.scalars(
                select(Patient).where(Patient.id > last_id).order_by(Patient.id)
                .limit(batch_size).with_for_update()
            ))
            if not patients:
                break
            for patient in patients:
                examined += 1
                number = protector.decrypt(patient.document_number_enc, DOCUMENT_CONTEXT)
                if protector.needs_rotation(patient.document_number_enc):
                    patient.document_number_enc = protector.encrypt(number, DOCUMENT_CONTEXT)
                    reencrypted += 1
                if patient.phone_enc and protector.needs_rotation(patient.phone_enc):
                    phone = protector.decrypt(patient.phone_enc, PHONE_CONTEXT)
                    patient.phone_enc = protector.encrypt(phone, PHONE_CONTEXT)
                index = protector.blind_index(number, patient.document_type)
                if patient.document_index != index:
                    patient.document_index = index
                    reindexed += 1
            last_id = patients[-1].id
    report = RotationReport(examined, reencrypted, reindexed)
    logger.info("personal data rotation: %s", report)
    return report
