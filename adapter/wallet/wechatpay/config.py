"""WeChat Pay's section of the configuration (optional: off unless ADAPTER_WECHATPAY_MCHID is set).

:func:`load_wechatpay_config` reads the ``ADAPTER_WECHATPAY_*`` variables (adapter/config.py
calls it) and fails fast naming the variable at fault; :func:`key_file_problems` reads the files
they name. The API URL names the platform: WeChat's own hosts have their published OAuth page
and official-account API and pay through WeixinJSBridge; any other is taken for an imitation of
the platform (a sandbox), which serves those on its own host, plus a cashier page for browsers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from adapter.wallet.wechatpay import consts


class WechatPayConfigError(ValueError):
    """A WeChat Pay variable is missing, malformed or contradicts another."""


def is_wechat_host(url: str) -> bool:
    """The URL is WeChat's own, not an imitation's."""
    host = (urlsplit(url).hostname or "").lower()
    return any(host == domain or host.endswith("." + domain) for domain in consts.WECHAT_DOMAINS)


@dataclass(frozen=True)
class WechatPayConfig:
    """What the WeChat Pay wallet needs to know, each field from the variable named beside it."""

    mchid: str  # ADAPTER_WECHATPAY_MCHID: the merchant number
    appid: str  # ADAPTER_WECHATPAY_APPID: the official account's AppID the merchant is bound to
    private_key_file: Path  # ADAPTER_WECHATPAY_PRIVATE_KEY_FILE: apiclient_key.pem
    cert_serial_no: str  # ADAPTER_WECHATPAY_CERT_SERIAL: the merchant API certificate's serial
    apiv3_key_file: Path  # ADAPTER_WECHATPAY_APIV3_KEY_FILE
    app_secret_file: Path  # ADAPTER_WECHATPAY_APP_SECRET_FILE: the official account's AppSecret
    # Public-key mode: ADAPTER_WECHATPAY_PLATFORM_PUBLIC_KEY_FILE and _ID (PUB_KEY_ID_...).
    platform_public_key_file: Path | None = None
    platform_public_key_id: str = ""
    # Certificate mode: ADAPTER_WECHATPAY_PLATFORM_CERTIFICATES=on (both may be on while
    # WeChat moves a merchant from certificates to the public key).
    platform_certificates: bool = False
    api_url: str = consts.API_URL  # ADAPTER_WECHATPAY_API_URL
    oauth_url: str = ""  # ADAPTER_WECHATPAY_OAUTH_URL: the authorize page, if not derived
    official_api_url: str = ""  # ADAPTER_WECHATPAY_OFFICIAL_API_URL, if not derived
    template_id: str = ""  # ADAPTER_WECHATPAY_TEMPLATE_ID: the template message patients get
    template_field: str = consts.TEMPLATE_FIELD  # ADAPTER_WECHATPAY_TEMPLATE_FIELD

    @property
    def is_imitation(self) -> bool:
        """The API URL is not WeChat's own (a sandbox)."""
        return not is_wechat_host(self.api_url)

    @property
    def sign_in_page(self) -> str:
        """The OAuth2 authorize page."""
        if self.oauth_url:
            return self.oauth_url
        return urljoin(self.api_url, consts.OAUTH_PATH) if self.is_imitation else consts.OAUTH_URL

    @property
    def official_api(self) -> str:
        """The official-account API (token, template messages, OAuth code exchange)."""
        if self.official_api_url:
            return self.official_api_url
        return self.api_url if self.is_imitation else consts.OFFICIAL_API_URL

    @property
    def cashier_page(self) -> str:
        """An imitation's cashier page (``?prepay_id=`` follows); "" for WeChat itself, where
        the page pays through WeixinJSBridge."""
        return urljoin(self.api_url, consts.CASHIER_PATH) if self.is_imitation else ""


# The WeChat Pay sandbox as development's default merchant (`hospital-adapter run` starts the
# sandbox with these, and with keys generated under the data directory: adapter/devkeys.py).
SANDBOX_URL = "http://127.0.0.1:8901"
SANDBOX_MCHID = "1900000001"
SANDBOX_APPID = "wx0000000000000001"
SANDBOX_CERT_SERIAL = "5EA1D0B5A2B0C0DE0000000000000000DEV00001"
SANDBOX_PUBLIC_KEY_ID = "PUB_KEY_ID_0119000000010000000000000001"
SANDBOX_TEMPLATE_ID = "SANDBOX_TEMPLATE"
# The sandbox program's own options (ADAPTER_WECHATPAY_SANDBOX_*), not the adapter's.
_SANDBOX_PROGRAM = "ADAPTER_WECHATPAY_SANDBOX_"

