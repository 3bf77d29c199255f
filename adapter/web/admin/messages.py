"""The message browser: search every HL7 message in and out and every wallet notification."""

from __future__ import annotations

import datetime as dt
import re

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale, gettext

from adapter.billing.posting import acknowledge_settlement, raised_settlements
from adapter.his.masking import readable
from adapter.money import yuan
from adapter.staff.accounts import Permission
from adapter.staff.audit import Action, record
from adapter.staff.messages import (
    MessageQuery,
    Source,
    State,
    acknowledge_messages,
    parked_work,
    raw_message,
    reprocess_messages,
    search_messages,
)
from adapter.web.admin.guard import ID, bp, remote, requires, runtime, staff

MAX_FIELD = 100  # no search field is longer: ids, codes and trade numbers
SEARCH_FIELDS = ("source", "type", "status", "control_id", "booking", "trade", "receipt",
                 "open", "since", "until")
BLIND_INDEX = re.compile(r"[0-9a-f]{64}")
MAX_DOCUMENT = 40


class BadQuery(ValueError):
    """A search field the browser cannot use; the page says which."""


def field(name: str) -> str:
    # The search comes in the query string (GET) or the action form's hidden fields (POST).
    value = request.values.get(name, "").strip()
    if len(value) > MAX_FIELD or any(ord(c) < 0x20 for c in value):
        raise BadQuery(name)
    return value


def search_time(name: str) -> dt.datetime | None:
    """A local date or date-time of the hospital's zone (the browser's datetime-local)."""
    value = field(name)
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadQuery(name) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=runtime().config.tz)
    return moment.astimezone(dt.UTC)


def _query() -> MessageQuery:
    source, state = field("source") or Source.INBOUND.value, field("status")
    if source not in {s.value for s in Source}:
        raise BadQuery("source")
    if state and state not in {s.value for s in State}:
        raise BadQuery("status")
    indexes = tuple(request.values.getlist("patient_index"))
    if len(indexes) > 2 or not all(BLIND_INDEX.fullmatch(i) for i in indexes):
        raise BadQuery("patient_index")
    return MessageQuery(source=Source(source), type=field("type"),
                        state=State(state) if state else None, control_id=field("control_id"),
                        booking=field("booking"), trade=field("trade"),
                        receipt=field("receipt"), open_only=field("open") == "1",
                        since=search_time("since"), until=search_time("until"),
                        patient_indexes=indexes)


def _search_args() -> dict[str, object]:
    """The search of this request, to repeat in links and action forms."""
    args: dict[str, object] = {k: request.values.get(k, "") for k in SEARCH_FIELDS
                               if request.values.get(k)}
    if request.values.getlist("patient_index"):
        args["patient_index"] = request.values.getlist("patient_index")
    return args


def _page(lines: list, total: int, error: str = "") -> str:
    return render_template("admin/messages.html", title=gettext("消息"), lines=lines,
                           total=total, error=error, sources=list(Source), states=list(State),
                           search=_search_args(), document_types=_document_types())


def _document_types() -> list[tuple[str, str]]:
    english = str(get_locale()) == "en"
    return [(t.code, t.name_en if english else t.name_zh)
            for t in runtime().mappings.document_types.values()]


def _bad(exc: BadQuery) -> ResponseReturnValue:
    return _page([], 0, gettext("搜索条件“{field}”无效。").format(field=exc.args[0])), 400


@bp.get("/messages")
@requires(Permission.STATUS)
def messages() -> ResponseReturnValue:
    """Messages of one source matching the search, newest first."""
    try:
        query = _query()
    except BadQuery as exc:
        return _bad(exc)
    with runtime().session_factory() as db:
        lines, total = search_messages(db, query)
    return _page(lines, total)


