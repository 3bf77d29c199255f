"""The objects every role shares: configuration, database, mappings and HL7 profile."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from adapter.config import Config
from adapter.db import make_engine, make_session_factory
from adapter.his.profile import Hl7Profile, load_profile
from adapter.identity import BookingRules, load_booking_rules
from adapter.mappings import Mappings, load_mappings
from adapter.registration import (
    RegistrationPolicy,
    load_registration_policy,
    on_registration_paid,
)

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Built once per process from a validated Config; roles take what they need from it."""

    config: Config
    engine: Engine
    session_factory: sessionmaker
    mappings: Mappings
    profile: Hl7Profile
    # purpose -> handler run in the payment's transaction when a trade becomes paid
    paid_handlers: dict[str, Callable[..., None]] = field(default_factory=dict)
    booking_rules: BookingRules = field(default_factory=BookingRules)
    policy: RegistrationPolicy = field(default_factory=RegistrationPolicy)

    def __post_init__(self) -> None:
        tz, mappings = self.config.tz, self.mappings
        self.paid_handlers.setdefault(
            "registration",
            lambda session, trade: on_registration_paid(session, trade, mappings=mappings,
                                                        tz=tz),
        )

    @classmethod
    def from_config(cls, config: Config) -> Runtime:
        """Open the database and load (and validate) the mappings and HL7 profile."""
        engine = make_engine(config.effective_database_url)
        return cls(
            config=config,
            engine=engine,
            session_factory=make_session_factory(engine),
            mappings=load_mappings(config.mappings_dir),
            profile=load_profile(config.mappings_dir / "hl7_profile.toml"),
            booking_rules=load_booking_rules(config.mappings_dir / "booking_rules.toml"),
            policy=load_registration_policy(config.mappings_dir / "registration.toml"),
        )

    @cached_property
    def alipay_public_key(self) -> Any:  # noqa: ANN401 - RSAPublicKey
        """The platform's public key that signs responses and notifications."""
        from adapter.wallet.alipay.signing import load_public_key

        return load_public_key(self.config.effective_alipay_public_key_file.read_text())

    @cached_property
    def wallet(self) -> Any:  # noqa: ANN401 - a WalletGateway
        """The wallet platform (Alipay OpenAPI at ADAPTER_ALIPAY_GATEWAY)."""
        from adapter.wallet.alipay.client import AlipayClient
        from adapter.wallet.alipay.gateway import AlipayWalletGateway

        config = self.config
        client = AlipayClient(
            config.alipay_gateway,
            config.alipay_app_id,
            config.effective_app_private_key_file.read_text(),
            self.alipay_public_key,
            seller_id=config.alipay_seller_id,
            notify_url=f"{config.effective_public_url}/notify/alipay",
            # production requires the variable (Config.validate); the sandbox takes any id
            message_template_id=config.alipay_message_template_id or "SANDBOX_TEMPLATE",
        )
        return AlipayWalletGateway(client)

    @cached_property
    def protector(self) -> Any:  # noqa: ANN401 - a DataProtector
        """Encryption and blind indexes of personal data (ADAPTER_DATA_KEY_FILE)."""
        from adapter.protection import DataProtector, load_keyring

        return DataProtector(load_keyring(self.config.effective_data_key_file))

    @cached_property
    def his(self) -> Any:  # noqa: ANN401 - a HisGateway
        """The HIS over MLLP (ADAPTER_HIS_MLLP)."""
        from adapter.his.gateway import MllpHisGateway

        return MllpHisGateway.from_runtime(self)
