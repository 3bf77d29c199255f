"""The dashboard and the message browser over HTTP on SQLite and PostgreSQL: the figures in the
page and in dashboard.json (money as yuan from integer fen), each counter a link to the browser
filtered on it, the 24-hour chart as inline SVG with no asset from elsewhere."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest

from adapter.models import (
    InboundMessage,
    InboundStatus,
    LinkState,
    Refund,
    Trade,
    TradeStatus,
)
from adapter.staff.accounts import StaffRole
from tests.integration.admin_kit import T0, make_app, signed_in


@pytest.fixture
def app(engine):
    app = make_app(engine)
    with app.extensions["adapter"].session_factory.begin() as db:
        db.add(LinkState(name="his", up=True, checked_at=T0, detail="answered in 8 ms",
                         latency_ms=8))
        for n, fen in enumerate((2500, 1050)):
            db.add(Trade(out_trade_no=f"RB{n}", platform="fake", purpose="registration",
                         reference=str(n), subject="挂号费", total_fen=fen, buyer_id="u",
                         status=TradeStatus.PAID, created_at=T0, expire_at=T0, paid_at=T0,
                         refunded_fen=0, paid_after_close=False))
        db.flush()
        db.add(Refund(out_request_no="RB1-R1", out_trade_no="RB1", refund_fen=1050,
                      reason="cancelled", status="done", created_at=T0, done_at=T0))
        for n, status in enumerate((InboundStatus.PROCESSED, InboundStatus.FAILED)):
            db.add(InboundMessage(received_at=T0 - dt.timedelta(minutes=n), peer="",
                                  sender="LIS^H", control_id=f"CTRL{n}", digest=f"{n:064d}",
                                  message_type="ORU^R01", version="2.5", charset="",
                                  status=status, ack_code="AA", error_code="", error_text="",
                                  raw=b"MSH|", ack=b"MSA|"))
    return app


def test_the_dashboard_shows_links_money_counters_and_the_chart(app):
    client = signed_in(app, "viewer", StaffRole.VIEWER)
    page = client.get("/admin/").get_data(as_text=True)
    assert "已连接" in page and "8 毫秒" in page
    assert "支付 ¥35.50" in page and "退款 ¥10.50" in page
    assert "<svg" in page and page.count("<rect") == 48
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing from elsewhere
    assert 'src="/static/admin/dashboard.js"' in page
    english = client.get("/admin/?lang=en").get_data(as_text=True)
    assert "Payments ¥35.50" in english and "Connected" in english


def test_dashboard_json_carries_fen_yuan_and_the_body_to_swap_in(app):
    client = signed_in(app, "viewer", StaffRole.VIEWER)
    response = client.get("/admin/dashboard.json")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    payments = body["figures"]["payments_today"]
    assert payments == {"count": 2, "fen": 3550, "yuan": "35.50"}
    assert body["figures"]["refunds_today"]["yuan"] == "10.50"
    assert "<svg" in body["html"] and "<html" not in body["html"]
    [oru] = [c for c in body["figures"]["counters"] if c["type"] == "ORU^R01"]
    assert (oru["received"], oru["failed"]) == (2, 1)


def test_each_counter_links_to_the_browser_filtered_on_it(app):
    client = signed_in(app, "viewer", StaffRole.VIEWER)
    page = client.get("/admin/").get_data(as_text=True)
    failed = [unescape(h) for h in re.findall(r'href="([^"]*status=failed[^"]*)"', page)]
    [link] = [h for h in failed if "ORU" in h]
    listed = client.get(link)
    assert listed.status_code == 200
    text = listed.get_data(as_text=True)
    assert "CTRL1" in text and "CTRL0" not in text and "共 1 条" in text


def test_the_browser_searches_by_control_id_and_time_and_refuses_bad_fields(app):
    client = signed_in(app, "viewer", StaffRole.VIEWER)
    found = client.get("/admin/messages?source=inbound&control_id=CTRL0").get_data(as_text=True)
    assert "CTRL0" in found and "CTRL1" not in found
    since = client.get("/admin/messages?source=inbound&since=2030-03-07T08:59:30")
    assert "共 1 条" in since.get_data(as_text=True)  # 09:00 Shanghai is T0
    for bad in ("source=nowhere", "status=lost", "since=yesterday", "type=" + "x" * 101,
                "control_id=%00"):
        response = client.get(f"/admin/messages?{bad}")
        assert response.status_code == 400, bad
        assert "无效" in response.get_data(as_text=True)
