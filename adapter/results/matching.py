"""Whose result it is: the HIS patient id of PID-3, checked against the identity on file.

A result is never matched to a patient when the message and the identity the adapter holds
disagree: such a result is held for staff and shown to no one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.identity.documents import normalize_document_number
from adapter.identity.names import names_match
from adapter.models import Patient
from adapter.ports import ResultReport
from adapter.protection import DataProtector


@dataclass(frozen=True)
class Match:
    """The person (their document's blind index), or why the report is held for staff."""

    document_index: str | None
    hold_reason: str = ""  # a code: no_patient_id, unknown_patient, ambiguous_patient, ...


def links_of(session: Session, his_patient_ids: list[str]) -> dict[str, list[Patient]]:
    """The live links of each HIS patient id, in one query (a batch's reports at once)."""
    wanted = sorted({his_id for his_id in his_patient_ids if his_id})
    found: dict[str, list[Patient]] = {}
    if wanted:
        for link in session.scalars(select(Patient).where(
                Patient.his_patient_id.in_(wanted), Patient.removed_at.is_(None))):
            found.setdefault(link.his_patient_id, []).append(link)
    return found


def match_links(report: ResultReport, links: list[Patient], protector: DataProtector) -> Match:
    """Match a report to a person by PID-3's HIS patient id (``links``: the live links holding
    it, from ``links_of``); PID-5 must name them, and PID-7 and a PID-3 document (where sent)
    must agree with what their links hold."""
    if not report.his_patient_id:
        return Match(None, "no_patient_id")
    if not links:
        return Match(None, "unknown_patient")
    people = {link.document_index for link in links}
    if len(people) != 1:  # one HIS id on two documents: the HIS or the links are wrong
        return Match(None, "ambiguous_patient")
    if not report.name:
        return Match(None, "name_missing")
    if not any(names_match(report.name, link.name) for link in links):
        return Match(None, "name_mismatch")
    births = {link.birth_date for link in links if link.birth_date is not None}
    if report.birth_date is not None and births and report.birth_date not in births:
        return Match(None, "birth_date_mismatch")
    index = people.pop()
    if report.document_number:
        # The blind index compares the document without decrypting anyone's.
        number = normalize_document_number(report.document_number)
        if index not in protector.lookup_indexes(number, report.document_type):
            return Match(None, "document_mismatch")
    return Match(index)
