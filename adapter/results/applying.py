"""Applying reported results: each order once, in its latest state.

The same order in the same state twice changes nothing; a correction (C, or a final that
differs from the one kept) replaces what was kept and is marked corrected; a cancellation (X)
withdraws it; a preliminary arriving after the final is ignored. Where a result may be seen is
decided here too: held for staff when it cannot be matched, kept unseen while preliminary, held
for a doctor when its kind is sensitive, else released at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from adapter.models import Result, ResultAttachment, ResultObservation, ResultState
from adapter.ports import ResultOrder, ResultReport, ResultsReported, ResultStatus
from adapter.protection import DataProtector
from adapter.results.alerts import raise_alert
from adapter.results.announcing import announce
from adapter.results.matching import Match, match_report
from adapter.results.policy import ReleasePolicy

logger = logging.getLogger(__name__)

_SHOWABLE = (ResultStatus.FINAL.value, ResultStatus.CORRECTED.value)


def apply_results(session: Session, event: ResultsReported, policy: ReleasePolicy,
                  protector: DataProtector, now: dt.datetime) -> list[int]:
    """Apply every order of an ORU^R01; returns the ids of the results it touched."""
    touched = []
    for report in event.reports:
        match = match_report(session, report, protector)
        for position, order in enumerate(report.orders, start=1):
            result = apply_order(session, event, report, match, order, position, policy, now)
            if result is not None:
                touched.append(result.id)
    return touched


def order_key(event: ResultsReported, order: ResultOrder, position: int) -> str:
    """The order's identity across messages: the sender, its filler (else placer) order
    number and the kind; an order without numbers is known by its message alone."""
    number = order.filler_order or order.placer_order
    parts = [event.sender, number, order.kind] if number else \
        [event.sender, "", f"{event.control_id}#{position}"]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def content_digest(order: ResultOrder) -> str:
    """What the patient would be shown, as one digest (attachments by their bytes)."""
    shown = [[o.value_type, o.code, o.name, o.text, o.number, o.comparator, o.units,
              o.reference_range, list(o.abnormal_flags),
              hashlib.sha256(o.attachment.data).hexdigest() if o.attachment else ""]
             for o in order.observations]
    return hashlib.sha256(json.dumps([order.kind_name, shown]).encode("utf-8")).hexdigest()


def apply_order(session: Session, event: ResultsReported, report: ResultReport, match: Match,
                order: ResultOrder, position: int, policy: ReleasePolicy,
                now: dt.datetime) -> Result | None:
    """Apply one order; None when the message says nothing new about it."""
    key = order_key(event, order, position)
    digest = content_digest(order)
    result = session.scalar(select(Result).where(Result.order_key == key))
    if result is None:
        result = Result(order_key=key, sender=event.sender[:200], status=order.status.value,
                        state=ResultState.PENDING, version=1, announced_version=0,
                        corrected=False, critical=False, received_at=now, updated_at=now,
                        hold_reason="", his_patient_id="", content_digest="")
        session.add(result)
        changed = True
    else:
        if result.status == ResultStatus.CANCELLED.value:
            logger.info("result %s: cancelled order reported again; ignored", result.id)
            return None
        if order.status is ResultStatus.PRELIMINARY and result.status in _SHOWABLE:
            logger.info("result %s: preliminary after final; ignored", result.id)
            return None
        same_person = (result.document_index == match.document_index
                       and result.hold_reason == match.hold_reason)
        if (digest == result.content_digest and order.status.value == result.status
                and same_person):
            return None  # the same order in the same state again: nothing changes
        changed = digest != result.content_digest
        if changed and result.status in _SHOWABLE and order.status is not ResultStatus.CANCELLED:
            result.corrected = True  # what was shown (or could have been) is replaced
    _identify(result, report, match)
    result.placer_order, result.filler_order = order.placer_order[:80], order.filler_order[:80]
    result.kind, result.kind_name = order.kind[:80], order.kind_name[:200]
    result.observed_at = order.observed_at
    result.ordering_provider = order.ordering_provider[:40]
    result.updated_at = now
    if order.status is ResultStatus.CANCELLED:
        result.status, result.state = ResultStatus.CANCELLED.value, ResultState.WITHDRAWN
        result.version += 1
        session.flush()
        logger.info("result %s withdrawn (order cancelled)", result.id)
        return result
    result.status = (ResultStatus.CORRECTED.value if result.corrected
                     else order.status.value)
    if changed:
        new = result.id is None
        if not new:
            result.version += 1
        result.content_digest = digest
        session.flush()
        result.critical = _store_observations(session, result, order, policy, replace=not new)
    _decide_state(result, match, policy, now)
    # No flush here: the state and the announced version go to the database in one UPDATE.
    if result.critical and changed:
        raise_alert(session, result, now)
    if result.state != ResultState.UNMATCHED and (result.state == ResultState.RELEASED
                                                   or result.critical):
        announce(session, result, now)
    logger.info("result %s: %s, %s%s", result.id, result.status, result.state,
                f" ({result.hold_reason})" if result.hold_reason else "")
    return result


def _identify(result: Result, report: ResultReport, match: Match) -> None:
    if result.document_index and match.document_index != result.document_index:
        # Reported for another person than before: shown to no one until staff look.
        result.document_index, result.hold_reason = None, "patient_changed"
    else:
        result.document_index, result.hold_reason = match.document_index, match.hold_reason
    result.his_patient_id = report.his_patient_id[:40]


def _decide_state(result: Result, match: Match, policy: ReleasePolicy,
                  now: dt.datetime) -> None:
    if result.hold_reason or match.document_index is None:
        result.state = ResultState.UNMATCHED
        result.hold_reason = result.hold_reason or match.hold_reason
    elif result.status == ResultStatus.PRELIMINARY.value:
        result.state = ResultState.PENDING
    elif result.state == ResultState.RELEASED:
        pass  # a correction of a released result is shown at once, marked corrected
    elif policy.is_sensitive(result.kind):
        if result.state != ResultState.HELD:
            result.state, result.release_at = ResultState.HELD, now + policy.hold_for
    else:
        result.state, result.released_at, result.released_by = ResultState.RELEASED, now, None


def _store_observations(session: Session, result: Result, order: ResultOrder,
                        policy: ReleasePolicy, *, replace: bool = True) -> bool:
    """Replace the result's observations (and files) with the order's; True when critical.
    A new result has none to replace (two statements fewer per result in a backlog)."""
    if replace:
        session.execute(delete(ResultObservation).where(
            ResultObservation.result_id == result.id))
        session.execute(delete(ResultAttachment).where(ResultAttachment.result_id == result.id))
    critical = False
    rows = []
    for position, observation in enumerate(order.observations, start=1):
        is_critical = policy.is_critical(observation)
        critical = critical or is_critical
        row = {"result_id": result.id, "position": position, "set_id": observation.set_id[:20],
               "value_type": observation.value_type[:10], "code": observation.code[:80],
               "name": observation.name[:200], "text": observation.text,
               "number": observation.number[:40], "comparator": observation.comparator[:2],
               "units": observation.units[:60],
               "reference_range": observation.reference_range[:120],
               "abnormal_flags": "~".join(observation.abnormal_flags)[:40],
               "status": observation.status[:2], "critical": is_critical,
               "attachment_id": None, "attachment_problem": ""}
        file = observation.attachment
        if file is not None and file.data:
            attachment = ResultAttachment(result_id=result.id, content_type=file.content_type,
                                          size=len(file.data), data=file.data,
                                          created_at=result.updated_at)
            session.add(attachment)
            session.flush()
            row["attachment_id"] = attachment.id
        elif file is not None:
            row["attachment_problem"] = file.problem
        rows.append(row)
    if rows:
        # One executemany of plain rows, not ORM objects: nothing reads them back in this
        # transaction, and an ORM insert asks for every new id (RETURNING), which under a
        # backlog cost more than the rest of the result together.
        session.execute(insert(ResultObservation.__table__), rows)
    return critical
