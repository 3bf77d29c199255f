"""Alipay's section of the configuration, and the pages of the platform it points at.

adapter/config.py reads the ``ADAPTER_ALIPAY_*`` variables and validates them; this dataclass is
what the Alipay package takes from them. The gateway URL names the platform: Alipay's own
gateways (production and Alipay's sandbox) have their published authorisation pages and pay
through the wallet's JS bridge; any other gateway is taken for an imitation of the platform (our
wallet sandbox), which serves the same path on its own host, plus a cashier page for browsers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from adapter.wallet.alipay import consts


def is_alipay_gateway(gateway: str) -> bool:
    """The gateway is Alipay's own (production or Alipay's sandbox), not an imitation."""
    host = (urlsplit(gateway).hostname or "").lower()
    return any(host == domain or host.endswith("." + domain) for domain in consts.ALIPAY_DOMAINS)


def sign_in_page_for(gateway: str) -> str:
    """The user-authorisation page (publicAppAuthorize.htm) that goes with a gateway."""
    host = (urlsplit(gateway).hostname or "").lower()
    if host in consts.AUTHORIZE_PAGES:
        return consts.AUTHORIZE_PAGES[host]
    if is_alipay_gateway(gateway):
        return consts.AUTHORIZE_PAGES[consts.PRODUCTION_GATEWAY_HOST]
    return urljoin(gateway, consts.AUTHORIZE_PATH)  # an imitation: the same path on its host


def cashier_page_for(gateway: str) -> str:
    """An imitation's cashier page prefix (the trade_no follows); "" for Alipay itself, where
    the page pays through the wallet's JS bridge instead."""
    return "" if is_alipay_gateway(gateway) else urljoin(gateway, "cashier/")


@dataclass(frozen=True)
class AlipayConfig:
    """What the Alipay wallet needs to know, each field from the variable named beside it."""

    gateway: str  # ADAPTER_ALIPAY_GATEWAY: the gateway.do URL
    app_id: str  # ADAPTER_ALIPAY_APP_ID
    app_private_key_file: Path  # ADAPTER_ALIPAY_APP_PRIVATE_KEY_FILE (or the development key)
    public_key_file: Path  # ADAPTER_ALIPAY_PUBLIC_KEY_FILE: the platform's key, not ours
    notify_url: str  # <ADAPTER_PUBLIC_URL>/notify/alipay
    seller_id: str = ""  # ADAPTER_ALIPAY_SELLER_ID: the merchant's PID; "" leaves it unchecked
    message_template_id: str = ""  # ADAPTER_ALIPAY_MESSAGE_TEMPLATE_ID
    authorize_url: str = ""  # ADAPTER_ALIPAY_AUTHORIZE_URL: the sign-in page, if not derived

    @property
    def sign_in_page(self) -> str:
        """ADAPTER_ALIPAY_AUTHORIZE_URL, or the page that goes with the gateway."""
        return self.authorize_url or sign_in_page_for(self.gateway)

    @property
    def cashier_page(self) -> str:
        """The imitation's cashier page prefix; "" for Alipay itself."""
        return cashier_page_for(self.gateway)


def key_file_problems(config: AlipayConfig, *, sandbox_key_pending: bool = False) -> list[str]:
    """Read both key files now: one line per problem, naming the variable (a role stops on any,
    rather than failing at its first payment).

    ``sandbox_key_pending``: no variable names the platform key and the development default is
    the wallet sandbox's, which the sandbox writes when it starts; not there yet is no problem.
    """
    from adapter.wallet.alipay.signing import KeyFormatError, load_private_key, load_public_key

    problems = []
    for variable, path, load in (
        ("ADAPTER_ALIPAY_APP_PRIVATE_KEY_FILE", config.app_private_key_file, load_private_key),
        ("ADAPTER_ALIPAY_PUBLIC_KEY_FILE", config.public_key_file, load_public_key),
    ):
        if load is load_public_key and sandbox_key_pending and not path.exists():
            continue
        try:
            load(path.read_bytes())
        except FileNotFoundError:
            problems.append(f"{variable}: {path} does not exist")
        except OSError as exc:
            problems.append(f"{variable}: cannot read {path}: {exc.strerror}")
        except KeyFormatError as exc:
            problems.append(f"{variable}: {path}: {exc}")
    return problems
