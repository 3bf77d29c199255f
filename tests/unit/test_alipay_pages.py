"""The Alipay wallet's own pages: where the user signs in, how the page pays, how a
notification is answered, and its name. Derived from the gateway unless configured."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from adapter.config import load_config
from adapter.wallet.alipay.client import AlipayClient
from adapter.wallet.alipay.config import AlipayConfig
from adapter.wallet.alipay.gateway import AlipayWalletGateway
from adapter.wallet.alipay.signing import generate_key_pair, load_private_key, load_public_key

APP_ID = "2021000000000001"
PRODUCTION = "https://openapi.alipay.com/gateway.do"
ALIPAY_SANDBOX = "https://openapi-sandbox.dl.alipaydev.com/gateway.do"
OUR_SANDBOX = "http://127.0.0.1:8900/gateway.do"


@pytest.fixture(scope="module")
def keys():
    private_pem, public_pem = generate_key_pair()
    return load_private_key(private_pem), load_public_key(public_pem)


def gateway_for(keys, url: str, **kwargs) -> AlipayWalletGateway:
    client = AlipayClient(url, APP_ID, keys[0], keys[1], seller_id="2088000000000001")
    return AlipayWalletGateway(client, **kwargs)


def _config(gateway: str, authorize_url: str = "") -> AlipayConfig:
    return AlipayConfig(gateway=gateway, app_id=APP_ID, app_private_key_file=Path("k"),
                        public_key_file=Path("p"), notify_url="https://h.example/notify/alipay",
                        authorize_url=authorize_url)


@pytest.mark.parametrize(
    ("gateway", "page"),
    [
        (PRODUCTION, "https://openauth.alipay.com/oauth2/publicAppAuthorize.htm"),
        (ALIPAY_SANDBOX, "https://openauth-sandbox.dl.alipaydev.com/oauth2/publicAppAuthorize.htm"),
        ("https://openapi.alipaydev.com/gateway.do",
         "https://openauth.alipaydev.com/oauth2/publicAppAuthorize.htm"),
        (OUR_SANDBOX, "http://127.0.0.1:8900/oauth2/publicAppAuthorize.htm"),
        ("https://wallet-sandbox.hospital.example/gateway.do",
         "https://wallet-sandbox.hospital.example/oauth2/publicAppAuthorize.htm"),
    ],
    ids=["production", "alipay-sandbox", "alipay-old-sandbox", "our-sandbox", "our-sandbox-https"],
)
def test_sign_in_url_is_the_page_published_for_the_gateway(keys, gateway, page):
    url = gateway_for(keys, gateway).sign_in_url("https://h.example/h5/?lang=en", "s-1")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == page
    assert {k: v[0] for k, v in parse_qs(parts.query).items()} == {
        "app_id": APP_ID, "scope": "auth_user", "redirect_uri": "https://h.example/h5/?lang=en",
        "state": "s-1"}
    assert _config(gateway).sign_in_page == page


def test_sign_in_page_override(keys):
    override = "https://auth.proxy.example/oauth2/publicAppAuthorize.htm"
    config = _config(PRODUCTION, authorize_url=override)
    assert config.sign_in_page == override
    url = gateway_for(keys, PRODUCTION, sign_in_page=config.sign_in_page).sign_in_url(
        "https://h.example/h5/", "s")
    assert url.startswith(override + "?app_id=")


def test_authorize_url_variable_is_read_and_checked():
    override = "https://auth.proxy.example/oauth2/publicAppAuthorize.htm"
    assert load_config({"ADAPTER_ALIPAY_AUTHORIZE_URL": override}).alipay.sign_in_page == override
    assert load_config({}).alipay.sign_in_page == (
        "http://127.0.0.1:8900/oauth2/publicAppAuthorize.htm")
    with pytest.raises(ValueError, match="ADAPTER_ALIPAY_AUTHORIZE_URL"):
        load_config({"ADAPTER_ALIPAY_AUTHORIZE_URL": "publicAppAuthorize.htm"})


@pytest.mark.parametrize("gateway", [PRODUCTION, ALIPAY_SANDBOX])
def test_in_alipay_the_page_pays_through_the_js_bridge(keys, gateway):
    pay = gateway_for(keys, gateway).pay_parameters("R1", "2026112622001", "https://h.example/b")
    assert pay == {"tradeNO": "2026112622001"}  # AlipayJSBridge tradePay; no cashier page


def test_our_sandbox_pays_on_its_cashier_page(keys):
    pay = gateway_for(keys, OUR_SANDBOX).pay_parameters("R1", "2026112622001",
                                                        "https://h.example/h5/bookings/B1")
    assert pay == {"tradeNO": "2026112622001", "cashier_url":
                   "http://127.0.0.1:8900/cashier/2026112622001"
                   "?return_url=https%3A%2F%2Fh.example%2Fh5%2Fbookings%2FB1"}
    assert gateway_for(keys, OUR_SANDBOX).pay_parameters("R1", "T1", "")["cashier_url"] == (
        "http://127.0.0.1:8900/cashier/T1")


def test_notification_answers_and_names(keys):
    gateway = gateway_for(keys, PRODUCTION)
    assert tuple(gateway.notification_answer("success")) == ("success", 200, "text/plain")
    assert tuple(gateway.notification_answer("refused")) == ("fail", 400, "text/plain")
    assert tuple(gateway.notification_answer("error")) == ("fail", 500, "text/plain")
    assert (gateway.display_name("zh-CN"), gateway.display_name("en")) == ("支付宝", "Alipay")
    assert (gateway.platform, gateway.app_id, gateway.merchant_id) == (
        "alipay", APP_ID, "2088000000000001")
