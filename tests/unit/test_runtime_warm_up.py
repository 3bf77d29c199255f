"""A role builds its wallet clients before it serves (Runtime.warm_up): once, and a failure
to build them is logged by its kind only, then raised to the first caller that needs them."""

from __future__ import annotations

import logging

import pytest

from adapter.runtime import Runtime
from adapter.wallet.alipay.gateway import AlipayWalletGateway
from tests.fakes import FakeWallet
from tests.unit.conftest import MAP


@pytest.fixture
def fresh(runtime) -> Runtime:
    """A runtime whose wallets are built from configuration (not the fixture's fake)."""
    return Runtime(runtime.config, runtime.engine, runtime.session_factory, MAP,
                   runtime.profile)


def test_warm_up_builds_the_wallets_once_before_the_first_request(fresh, monkeypatch):
    built = []

    def from_config(section):
        built.append(section)
        wallet = FakeWallet()
        wallet.platform = "alipay"
        return wallet

    monkeypatch.setattr(AlipayWalletGateway, "from_config", staticmethod(from_config))
    fresh.warm_up()
    assert len(built) == 1
    assert fresh.wallet_for("alipay").platform == "alipay"
    fresh.warm_up()
    assert len(built) == 1  # built once, at start


def test_a_wallet_that_cannot_be_built_is_logged_by_kind_and_raised_at_first_use(
        fresh, monkeypatch, caplog):
    def from_config(section):
        raise ValueError("key file of 11010119800101001X unreadable")

    monkeypatch.setattr(AlipayWalletGateway, "from_config", staticmethod(from_config))
    with caplog.at_level(logging.WARNING):
        fresh.warm_up()  # the role still starts
    assert "ValueError" in caplog.text and "11010119800101001X" not in caplog.text
    with pytest.raises(ValueError):
        fresh.wallet_for("alipay")
