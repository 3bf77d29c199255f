"""/notify/<platform> for Alipay: keep raw, verify, apply once, answer success only after commit."""

from __future__ import annotations

import datetime as dt
import logging
import urllib.parse
from dataclasses import replace

import pytest
from sqlalchemy import select

from adapter import create_app
from adapter.config import load_config
from adapter.his.profile import Hl7Profile
from adapter.mappings import load_mappings
from adapter.models import Trade, TradeStatus, WalletNotification
from adapter.runtime import Runtime
from adapter.wallet.alipay.signing import (
    generate_key_pair,
    load_private_key,
    load_public_key,
    sign_params,
)
from tests.conftest import MAPPINGS

APP_ID = "2021000000000001"
SELLER = "2088000000000001"
PLATFORM_PRIVATE, PLATFORM_PUBLIC = generate_key_pair()
OTHER_PRIVATE, _ = generate_key_pair()
APP_PRIVATE, _ = generate_key_pair()


@pytest.fixture
def app(engine, session_factory, tmp_path):
    key_file = tmp_path / "alipay_public_key.pem"
    key_file.write_text(PLATFORM_PUBLIC)
    app_key_file = tmp_path / "app_private_key.pem"
    app_key_file.write_text(APP_PRIVATE)
    config = replace(load_config({}), alipay_app_id=APP_ID, alipay_seller_id=SELLER,
                     alipay_public_key_file=key_file, alipay_app_private_key_file=app_key_file)
    runtime = Runtime(config, engine, session_factory, load_mappings(MAPPINGS), Hl7Profile())
    runtime.paid_handlers["registration"] = lambda session, trade: paid.append(
        trade.out_trade_no)
    paid: list[str] = []
    app = create_app(runtime=runtime)
    app.paid = paid
    with session_factory.begin() as session:
        session.add(Trade(out_trade_no="R20261126000001", platform="alipay",
                          purpose="registration",
                          reference="B1", subject="挂号费 儿科", total_fen=2500,
                          buyer_id="2088102000000001",
                          expire_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15)))
    return app


def _notice(**overrides: str) -> dict[str, str]:
    params = {
        "notify_time": "2026-11-26 10:00:05", "notify_type": "trade_status_sync",
        "notify_id": "ac05099524730693a8b330c5ecf72da9786", "app_id": APP_ID,
        "charset": "utf-8", "version": "1.0", "sign_type": "RSA2",
        "trade_no": "2026112622001400000000000001", "out_trade_no": "R20261126000001",
        "buyer_id": "2088102000000001", "seller_id": SELLER, "trade_status": "TRADE_SUCCESS",
        "total_amount": "25.00", "receipt_amount": "25.00", "subject": "挂号费 儿科",
        "gmt_create": "2026-11-26 09:59:50", "gmt_payment": "2026-11-26 10:00:04",
    }
    params.update(overrides)
    return params


def _signed(params: dict[str, str], key: str = PLATFORM_PRIVATE) -> dict[str, str]:
    signed = dict(params)
    signed["sign"] = sign_params(
        {k: v for k, v in params.items() if k != "sign_type"}, load_private_key(key))
    return signed


def _post(app, params: dict[str, str], charset: str = "utf-8"):
    body = urllib.parse.urlencode(params, encoding=charset)
    return app.test_client().post(
        "/notify/alipay", data=body, content_type="application/x-www-form-urlencoded")


def _trade(session_factory) -> Trade:
    with session_factory() as session:
        return session.get(Trade, "R20261126000001")


def _outcomes(session_factory) -> list[str]:
    with session_factory() as session:
        return list(session.scalars(
            select(WalletNotification.outcome).order_by(WalletNotification.id)))


def test_paid_notice_applies_once_and_answers_success(app, session_factory):
    response = _post(app, _signed(_notice()))
    assert (response.status_code, response.text) == (200, "success")
    trade = _trade(session_factory)
    assert trade.status == TradeStatus.PAID and trade.trade_no.startswith("2026")
    assert trade.paid_at == dt.datetime(2026, 11, 26, 2, 0, 4, tzinfo=dt.UTC)
    assert app.paid == ["R20261126000001"]

    again = _post(app, _signed(_notice()))  # the platform retries the same notice
    other_id = _post(app, _signed(_notice(notify_id="second", trade_status="TRADE_FINISHED")))
    assert again.text == other_id.text == "success"
    assert app.paid == ["R20261126000001"]
    assert _outcomes(session_factory) == ["applied", "duplicate", "duplicate"]


