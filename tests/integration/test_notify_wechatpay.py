"""/notify/wechatpay: verify over the raw body and headers, apply once (a replayed notification
is a duplicate), answer 204 only after commit, FAIL JSON otherwise."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import pytest
from sqlalchemy import select

from adapter import create_app
from adapter.config import load_config
from adapter.his.profile import Hl7Profile
from adapter.mappings import load_mappings
from adapter.models import Trade, TradeStatus, WalletNotification
from adapter.runtime import Runtime
from adapter.wallet.wechatpay.client import WechatPayClient
from adapter.wallet.wechatpay.gateway import WechatPayWalletGateway
from adapter.wallet.wechatpay.official import OfficialAccount
from tests import wechatpay_kit as kit
from tests.conftest import MAPPINGS


@pytest.fixture
def app(engine, session_factory, tmp_path):
    runtime = Runtime(replace(load_config({})), engine, session_factory,
                      load_mappings(MAPPINGS), Hl7Profile())
    client = WechatPayClient("https://api.mch.weixin.qq.com", kit.MCHID, kit.APPID,
                             kit.MERCHANT_KEY, kit.CERT_SERIAL, kit.APIV3_KEY,
                             public_key=kit.PLATFORM_KEY.public_key(),
                             public_key_id=kit.PUBLIC_KEY_ID)
    wallet = WechatPayWalletGateway(client, OfficialAccount("https://api.weixin.qq.com",
                                                            kit.APPID, "secret"))
    runtime.wallets = {wallet.platform: wallet}
    paid: list[str] = []
    runtime.paid_handlers["registration"] = lambda session, trade: paid.append(
        trade.out_trade_no)
    app = create_app(runtime=runtime)
    app.paid = paid
    with session_factory.begin() as session:
        session.add(Trade(out_trade_no="R20261126000001", platform="wechatpay",
                          purpose="registration", reference="B1", subject="挂号费 儿科",
                          total_fen=2500, buyer_id=kit.OPENID,
                          expire_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15)))
    return app


def _post(app, body: str, headers: dict[str, str]):
    return app.test_client().post("/notify/wechatpay", data=body.encode(), headers=headers,
                                  content_type="application/json")


def _rows(session_factory) -> list[tuple[str, bool, str]]:
    with session_factory() as session:
        return [(row.outcome, row.raw is not None, row.notify_id or "") for row in session.scalars(
            select(WalletNotification).order_by(WalletNotification.id))]


def test_a_callback_applies_once_and_a_replay_is_a_harmless_duplicate(app, session_factory):
    body = kit.callback(notice_id="EV-1")
    first = _post(app, body, kit.signed_headers(body))
    assert (first.status_code, first.data) == (204, b"")
    with session_factory() as session:
        trade = session.get(Trade, "R20261126000001")
        assert trade.status == TradeStatus.PAID
        assert trade.trade_no == "4200000000202611260000000001"
        assert trade.paid_at == dt.datetime(2026, 11, 26, 2, 0, 4, tzinfo=dt.UTC)
    # WeChat retries the same notification (new timestamp and nonce, the same id); and an
    # attacker replays the captured request within the five minutes
    again = _post(app, body, kit.signed_headers(body))
    replayed = _post(app, body, kit.signed_headers(body))
    assert again.status_code == replayed.status_code == 204
    assert app.paid == ["R20261126000001"]
    assert _rows(session_factory) == [("applied", True, "EV-1"), ("duplicate", True, "EV-1"),
                                      ("duplicate", True, "EV-1")]


@pytest.mark.parametrize(("tamper", "reason"), [
    (lambda body, headers: (body.replace("EV-", "EV-9"), headers), "signature does not verify"),
    (lambda body, headers: (body, {**headers, "Wechatpay-Serial": "PUB_KEY_ID_OTHER"}),
     "unknown platform serial"),
    (lambda body, headers: (body, kit.signed_headers(
        body, timestamp=int(dt.datetime.now(dt.UTC).timestamp()) - 360)),
     "timestamp more than 5 minutes off"),
])
def test_a_callback_we_cannot_verify_is_refused_with_fail_json_and_not_kept(
        app, session_factory, tamper, reason):
    body = kit.callback()
    body, headers = tamper(body, kit.signed_headers(body))
    answer = _post(app, body, headers)
    assert answer.status_code == 400
    assert answer.json == {"code": "FAIL", "message": "refused"}
    with session_factory() as session:
        (row,) = session.scalars(select(WalletNotification))
        assert (row.outcome, row.raw, row.reason) == ("refused", None, reason)
        assert session.get(Trade, "R20261126000001").status == TradeStatus.CREATED


def test_a_signed_callback_for_another_merchant_is_refused_and_kept(app, session_factory):
    body = kit.callback(kit.transaction(mchid="1900000999"))
    answer = _post(app, body, kit.signed_headers(body))
    assert answer.status_code == 400 and answer.json["code"] == "FAIL"
    assert _rows(session_factory)[0][:2] == ("refused", True)
    assert app.paid == []


def test_a_callback_for_another_amount_is_refused(app, session_factory):
    body = kit.callback(kit.transaction(amount={"total": 1, "currency": "CNY"}))
    assert _post(app, body, kit.signed_headers(body)).status_code == 400
    assert app.paid == []


def test_a_trade_created_through_wechat_pay_learns_its_transaction_id_from_the_callback(
        app, session_factory):
    # WeChat answers an order with a prepay_id (what paying takes) and names the trade only
    # once paid: the callback's transaction_id is the trade_no, never compared to the prepay_id
    with session_factory.begin() as session:
        session.get(Trade, "R20261126000001").pay_reference = "wx26100000000000000000000001"
    body = kit.callback()
    assert _post(app, body, kit.signed_headers(body)).status_code == 204
    with session_factory() as session:
        trade = session.get(Trade, "R20261126000001")
        assert (trade.status, trade.pay_reference, trade.trade_no) == (
            TradeStatus.PAID, "wx26100000000000000000000001", "4200000000202611260000000001")


def test_a_callback_naming_another_transaction_than_the_one_known_is_refused(
        app, session_factory):
    with session_factory.begin() as session:
        session.get(Trade, "R20261126000001").trade_no = "4200000000202611260000000999"
    body = kit.callback()
    assert _post(app, body, kit.signed_headers(body)).status_code == 400
    assert app.paid == []


def test_the_answers_wechat_expects():
    wallet = WechatPayWalletGateway(
        WechatPayClient("https://api.mch.weixin.qq.com", kit.MCHID, kit.APPID, kit.MERCHANT_KEY,
                        kit.CERT_SERIAL, kit.APIV3_KEY, public_key=kit.PLATFORM_KEY.public_key(),
                        public_key_id=kit.PUBLIC_KEY_ID),
        OfficialAccount("https://api.weixin.qq.com", kit.APPID, "secret"))
    assert tuple(wallet.notification_answer("success")) == ("", 204, "application/json")
    for outcome, status in (("refused", 400), ("error", 500)):
        body, code, mimetype = wallet.notification_answer(outcome)
        assert (code, mimetype, json.loads(body)["code"]) == (status, "application/json", "FAIL")
