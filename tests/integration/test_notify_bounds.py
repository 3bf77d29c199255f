"""/notify/<platform> under abuse: bodies are bounded, and a flood of notices nobody signed
cannot fill the disk while the genuine ones are still kept and applied."""

from __future__ import annotations

import io
import urllib.parse
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from adapter.models import TradeStatus, WalletNotification
from tests.integration.test_notify_alipay import (
    _notice,
    _post,
    _signed,
    _trade,
    app,  # noqa: F401 - the fixture
)

LIMIT = 64 * 1024


def _rows(session_factory) -> list[WalletNotification]:
    with session_factory() as session:
        return list(session.scalars(select(WalletNotification).order_by(WalletNotification.id)))


def _stored_bytes(session_factory) -> int:
    with session_factory() as session:
        return session.scalar(select(func.coalesce(func.sum(func.length(
            WalletNotification.raw)), 0)))


def test_large_unsigned_posts_are_413_and_store_no_body(app, session_factory):
    # The finding: three 5 MB unsigned posts grew the data folder by about 30 MB.
    for _ in range(3):
        response = app.test_client().post(
            "/notify/alipay", data=b"a=" + b"x" * (5 * 1024 * 1024),
            content_type="application/x-www-form-urlencoded")
        assert (response.status_code, response.text) == (413, "fail")
    rows = _rows(session_factory)
    assert [(r.outcome, r.raw, r.size) for r in rows] == [
        ("refused", None, 5 * 1024 * 1024 + 2)] * 3
    assert "larger than" in rows[0].reason
    assert _stored_bytes(session_factory) == 0


def test_a_chunked_body_is_cut_at_the_bound(app, session_factory):
    response = app.test_client().post(
        "/notify/alipay", input_stream=io.BytesIO(b"a=" + b"x" * (2 * LIMIT)),
        headers={"Transfer-Encoding": "chunked",
                 "Content-Type": "application/x-www-form-urlencoded"},
        environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413
    [row] = _rows(session_factory)
    assert row.raw is None and row.size == LIMIT + 1


def test_a_body_at_the_bound_is_read(app, session_factory):
    body = urllib.parse.urlencode(_signed(_notice())).encode()
    padded = body + b"&pad=" + b"x" * (LIMIT - len(body) - 5)
    assert len(padded) == LIMIT
    response = app.test_client().post("/notify/alipay", data=padded,
                                      content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400  # read and refused for its signature, not its size
    assert _rows(session_factory)[0].reason == "signature does not verify"


def test_a_flood_of_unsigned_notices_keeps_only_the_latest_and_every_genuine_one(
        app, session_factory):
    runtime = app.extensions["adapter"]
    runtime.config = replace(runtime.config, notify_refused_kept=5)
    forged = {**_signed(_notice()), "total_amount": "0.01"}
    foreign = _signed(_notice(seller_id="2088999999999999"))  # signed, refused, kept whole
    assert _post(app, foreign).status_code == 400
    for n in range(12):
        assert _post(app, {**forged, "notify_id": f"forged-{n}"}).status_code == 400
    assert _post(app, _signed(_notice())).text == "success"
    for n in range(12, 30):
        assert _post(app, {**forged, "notify_id": f"forged-{n}"}).status_code == 400
    assert _post(app, _signed(_notice())).text == "success"  # the platform's retry
    rows = _rows(session_factory)
    genuine = [r for r in rows if r.raw is not None]
    unsigned = [r for r in rows if r.raw is None]
    assert [r.outcome for r in genuine] == ["refused", "applied", "duplicate"]
    assert genuine[0].raw == urllib.parse.urlencode(foreign).encode()
    assert all(r.raw == urllib.parse.urlencode(_signed(_notice())).encode()
               for r in genuine[1:])
    assert len(unsigned) == 5 and all(r.outcome == "refused" for r in unsigned)
    assert unsigned == sorted(unsigned, key=lambda r: r.id)[-5:]  # the latest ones
    assert min(r.id for r in unsigned) > genuine[1].id  # the first genuine one outlived them
    assert _trade(session_factory).status == TradeStatus.PAID


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)  # SQLite: one writer
def test_a_signed_notice_is_kept_before_it_is_applied(app, session_factory):
    runtime = app.extensions["adapter"]
    seen: list[tuple[str, bytes | None]] = []

    def paid(session, trade):
        # Another connection sees the raw notice committed while it is being applied.
        with runtime.session_factory() as other:
            row = other.scalar(select(WalletNotification))
            seen.append((row.outcome, row.raw))

    runtime.paid_handlers["registration"] = paid
    assert _post(app, _signed(_notice())).text == "success"
    assert seen == [("received", urllib.parse.urlencode(_signed(_notice())).encode())]