def test_gbk_notification_verifies(app, session_factory):
    response = _post(app, _signed(_notice(charset="gbk")), charset="gbk")
    assert response.text == "success"
    assert _trade(session_factory).status == TradeStatus.PAID


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({**_signed(_notice()), "total_amount": "0.01"}, "signature"),
        ({**_signed(_notice()), "sign": "AAAA"}, "signature"),
        ({k: v for k, v in _signed(_notice()).items() if k != "sign"}, "unsigned"),
        (_signed(_notice(), key=OTHER_PRIVATE), "signature"),
        (_signed(_notice(total_amount="0.01", receipt_amount="0.01")), "total_amount"),
        (_signed(_notice(app_id="2021999999999999")), "app_id"),
        (_signed(_notice(seller_id="2088999999999999")), "seller_id"),
        (_signed(_notice(out_trade_no="NOT_OURS")), "out_trade_no"),
        (_signed(_notice(total_amount="25")), "amount"),
    ],
    ids=["tampered-amount", "bad-signature", "unsigned", "wrong-key", "amount-mismatch",
         "foreign-app", "foreign-seller", "foreign-order", "amount-format"],
)
def test_forged_tampered_or_foreign_notices_are_refused(app, session_factory, params, reason):
    response = _post(app, params)
    assert response.status_code == 400 and response.text == "fail"
    assert _trade(session_factory).status == TradeStatus.CREATED
    assert app.paid == []
    with session_factory() as session:
        row = session.scalar(select(WalletNotification))
    assert row.outcome == "refused" and reason in row.reason
    body = urllib.parse.urlencode(params).encode()
    assert row.size == len(body) and row.peer == "127.0.0.1"
    if reason in ("signature", "unsigned"):
        assert row.raw is None  # anyone can post these: recorded, body not kept
    else:
        assert row.raw == body  # the platform signed it: kept exactly as received


@pytest.mark.parametrize("status", ["WAIT_BUYER_PAY", "TRADE_CLOSED"])
def test_only_success_and_finished_mean_paid(app, session_factory, status):
    assert _post(app, _signed(_notice(trade_status=status))).text == "success"
    assert _trade(session_factory).status == TradeStatus.CREATED
    assert _outcomes(session_factory) == ["ignored"]


def test_a_failure_is_recorded_and_answered_fail_so_the_platform_retries(app, session_factory):
    runtime = app.extensions["adapter"]

    def broken(session, trade):
        raise RuntimeError("HIS outbox table missing")

    runtime.paid_handlers["registration"] = broken
    response = _post(app, _signed(_notice()))
    assert (response.status_code, response.text) == (500, "fail")
    assert _trade(session_factory).status == TradeStatus.CREATED  # rolled back, nothing half
    runtime.paid_handlers["registration"] = lambda session, trade: None
    assert _post(app, _signed(_notice())).text == "success"
    assert _trade(session_factory).status == TradeStatus.PAID
    assert _outcomes(session_factory) == ["error", "applied"]


def test_payment_after_the_trade_was_closed_is_kept_not_lost(app, session_factory):
    with session_factory.begin() as session:
        session.get(Trade, "R20261126000001").status = TradeStatus.CLOSED
    assert _post(app, _signed(_notice())).text == "success"
    trade = _trade(session_factory)
    assert trade.status == TradeStatus.PAID and trade.paid_after_close is True


def test_platform_key_is_the_one_used_not_ours(app):
    # A notice signed with the app's own key (the classic mistake) must not verify.
    app_private, app_public = generate_key_pair()
    assert load_public_key(app_public)
    assert _post(app, _signed(_notice(), key=app_private)).status_code == 400


def test_an_unknown_platform_is_404_and_nothing_is_stored(app, session_factory):
    body = urllib.parse.urlencode(_signed(_notice()))
    response = app.test_client().post(
        "/notify/wechatpay", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 404
    assert _outcomes(session_factory) == []
    assert _trade(session_factory).status == TradeStatus.CREATED and app.paid == []


def test_an_undocumented_trade_status_is_refused_and_kept(app, session_factory):
    response = _post(app, _signed(_notice(trade_status="TRADE_PENDING")))
    assert (response.status_code, response.text) == (400, "fail")
    assert _outcomes(session_factory) == ["refused"]
    assert _trade(session_factory).status == TradeStatus.CREATED


def test_a_notice_for_another_wallets_order_is_refused(app, session_factory):
    with session_factory.begin() as session:
        session.get(Trade, "R20261126000001").platform = "wechatpay"
    response = _post(app, _signed(_notice()))
    assert response.status_code == 400
    assert _trade(session_factory).status == TradeStatus.CREATED and app.paid == []
    with session_factory() as session:
        assert "platform" in session.scalar(select(WalletNotification)).reason


def test_a_failure_logs_its_type_not_its_text(app, caplog):
    """A database error's text carries the statement's parameters: it is never logged."""
    runtime = app.extensions["adapter"]

    def broken(session, trade):
        raise RuntimeError("DETAIL: Key (buyer_logon_id)=(138****8000 李建国)")

    runtime.paid_handlers["registration"] = broken
    caplog.set_level(logging.DEBUG)
    assert _post(app, _signed(_notice())).text == "fail"
    assert "RuntimeError" in caplog.text and "李建国" not in caplog.text
