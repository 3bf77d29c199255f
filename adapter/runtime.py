"""The objects every role shares: configuration, database, mappings, HL7 profile, the flows'
merged contributions, the clock and the gateways to the HIS and the wallets."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from adapter import (
    billing,
    identity,
    payments,
    queueing,
    reconciliation,
    registration,
    results,
    retention,
    staff,
)
from adapter.clock import Clock, SystemClock
from adapter.config import Config, ConfigError
from adapter.db import make_engine, make_session_factory
from adapter.failures import safe_code
from adapter.flows import Flow, Merged, merge
from adapter.his.profile import Hl7Profile, load_profile, load_queue_statuses
from adapter.links import LinkBreakers
from adapter.mappings import Mappings, load_mappings
from adapter.models import Trade
from adapter.ports import WalletGateway
from adapter.registration.policy import RegistrationPolicy, load_registration_policy
from adapter.registration.rules import BookingRules, load_booking_rules

logger = logging.getLogger(__name__)

# The flows of this release. Adding a flow: its package declares a FLOW, and one line here.
FLOWS: tuple[Flow, ...] = (
    identity.FLOW,
    payments.FLOW,
    registration.FLOW,
    queueing.FLOW,
    results.FLOW,
    staff.FLOW,
    reconciliation.FLOW,
    billing.FLOW,
    retention.FLOW,
)


@dataclass
class Runtime:
    """Built once per process from a validated Config; roles take what they need from it."""

    config: Config
    engine: Engine
    session_factory: sessionmaker
    mappings: Mappings
    profile: Hl7Profile
    booking_rules: BookingRules = field(default_factory=BookingRules)
    policy: RegistrationPolicy = field(default_factory=RegistrationPolicy)
    clock: Clock = field(default_factory=SystemClock)
    flows: Merged = field(default_factory=lambda: merge(FLOWS))
    links: LinkBreakers = field(default_factory=LinkBreakers)
    # purpose -> handler run in the transaction that finds a trade paid
    paid_handlers: dict[str, Callable[[Session, Trade], None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for purpose, handler in self.flows.paid.items():
            self.paid_handlers.setdefault(purpose, self._bind_paid(handler))

    def _bind_paid(self, handler: Callable[..., None]) -> Callable[[Session, Trade], None]:
        return lambda session, trade: handler(self, session, trade, self.clock.now())

    @classmethod
    def from_config(cls, config: Config) -> Runtime:
        """Open the database and load (and validate) the mappings and HL7 profile."""
        engine = make_engine(config.effective_database_url)
        return cls(
            config=config,
            engine=engine,
            session_factory=make_session_factory(engine),
            mappings=load_mappings(config.mappings_dir),
            profile=load_queue_statuses(load_profile(config.mappings_dir / "hl7_profile.toml"),
                                        config.mappings_dir / "queue.toml"),
            booking_rules=load_booking_rules(config.mappings_dir / "booking_rules.toml"),
            policy=load_registration_policy(config.mappings_dir / "registration.toml"),
        )

    def check_files(self) -> None:
        """Read every file the configuration names (data key, wallet keys) now, so a role
        stops at start with the variable and the problem instead of failing at first use.

        Raises ConfigError listing every problem found.
        """
        from adapter.protection import KeyFileError
        from adapter.wallet.alipay.config import key_file_problems
        from adapter.wallet.wechatpay import config as wechatpay

        problems = []
        try:
            self.protector  # noqa: B018 - loading it is the check
        except KeyFileError as exc:
            problems.append(f"ADAPTER_DATA_KEY_FILE: {exc}")
        names = self.config.effective_wallets
        if "alipay" in names:
            problems += key_file_problems(
                self.config.alipay, sandbox_key_pending=self.config.alipay_public_key_file
                is None and self.config.environment == "development")
        if "wechatpay" in names and self.config.wechatpay is not None:
            problems += wechatpay.key_file_problems(
                self.config.wechatpay, sandbox_key_pending=bool(self.config.wechatpay_sandbox))
        if problems:
            raise ConfigError("; ".join(problems))

    @cached_property
    def wallets(self) -> dict[str, WalletGateway]:
        """The wallet platforms by name, the default first (ADAPTER_WALLETS; by default
        Alipay, then WeChat Pay when configured)."""
        from adapter.wallet.alipay.gateway import AlipayWalletGateway
        from adapter.wallet.wechatpay.gateway import WechatPayWalletGateway

        gateways: dict[str, Callable[[], WalletGateway]] = {
            "alipay": lambda: AlipayWalletGateway.from_config(self.config.alipay),
            "wechatpay": lambda: WechatPayWalletGateway.from_config(
                self.config.wechatpay, self.config.wechatpay_notify_url),
        }
        wallets = [gateways[name]() for name in self.config.effective_wallets
                   if name != "wechatpay" or self._wechatpay_ready()]
        return {wallet.platform: wallet for wallet in wallets}

    def warm_up(self) -> None:
        """Build the wallet clients now (their modules imported, their keys read and checked)
        instead of in the first request that needs one: a role started before the 7:30 rush
        answers its first notifications at full pace (that first build cost a notify worker
        about half a second of CPU, on the path from paid to confirmed)."""
        try:
            self.wallets  # noqa: B018 - a cached property: built once, here
        except Exception as exc:  # noqa: BLE001 - raised again, to its caller, at first use
            logger.warning("wallet clients not built at start (%s): built at first use",
                           safe_code(exc))

    def _wechatpay_ready(self) -> bool:
        """WeChat Pay is configured, and in development its sandbox has written its platform
        key (a role started without `run` has no sandbox: it goes on without WeChat Pay)."""
        section = self.config.wechatpay
        if section is None:
            return False
        if (self.config.wechatpay_sandbox and section.platform_public_key_file is not None
                and not section.platform_public_key_file.exists()):
            logger.warning("WeChat Pay sandbox not started (no platform key yet): "
                           "WeChat Pay is not offered; `hospital-adapter run` starts it")
            return False
        return True

    def wallet_for(self, platform: str) -> WalletGateway:
        """The wallet of a platform (a trade's, an account's); KeyError when none is configured."""
        return self.wallets[platform]

    @property
    def wallet(self) -> WalletGateway:
        """The default wallet (the first configured)."""
        return next(iter(self.wallets.values()))

    @wallet.setter
    def wallet(self, wallet: WalletGateway) -> None:
        # One wallet in place of all, e.g. a test's fake.
        self.wallets = {wallet.platform: wallet}

    @cached_property
    def protector(self) -> Any:  # noqa: ANN401 - a DataProtector
        """Encryption and blind indexes of personal data (ADAPTER_DATA_KEY_FILE)."""
        from adapter.protection import DataProtector, load_keyring

        return DataProtector(load_keyring(self.config.effective_data_key_file))

    @cached_property
    def sms(self) -> Any:  # noqa: ANN401 - an SmsSender
        """The hospital's SMS gateway (ADAPTER_SMS_GATEWAY)."""
        from adapter.registry.http import HttpSmsSender

        return HttpSmsSender(self.config.effective_sms_gateway)

    @cached_property
    def health_cards(self) -> Any:  # noqa: ANN401 - a HealthCardRegistry
        """The electronic health card registry (ADAPTER_HEALTH_CARD_REGISTRY)."""
        from adapter.registry.http import HttpHealthCardRegistry

        return HttpHealthCardRegistry(self.config.effective_health_card_registry)

    @cached_property
    def binding(self) -> Any:  # noqa: ANN401 - a BindingPolicy
        """How real-name binding is offered: the configured methods, the HIS profile's word
        on its phones."""
        from adapter.identity.binding import BindingPolicy

        return BindingPolicy(methods=self.config.effective_binding_methods,
                             his_confirmed=self.profile.patient_phone_confirmed)

    @cached_property
    def his(self) -> Any:  # noqa: ANN401 - a HisGateway
        """The HIS over MLLP (ADAPTER_HIS_MLLP)."""
        from adapter.his.gateway import MllpHisGateway

        return MllpHisGateway.from_runtime(self)
