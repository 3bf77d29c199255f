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
from dataclasses import dataclass, field

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from adapter.models import Result, ResultAttachment, ResultObservation, ResultState
from adapter.ports import ResultAttachment as ReportedFile
from adapter.ports import ResultOrder, ResultReport, ResultsReported, ResultStatus
from adapter.protection import DataProtector
from adapter.results.alerts import raise_alert
from adapter.results.announcing import Announcement, due_announcement, queue_announcements
from adapter.results.matching import Match, links_of, match_links
from adapter.results.policy import ReleasePolicy

logger = logging.getLogger(__name__)

_SHOWABLE = (ResultStatus.FINAL.value, ResultStatus.CORRECTED.value)


def apply_results(session: Session, event: ResultsReported, policy: ReleasePolicy,
                  protector: DataProtector, now: dt.datetime) -> list[int]:
    """Apply every order of an ORU^R01; returns the ids of the results it touched."""
    return apply_reported(session, [event], policy, protector, now)


def apply_reported(session: Session, events: list[ResultsReported], policy: ReleasePolicy,
                   protector: DataProtector, now: dt.datetime) -> list[int]:
    """Apply the ORU^R01 of a batch, in arrival order; returns the ids of the results touched
    (one per order applied).

    What the orders need is read for the whole batch at once (the links of their HIS patient
    ids, the results already kept for them, the recipients of the announcements) and what
    they change is written at its end (the new results in one INSERT, their observations in
    one executemany, the announcements in one INSERT): under a backlog the round trips of
    each order on its own were most of the inbound runner's time.
    """
    reports = [(event, report) for event in events for report in event.reports]
    links = links_of(session, [report.his_patient_id for _, report in reports])
    keyed = [[(order_key(event, order, position), order)
              for position, order in enumerate(report.orders, start=1)]
             for event, report in reports]  # each report's orders with their keys
    keys = [key for orders in keyed for key, _ in orders]
    kept: dict[str, Result] = {}
    for chunk in range(0, len(keys), 500):
        kept.update((result.order_key, result) for result in session.scalars(
            select(Result).where(Result.order_key.in_(keys[chunk:chunk + 500]))))
    pending = _Pending()
    touched: list[Result] = []
    with session.no_autoflush:  # everything goes to the database once, in _write
        for (event, report), orders in zip(reports, keyed, strict=True):
            match = match_links(report, links.get(report.his_patient_id, []), protector)
            for key, order in orders:
                result = _apply_order(kept, pending, key, event, report, match, order, policy,
                                      now)
                if result is not None:
                    touched.append(result)
    _write(session, pending, now)
    return [result.id for result in touched]


@dataclass
class _Pending:
    """What a batch changes, written once at its end."""

    new: list[Result] = field(default_factory=list)  # results to add
    # The observations each changed result is to keep (with the file of each, if any).
    observations: dict[Result, list[tuple[dict, ReportedFile | None]]] = field(
        default_factory=dict)
    replaced: set[int] = field(default_factory=set)  # kept results whose rows are replaced
    alerts: dict[Result, None] = field(default_factory=dict)  # critical ones, in order
    announcements: list[Announcement] = field(default_factory=list)
    notes: list[tuple[Result, str, tuple]] = field(default_factory=list)  # logged once written

    def note(self, result: Result, text: str, *args: object) -> None:
        self.notes.append((result, text, args))


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


def _apply_order(kept: dict[str, Result], pending: _Pending, key: str, event: ResultsReported,
                 report: ResultReport, match: Match, order: ResultOrder, policy: ReleasePolicy,
                 now: dt.datetime) -> Result | None:
    """Apply one order (``key``: its order_key) to the result kept for it (in ``kept``, a new
    one added there); None when the message says nothing new about it."""
    digest = content_digest(order)
    result = kept.get(key)
    new = result is None
    if result is None:
        result = Result(order_key=key, sender=event.sender[:200], status=order.status.value,
                        state=ResultState.PENDING, version=1, announced_version=0,
                        corrected=False, critical=False, received_at=now, updated_at=now,
                        hold_reason="", his_patient_id="", content_digest="")
        kept[key] = result
        pending.new.append(result)
        changed = True
    else:
        if result.status == ResultStatus.CANCELLED.value:
            pending.note(result, "cancelled order reported again; ignored")
            return None
        if order.status is ResultStatus.PRELIMINARY and result.status in _SHOWABLE:
            pending.note(result, "preliminary after final; ignored")
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
        pending.note(result, "withdrawn (order cancelled)")
        return result
    result.status = (ResultStatus.CORRECTED.value if result.corrected
                     else order.status.value)
    if changed:
        if not new:
            result.version += 1
        if result.id is not None:
            pending.replaced.add(result.id)
        result.content_digest = digest
        pending.observations[result], result.critical = _observation_rows(order, policy)
    _decide_state(result, match, policy, now)
    if result.critical and changed:
        pending.alerts[result] = None
    if result.state != ResultState.UNMATCHED and (result.state == ResultState.RELEASED
                                                   or result.critical):
        due = due_announcement(result)
        if due is not None:
            pending.announcements.append(due)
    pending.note(result, "%s, %s%s", result.status, result.state,
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


def _observation_rows(order: ResultOrder,
                      policy: ReleasePolicy) -> tuple[list[tuple[dict, ReportedFile | None]], bool]:
    """The order's observations as table rows (each with its file, if any); True when one of
    them is critical."""
    critical = False
    rows = []
    for position, observation in enumerate(order.observations, start=1):
        is_critical = policy.is_critical(observation)
        critical = critical or is_critical
        file = observation.attachment
        rows.append(({
            "position": position, "set_id": observation.set_id[:20],
            "value_type": observation.value_type[:10], "code": observation.code[:80],
            "name": observation.name[:200], "text": observation.text,
            "number": observation.number[:40], "comparator": observation.comparator[:2],
            "units": observation.units[:60], "reference_range": observation.reference_range[:120],
            "abnormal_flags": "~".join(observation.abnormal_flags)[:40],
            "status": observation.status[:2], "critical": is_critical, "attachment_id": None,
            "attachment_problem": file.problem if file is not None and not file.data else "",
        }, file if file is not None and file.data else None))
    return rows, critical


def _write(session: Session, pending: _Pending, now: dt.datetime) -> None:
    """Write what a batch changed: the results first (their ids), then what refers to them."""
    session.add_all(pending.new)
    session.flush()  # new results in one INSERT ... RETURNING, changed ones updated
    if pending.replaced:
        replaced = sorted(pending.replaced)
        session.execute(delete(ResultObservation).where(
            ResultObservation.result_id.in_(replaced)))
        session.execute(delete(ResultAttachment).where(ResultAttachment.result_id.in_(replaced)))
    files = [(row, ResultAttachment(result_id=result.id, content_type=file.content_type,
                                    size=len(file.data), data=file.data,
                                    created_at=result.updated_at))
             for result, rows in pending.observations.items() for row, file in rows
             if file is not None]
    if files:
        session.add_all([attachment for _, attachment in files])
        session.flush()
        for row, attachment in files:
            row["attachment_id"] = attachment.id
    rows = [{**row, "result_id": result.id}
            for result, observed in pending.observations.items() for row, _ in observed]
    if rows:
        # One executemany of plain rows, not ORM objects: nothing reads them back in this
        # transaction, and an ORM insert asks for every new id (RETURNING).
        session.execute(insert(ResultObservation.__table__), rows)
    for result in pending.alerts:
        raise_alert(session, result, now)
    queue_announcements(session, pending.announcements, now)
    for result, text, args in pending.notes:
        logger.info("result %s: " + text, result.id, *args)