@bp.post("/messages/patient")
@requires(Permission.STATUS)
def messages_of_patient() -> ResponseReturnValue:
    """Search by a person's document: the number is turned into its blind indexes here and
    never goes into a URL, a log line or the audit trail."""
    rt = runtime()
    document_type = request.form.get("document_type", "")
    number = request.form.get("document_number", "").strip()
    if document_type not in rt.mappings.document_types or not number \
            or len(number) > MAX_DOCUMENT:
        return _bad(BadQuery("document_number"))
    indexes = rt.protector.lookup_indexes(number, document_type)
    with rt.session_factory.begin() as db:
        record(db, staff().username, Action.PATIENT_SEARCHED, "", remote(), rt.clock.now())
    return redirect(url_for("admin.messages", source=field("source") or "outbox",
                            patient_index=indexes), code=303)


def _act(act: object, done_text: str) -> ResponseReturnValue:
    rt = runtime()
    try:
        query = _query()
    except BadQuery as exc:
        return _bad(exc)
    with rt.session_factory.begin() as db:
        ids = act(db, query, actor=staff().username, remote=remote(),  # type: ignore[operator]
                  now=rt.clock.now())
    flash(done_text.format(n=len(ids)))
    if request.form.get("back") == "parked":  # the parked work page's buttons
        return redirect(url_for("admin.parked"), code=303)
    return redirect(url_for("admin.messages", **_search_args()), code=303)


@bp.post("/messages/reprocess")
@requires(Permission.OPERATE)
def messages_reprocess() -> ResponseReturnValue:
    """Reprocess (inbound) or resend (outbox) exactly the searched messages."""
    return _act(reprocess_messages, gettext("已重新处理 {n} 条消息。"))


@bp.post("/messages/acknowledge")
@requires(Permission.OPERATE)
def messages_acknowledge() -> ResponseReturnValue:
    """Mark exactly the searched failures as handled (they leave the dashboard's counts)."""
    return _act(acknowledge_messages, gettext("已确认 {n} 条失败消息。"))


@bp.get("/parked")
@requires(Permission.STATUS)
def parked() -> ResponseReturnValue:
    """Parked work awaiting staff: failed and parked inbound messages, parked outbox items,
    and paid bills that could not be posted to the HIS."""
    with runtime().session_factory() as db:
        sections = parked_work(db)
        settlements, raised = raised_settlements(db)
    return render_template("admin/parked.html", title=gettext("待处理的工作"),
                           sections=sections, settlements=settlements, raised=raised,
                           yuan=yuan)


@bp.post("/settlements/<string(maxlength=32):public_id>/acknowledge")
@requires(Permission.OPERATE)
def settlement_acknowledge(public_id: str) -> ResponseReturnValue:
    """A raised bill handled by staff (refunded at the window, posted by hand): it leaves the
    parked work page; the first acknowledgment is kept, and audited."""
    rt = runtime()
    with rt.session_factory.begin() as db:
        settlement, now_handled = acknowledge_settlement(db, public_id, staff().username,
                                                         rt.clock.now())
        if now_handled:
            record(db, staff().username, Action.SETTLEMENT_ACKNOWLEDGED,
                   f"settlement:{public_id}", remote(), rt.clock.now())
    if settlement is None:
        abort(404)  # no raised bill has that id
    flash(gettext("已确认该账单为已处理。"))
    return redirect(url_for("admin.parked"), code=303)


@bp.get(f"/messages/<any(inbound, outbox, notification):source>/<{ID}:message_id>")
@requires(Permission.RAW)
def message_raw(source: str, message_id: int) -> ResponseReturnValue:
    """A message as kept, ID numbers masked (admins only; the view is audited)."""
    rt = runtime()
    with rt.session_factory.begin() as db:
        found = raw_message(db, Source(source), message_id, actor=staff().username,
                            remote=remote(), now=rt.clock.now())
    if found is None:
        return render_template("admin/refused.html", title=gettext("消息"),
                               message=gettext("找不到这条消息。")), 404
    line, content, charset = found
    hl7_types = {t.hl7_type for t in rt.mappings.document_types.values()}
    return render_template("admin/message.html", title=gettext("消息") + f" #{line.id}",
                           line=line, text=readable(content, charset, hl7_types))