_URLS = ("ADAPTER_WECHATPAY_API_URL", "ADAPTER_WECHATPAY_OAUTH_URL",
         "ADAPTER_WECHATPAY_OFFICIAL_API_URL")
_REQUIRED = ("ADAPTER_WECHATPAY_APPID", "ADAPTER_WECHATPAY_PRIVATE_KEY_FILE",
             "ADAPTER_WECHATPAY_CERT_SERIAL", "ADAPTER_WECHATPAY_APIV3_KEY_FILE",
             "ADAPTER_WECHATPAY_APP_SECRET_FILE")


def load_wechatpay_config(env: Mapping[str, str], *, production: bool) -> WechatPayConfig | None:
    """The section from the environment; None (WeChat Pay off) when ADAPTER_WECHATPAY_MCHID is
    not set. Raises WechatPayConfigError naming the variable at fault."""
    def get(name: str) -> str:
        return env.get(name, "").strip()

    if get("ADAPTER_WECHATPAY").lower() not in ("", "on", "off"):
        raise WechatPayConfigError("ADAPTER_WECHATPAY must be on or off")
    if get("ADAPTER_WECHATPAY_MCHID") and get("ADAPTER_WECHATPAY").lower() == "off":
        raise WechatPayConfigError("ADAPTER_WECHATPAY=off contradicts ADAPTER_WECHATPAY_MCHID")
    if not get("ADAPTER_WECHATPAY_MCHID"):
        # In development the API URL may name the sandbox of the default (sandbox_url).
        allowed = () if production else ("ADAPTER_WECHATPAY_API_URL",)
        others = sorted(name for name in env if name.startswith("ADAPTER_WECHATPAY_")
                        and get(name) and not name.startswith(_SANDBOX_PROGRAM)
                        and name not in allowed)
        if others:
            raise WechatPayConfigError(f"{others[0]} is set but ADAPTER_WECHATPAY_MCHID is not: "
                                       "set it to turn WeChat Pay on, or unset the others")
        return None
    for name in _REQUIRED:
        if not get(name):
            raise WechatPayConfigError(
                f"WeChat Pay is on (ADAPTER_WECHATPAY_MCHID) and needs {name}")
    key_file, key_id = get("ADAPTER_WECHATPAY_PLATFORM_PUBLIC_KEY_FILE"), get(
        "ADAPTER_WECHATPAY_PLATFORM_PUBLIC_KEY_ID")
    if bool(key_file) != bool(key_id):
        raise WechatPayConfigError("ADAPTER_WECHATPAY_PLATFORM_PUBLIC_KEY_FILE and "
                                   "ADAPTER_WECHATPAY_PLATFORM_PUBLIC_KEY_ID go together")
    if key_id and not key_id.startswith(consts.PUBLIC_KEY_ID_PREFIX):
        raise WechatPayConfigError("ADAPTER_WECHATPAY_PLATFORM_PUBLIC_KEY_ID must be the key's "
                                   f"id, {consts.PUBLIC_KEY_ID_PREFIX}...")
    switch = get("ADAPTER_WECHATPAY_PLATFORM_CERTIFICATES").lower()
    if switch not in ("", "on", "off"):
        raise WechatPayConfigError("ADAPTER_WECHATPAY_PLATFORM_CERTIFICATES must be on or off")
    if not key_file and switch != "on":
        raise WechatPayConfigError(
            "WeChat Pay needs a way to verify the platform: ADAPTER_WECHATPAY_PLATFORM_PUBLIC_KEY_"
            "FILE and _ID (public-key mode), or ADAPTER_WECHATPAY_PLATFORM_CERTIFICATES=on")
    for name in _URLS:
        value = get(name)
        if value and not value.startswith(("https://", "http://")):
            raise WechatPayConfigError(f"{name} must be an http(s) URL")
        if value and production and not value.startswith("https://"):
            raise WechatPayConfigError(f"{name} must be https:// in production")
    if production and not get("ADAPTER_WECHATPAY_TEMPLATE_ID"):
        raise WechatPayConfigError("ADAPTER_ENV=production needs ADAPTER_WECHATPAY_TEMPLATE_ID")
    return WechatPayConfig(
        mchid=get("ADAPTER_WECHATPAY_MCHID"),
        appid=get("ADAPTER_WECHATPAY_APPID"),
        private_key_file=Path(get("ADAPTER_WECHATPAY_PRIVATE_KEY_FILE")),
        cert_serial_no=get("ADAPTER_WECHATPAY_CERT_SERIAL").upper(),
        apiv3_key_file=Path(get("ADAPTER_WECHATPAY_APIV3_KEY_FILE")),
        app_secret_file=Path(get("ADAPTER_WECHATPAY_APP_SECRET_FILE")),
        platform_public_key_file=Path(key_file) if key_file else None,
        platform_public_key_id=key_id,
        platform_certificates=switch == "on",
        api_url=get("ADAPTER_WECHATPAY_API_URL") or consts.API_URL,
        oauth_url=get("ADAPTER_WECHATPAY_OAUTH_URL"),
        official_api_url=get("ADAPTER_WECHATPAY_OFFICIAL_API_URL"),
        template_id=get("ADAPTER_WECHATPAY_TEMPLATE_ID"),
        template_field=get("ADAPTER_WECHATPAY_TEMPLATE_FIELD") or consts.TEMPLATE_FIELD,
    )


