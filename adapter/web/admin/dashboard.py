"""The dashboard: the page, and the JSON it refreshes itself from every few seconds (the
figures, and the page's body rendered again, so the script holds neither text nor layout)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

from flask import render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from adapter.links import wallet_link
from adapter.money import yuan
from adapter.staff.accounts import Permission
from adapter.staff.dashboard import Dashboard, read_dashboard
from adapter.web.admin.guard import bp, requires, runtime

REFRESH_SECONDS = 5
# A link is "connected" when it worked within this many link checks (as /readyz decides).
STALE_AFTER_CHECKS = 3
CHART_WIDTH, CHART_HEIGHT = 720, 160


def _dashboard() -> Dashboard:
    rt = runtime()
    destinations = {kind: spec.link or kind for kind, spec in rt.flows.outbox.items()}
    links = ["his", *(wallet_link(platform) for platform in rt.wallets)]
    with rt.session_factory() as db:
        return read_dashboard(db, now=rt.clock.now(), tz=rt.config.tz,
                              destinations=destinations, link_names=links,
                              link_max_age=dt.timedelta(
                                  seconds=STALE_AFTER_CHECKS * rt.config.link_check_interval))


def _chart(board: Dashboard) -> dict[str, Any]:
    """Bar positions of the 24-hour chart, drawn as inline SVG by the template."""
    peak = max([1, *(h.bookings for h in board.hours), *(h.messages for h in board.hours)])
    slot = CHART_WIDTH / len(board.hours)
    bars = []
    for i, hour in enumerate(board.hours):
        for offset, value, series in ((0.1, hour.bookings, "bookings"),
                                      (0.5, hour.messages, "messages")):
            height = round(value / peak * (CHART_HEIGHT - 20), 1)
            bars.append({"x": round(i * slot + offset * slot, 1), "y": CHART_HEIGHT - 14 - height,
                         "w": round(slot * 0.4, 1), "h": height, "series": series,
                         "value": value, "hour": hour.start})
    labels = [{"x": round(i * slot + slot / 2, 1), "hour": hour.start}
              for i, hour in enumerate(board.hours) if i % 3 == 0]
    return {"width": CHART_WIDTH, "height": CHART_HEIGHT, "bars": bars, "labels": labels,
            "peak": peak}


def _browse(source: str, message_type: str, status: str) -> str:
    """The message browser filtered on one counter."""
    return url_for("admin.messages", source=source, type=message_type, status=status)


def _context(board: Dashboard) -> dict[str, Any]:
    return {"board": board, "chart": _chart(board), "yuan": yuan, "browse": _browse}


@bp.get("/")
@requires(Permission.STATUS)
def dashboard() -> ResponseReturnValue:
    """The status page (it refreshes itself from dashboard.json)."""
    return render_template("admin/dashboard.html", title=gettext("运行状态"),
                           refresh_seconds=REFRESH_SECONDS, **_context(_dashboard()))


@bp.get("/dashboard.json")
@requires(Permission.STATUS, json=True)
def dashboard_json() -> ResponseReturnValue:
    """The dashboard's figures (amounts in fen and as yuan strings) and its rendered body."""
    board = _dashboard()
    figures = asdict(board)
    for money in ("payments_today", "refunds_today"):
        figures[money]["yuan"] = yuan(figures[money]["fen"])
    return {"figures": figures,
            "html": render_template("admin/_dashboard_body.html", **_context(board))}
