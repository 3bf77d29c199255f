"""Reconciliation reports: the days and their outcome, a day's discrepancies with what to do,
a discrepancy marked as handled, a day reconciled again."""

from __future__ import annotations

import datetime as dt

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from adapter.money import yuan
from adapter.reconciliation.matching import Action, Kind
from adapter.reconciliation.service import AlreadyReconciled, ReconciliationFailed
from adapter.reconciliation.texts import action_text, kind_text
from adapter.refusals import Refusal
from adapter.staff.accounts import Permission
from adapter.staff.reconciliation import (
    MAX_RERUN_DAYS_BACK,
    acknowledge_discrepancy,
    day_report,
    reconciliation_days,
    rerun_day,
)
from adapter.web.admin.guard import ID, bp, refused, remote, requires, runtime, staff
from adapter.web.h5 import html_lang


def _texts() -> dict[str, object]:
    """What the templates need to show amounts and classes in the reader's language."""
    locale = html_lang()

    def kind_name(kind: str) -> str:
        try:
            return kind_text(Kind(kind), locale)
        except ValueError:  # a class a later release no longer has
            return kind

    def action_name(action: str) -> str:
        try:
            return action_text(Action(action), locale)
        except ValueError:
            return action

    return {"yuan": yuan, "kind_name": kind_name, "action_name": action_name,
            "amount": lambda fen: "" if fen is None else yuan(fen)}


@bp.get("/reconciliation")
@requires(Permission.STATUS)
def reconciliation() -> ResponseReturnValue:
    """Each reconciled day's latest run per wallet, newest first."""
    rt = runtime()
    with rt.session_factory() as db:
        days = reconciliation_days(db)
    yesterday = rt.clock.now().astimezone(rt.config.tz).date() - dt.timedelta(days=1)
    return render_template("admin/reconciliation.html", title=gettext("对账"), days=days,
                           yesterday=yesterday, **_texts())


@bp.get(f"/reconciliation/<{ID}:run_id>")
@requires(Permission.STATUS)
def reconciliation_report(run_id: int) -> ResponseReturnValue:
    """One run's report: the three books, each discrepancy and what to do about it."""
    try:
        with runtime().session_factory() as db:
            report = day_report(db, run_id)
    except Refusal as exc:
        return refused(exc)
    title = gettext("{day} 对账").format(day=report.day.day.isoformat())
    return render_template("admin/reconciliation_day.html", title=title, report=report,
                           **_texts())


@bp.post("/reconciliation/rerun")
@requires(Permission.OPERATE)
def reconciliation_rerun() -> ResponseReturnValue:
    """Reconcile a day again for every wallet (nothing healed before is healed twice)."""
    rt = runtime()
    try:
        day = dt.date.fromisoformat(request.form.get("day", "")[:10])
    except ValueError:
        return refused(Refusal("reconciliation.bad_day", days=MAX_RERUN_DAYS_BACK))
    try:
        results = rerun_day(rt, day, actor=staff().username, remote=remote(),
                            now=rt.clock.now())
    except Refusal as exc:
        return refused(exc)
    except (ReconciliationFailed, AlreadyReconciled):
        flash(gettext("{day} 对账未能完成（账单尚未生成或 HIS 未应答），已记录，可稍后再试。")
              .format(day=day.isoformat()))
        return redirect(url_for("admin.reconciliation"), code=303)
    flash(gettext("{day} 已重新对账。").format(day=day.isoformat()))
    if len(results) == 1:
        return redirect(url_for("admin.reconciliation_report", run_id=results[0].run_id),
                        code=303)
    return redirect(url_for("admin.reconciliation"), code=303)


@bp.post(f"/reconciliation/discrepancies/<{ID}:discrepancy_id>/acknowledge")
@requires(Permission.OPERATE)
def discrepancy_acknowledge(discrepancy_id: int) -> ResponseReturnValue:
    """Mark a discrepancy as handled (who and when are kept; audited)."""
    rt = runtime()
    try:
        with rt.session_factory.begin() as db:
            item = acknowledge_discrepancy(db, discrepancy_id, actor=staff().username,
                                           remote=remote(), now=rt.clock.now())
            run_id = item.run_id
    except Refusal as exc:
        return refused(exc)
    flash(gettext("差异已标记为已处理。"))
    return redirect(url_for("admin.reconciliation_report", run_id=run_id), code=303)