def sandbox_url(env: Mapping[str, str], *, production: bool) -> str:
    """Where development's default WeChat Pay is (the sandbox `run` starts): ADAPTER_WECHATPAY_
    API_URL or 127.0.0.1:8901; "" in production, with a merchant of one's own
    (ADAPTER_WECHATPAY_MCHID), or with ADAPTER_WECHATPAY=off."""
    if (production or env.get("ADAPTER_WECHATPAY_MCHID", "").strip()
            or env.get("ADAPTER_WECHATPAY", "").strip().lower() == "off"):
        return ""
    url = env.get("ADAPTER_WECHATPAY_API_URL", "").strip() or SANDBOX_URL
    if not url.startswith(("https://", "http://")):
        raise WechatPayConfigError("ADAPTER_WECHATPAY_API_URL must be an http(s) URL")
    return url


def sandbox_section(api_url: str, keys_dir: Path) -> WechatPayConfig:
    """Development's default: the sandbox's merchant, with the keys under ``keys_dir``."""
    return WechatPayConfig(
        mchid=SANDBOX_MCHID, appid=SANDBOX_APPID,
        private_key_file=keys_dir / "wechatpay_merchant_key.pem",
        cert_serial_no=SANDBOX_CERT_SERIAL, apiv3_key_file=keys_dir / "wechatpay_apiv3.key",
        app_secret_file=keys_dir / "wechatpay_app_secret",
        platform_public_key_file=keys_dir / "wechatpay_platform_public_key.pem",
        platform_public_key_id=SANDBOX_PUBLIC_KEY_ID, api_url=api_url,
        template_id=SANDBOX_TEMPLATE_ID)


def key_file_problems(config: WechatPayConfig, *, sandbox_key_pending: bool = False
                      ) -> list[str]:
    """Read every file the section names now: one line per problem, naming the variable.

    ``sandbox_key_pending``: the platform key is the development sandbox's, which the sandbox
    writes when it starts; not there yet is no problem."""
    from adapter.wallet.wechatpay.signing import (
        KeyFormatError,
        load_apiv3_key,
        load_private_key,
        load_public_key,
    )

    def secret(text: str) -> str:
        if not text.strip():
            raise KeyFormatError("empty")
        return text

    checks = [("ADAPTER_WECHATPAY_PRIVATE_KEY_FILE", config.private_key_file, load_private_key),
              ("ADAPTER_WECHATPAY_APIV3_KEY_FILE", config.apiv3_key_file, load_apiv3_key),
              ("ADAPTER_WECHATPAY_APP_SECRET_FILE", config.app_secret_file, secret)]
    if config.platform_public_key_file is not None and not (
            sandbox_key_pending and not config.platform_public_key_file.exists()):
        checks.append(("ADAPTER_WECHATPAY_PLATFORM_PUBLIC_KEY_FILE",
                       config.platform_public_key_file, load_public_key))
    problems = []
    for variable, path, load in checks:
        try:
            load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            problems.append(f"{variable}: {path} does not exist")
        except OSError as exc:
            problems.append(f"{variable}: cannot read {path}: {exc.strerror}")
        except (KeyFormatError, UnicodeDecodeError) as exc:
            problems.append(f"{variable}: {path}: {exc}")
    return problems
