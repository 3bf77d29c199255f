"""The message browser: search every HL7 message in and out and every wallet notification."""

from __future__ import annotations

import datetime as dt

from flask import render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from adapter.staff.accounts import Permission
from adapter.staff.messages import MessageQuery, Source, State, search_messages
from adapter.web.admin.guard import bp, requires, runtime

MAX_FIELD = 100  # no search field is longer: ids, codes and trade numbers


class BadQuery(ValueError):
    """A search field the browser cannot use; the page says which."""


def _field(name: str) -> str:
    value = request.args.get(name, "").strip()
    if len(value) > MAX_FIELD or any(ord(c) < 0x20 for c in value):
        raise BadQuery(name)
    return value


def _time(name: str) -> dt.datetime | None:
    """A local date or date-time of the hospital's zone (the browser's datetime-local)."""
    value = _field(name)
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
    source, state = _field("source") or Source.INBOUND.value, _field("status")
    if source not in {s.value for s in Source}:
        raise BadQuery("source")
    if state and state not in {s.value for s in State}:
        raise BadQuery("status")
    return MessageQuery(source=Source(source), type=_field("type"),
                        state=State(state) if state else None, control_id=_field("control_id"),
                        booking=_field("booking"), trade=_field("trade"),
                        since=_time("since"), until=_time("until"))


@bp.get("/messages")
@requires(Permission.STATUS)
def messages() -> ResponseReturnValue:
    """Messages of one source matching the search, newest first."""
    title = gettext("消息")
    try:
        query = _query()
    except BadQuery as exc:
        return render_template("admin/messages.html", title=title, lines=[], total=0,
                               error=gettext("搜索条件“{field}”无效。").format(field=exc.args[0]),
                               sources=list(Source), states=list(State)), 400
    with runtime().session_factory() as db:
        lines, total = search_messages(db, query)
    return render_template("admin/messages.html", title=title, lines=lines, total=total,
                           error="", sources=list(Source), states=list(State))
