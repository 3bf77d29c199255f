"""Configuration: one dataclass built from explicitly named ``ADAPTER_*`` environment variables.

Nothing reads the environment at import time; :func:`load_config` is called by the app factory
and the CLI, and fails fast with a message naming the variable at fault.
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from adapter.config_values import (
    ConfigError,
    days_or_off,
    number,
    optional_number,
    secret,
    switch,
    time_of_day,
    whole,
)
from adapter.wallet.alipay.config import AlipayConfig
from adapter.wallet.wechatpay.config import (
    WechatPayConfig,
    WechatPayConfigError,
    load_wechatpay_config,
)
from adapter.wallet.wechatpay.config import sandbox_url as wechatpay_sandbox_url


@dataclass(frozen=True)
class Address:
    """A host:port pair as given in ADAPTER_*_LISTEN and ADAPTER_HIS_MLLP."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_address(value: str, name: str) -> Address:
    """Parse ``host:port`` (IPv6 as ``[::1]:2575``) or raise ConfigError naming the variable."""
    host, sep, port_text = value.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"{name} must be host:port (for example 127.0.0.1:2575), got {value!r}")
    return Address(host, int(port_text))


@dataclass(frozen=True)
class Throttles:
    """Request rates allowed per client IP and per signed-in account, in Flask-Limiter's
    notation ("10/minute;30/hour"): a patient never reaches them, a bot does. Per-IP rates are
    generous because a hospital's Wi-Fi or a carrier's NAT puts many patients behind one IP."""

    sign_in_per_ip: str = "60/minute"
    sign_in_per_account: str = "10/minute"
    booking_per_ip: str = "120/minute"
    booking_per_account: str = "10/minute;30/hour"
    payment_per_ip: str = "120/minute"
    payment_per_account: str = "10/minute"
    slots_per_ip: str = "600/minute"
    slots_per_account: str = "60/minute"
    # Only refused notices count: a wallet's genuine ones are never throttled.
    notify_refused_per_ip: str = "120/minute"


MIN_RETENTION_DAYS = 7

WALLETS = ("alipay", "wechatpay")  # ADAPTER_WALLETS: the platforms runtime.py can wire
BINDING_METHODS = ("his_match", "health_card")  # adapter.identity.binding.METHODS
THROTTLE_STORAGE_SCHEMES = ("memory", "redis", "rediss", "redis+unix", "redis+sentinel",
                            "redis+cluster")


def _default_mappings_dir() -> Path:
    from adapter.mappings import default_mappings_dir

    return default_mappings_dir()


@dataclass(frozen=True)
class Config:
    """Everything the adapter's roles need to know, validated once."""

    environment: str = "development"  # development | production
    data_dir: Path = Path("var")
    database_url: str = ""  # default: SQLite file in data_dir
    web_listen: Address = Address("127.0.0.1", 8000)
    mllp_listen: Address = Address("127.0.0.1", 2575)
    his_mllp: Address = Address("127.0.0.1", 2576)
    his_connect_timeout: float = 5.0
    his_ack_timeout: float = 30.0
    mllp_idle_timeout: float = 300.0
    mllp_frame_timeout: float = 30.0
    mllp_max_frame_bytes: int = 16 * 1024 * 1024
    mappings_dir: Path = field(default_factory=_default_mappings_dir)
    hospital_timezone: str = "Asia/Shanghai"
    slot_sync_interval: float = 300.0  # seconds between SQM^S25 pulls of the slot pool
    link_check_interval: float = 15.0  # seconds between the worker's checks of HIS and wallets
    # When the worker reconciles yesterday (hospital's zone; the wallet's bill is out by then);
    # None: never (ADAPTER_RECONCILE_AT=off), reconcile with the CLI only.
    reconcile_at: dt.time | None = dt.time(10, 0)
    # Check-in (签到) on the visit day: from this long before the slot's start to this long
    # after it; remotely inside the fence around the hospital (no centre: on site by QR only),
    # or with a QR code whose token lasts check_in_token_minutes.
    check_in_opens_minutes: float = 60.0
    check_in_closes_minutes: float = 15.0
    hospital_latitude: float | None = None
    hospital_longitude: float | None = None
    geofence_radius_m: float = 500.0
    check_in_token_minutes: float = 10.0
    inbound_batch_size: int = 100
    # Outbox items one worker delivers at once, and MLLP connections it keeps open to the HIS.
    outbox_concurrency: int = 4
    his_connections: int = 4
    public_url: str = ""  # base of the URLs the wallet calls back (notify) and redirects to
    # Base of the URLs the wallets post their notifications to, where the hospital serves them
    # apart from the patients' traffic (a web instance of their own); "": public_url.
    notify_base_url: str = ""
    secret_key: str = ""
    session_idle_minutes: float = 30.0  # a patient session unused this long ends
    session_max_hours: float = 12.0  # and every session ends this long after sign-in
    # Staff sessions of /admin/ (adapter/staff): shorter than a patient's, the screens show
    # medical data; and the lockout after repeated wrong passwords.
    staff_session_idle_minutes: float = 15.0
    staff_session_max_hours: float = 10.0
    staff_lockout_failures: int = 5
    staff_lockout_minutes: float = 15.0
    # Origins besides ADAPTER_PUBLIC_URL's whose pages may write to /api/v1 with the cookie.
    allowed_origins: tuple[str, ...] = ()
    alipay_gateway: str = "http://127.0.0.1:8900/gateway.do"  # the sandbox in development
    alipay_app_id: str = "2021000000000001"
    alipay_seller_id: str = ""  # the merchant's PID (2088...); checked on every notification
    # The service-window template (chosen in the Alipay console) that patient messages use.
    alipay_message_template_id: str = ""
    alipay_app_private_key_file: Path | None = None  # default: generated under data_dir
    alipay_public_key_file: Path | None = None  # the platform's key; default: the sandbox's
    alipay_authorize_url: str = ""  # the sign-in page; default: the one of the gateway
    # WeChat Pay (ADAPTER_WECHATPAY_*, adapter/wallet/wechatpay/config.py): None when off; in
    # development the sandbox at wechatpay_sandbox (devkeys.ensure_development_keys fills it).
    wechatpay: WechatPayConfig | None = None
    wechatpay_sandbox: str = ""
    # ADAPTER_WALLETS: the wallets offered, the default first; none given: Alipay, then WeChat
    # Pay when configured.
    wallets: tuple[str, ...] = ()
    data_key_file: Path | None = None  # AES-GCM + blind index keys; default: under data_dir
    # /notify/<platform>: a larger body is 413 unread (a wallet's notice is a few KB); of the
    # notices that are not signed only this many are kept, without their bodies.
    notify_max_bytes: int = 64 * 1024
    notify_refused_kept: int = 1000
    throttle: bool = True  # ADAPTER_THROTTLE=off switches every throttle off (benchmarks)
    # memory:// counts in each process; several workers or instances share a redis:// one.
    throttle_storage: str = "memory://"
    throttle_key_prefix: str = "hospital-adapter"
    throttles: Throttles = field(default_factory=Throttles)
    # Reverse proxies in front of the web role (nginx: 1) whose X-Forwarded-For is believed;
    # 0 takes the connection's address, so a client cannot pick its own.
    trusted_proxies: int = 0
    # Fee payment (docs/billing.md): how long charges stay locked in the HIS for an unpaid
    # trade, and how long a paid bill keeps trying to post before it is refunded and raised.
    bill_payment_minutes: float = 15.0
    bill_commit_give_up_minutes: float = 30.0
    # Retention (docs/operations.md): finished messages older than this many days are pruned
    # by the worker (None: ADAPTER_RETENTION_DAYS=off, never), archived first to archive_dir.
    retention_days: int | None = 90
    archive_dir: Path | None = None
    # Real-name binding of accounts the wallet did not certify (docs/identity.md): the methods
    # offered (none given: in development both, in production those whose service is set),
    # the hospital's SMS gateway and the electronic health card registry (JSON over HTTP,
    # adapter/registry/); in development both default to the wallet sandbox's.
    binding_methods: tuple[str, ...] = ()
    sms_gateway: str = ""
    health_card_registry: str = ""

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        """The hospital's time zone (slot dates and release times are in it)."""
        return zoneinfo.ZoneInfo(self.hospital_timezone)

    @property
    def keys_dir(self) -> Path:
        """Where the embedded defaults keep generated keys (development only)."""
        return self.data_dir / "keys"

    @property
    def effective_data_key_file(self) -> Path:
        """ADAPTER_DATA_KEY_FILE, or the development key generated under data_dir."""
        return self.data_key_file or self.keys_dir / "data.key"

    @property
    def effective_app_private_key_file(self) -> Path:
        """ADAPTER_ALIPAY_APP_PRIVATE_KEY_FILE, or the development key under data_dir."""
        return self.alipay_app_private_key_file or self.keys_dir / "alipay_app_private_key.pem"

    @property
    def effective_alipay_public_key_file(self) -> Path:
        """ADAPTER_ALIPAY_PUBLIC_KEY_FILE, or the wallet sandbox's key under data_dir."""
        return self.alipay_public_key_file or self.keys_dir / "alipay_public_key.pem"

    @property
    def public_origin(self) -> str:
        """scheme://host[:port] of the effective public URL (what browsers send as Origin)."""
        return origin_of(self.effective_public_url)

    @property
    def effective_public_url(self) -> str:
        """ADAPTER_PUBLIC_URL, or the web role's own address in development."""
        return (self.public_url or f"http://{self.web_listen}").rstrip("/")

    @property
    def effective_notify_base_url(self) -> str:
        """ADAPTER_NOTIFY_BASE_URL, or the public URL."""
        return (self.notify_base_url or self.effective_public_url).rstrip("/")

    @property
    def alipay(self) -> AlipayConfig:
        """The Alipay wallet's section (ADAPTER_ALIPAY_*), with development defaults filled in."""
        return AlipayConfig(
            gateway=self.alipay_gateway,
            app_id=self.alipay_app_id,
            app_private_key_file=self.effective_app_private_key_file,
            public_key_file=self.effective_alipay_public_key_file,
            notify_url=f"{self.effective_notify_base_url}/notify/alipay",
            seller_id=self.alipay_seller_id,
            # production requires the variable (validate); the sandbox takes any id
            message_template_id=self.alipay_message_template_id or "SANDBOX_TEMPLATE",
            authorize_url=self.alipay_authorize_url,
        )

    @property
    def effective_wallets(self) -> tuple[str, ...]:
        """ADAPTER_WALLETS, or Alipay and (when configured) WeChat Pay."""
        return self.wallets or ("alipay",) + (("wechatpay",) if self.wechatpay else ())

    @property
    def effective_binding_methods(self) -> tuple[str, ...]:
        """ADAPTER_BINDING_METHODS; unset, both in development, and in production the methods
        whose service is configured."""
        if self.binding_methods:
            return self.binding_methods
        if self.environment == "development":
            return BINDING_METHODS
        return tuple(method for method, url in (("his_match", self.sms_gateway),
                                                ("health_card", self.health_card_registry))
                     if url)

    @property
    def effective_sms_gateway(self) -> str:
        """ADAPTER_SMS_GATEWAY, or the wallet sandbox's SMS inbox in development."""
        return self.sms_gateway or f"{origin_of(self.alipay_gateway)}/sms/send"

    @property
    def effective_health_card_registry(self) -> str:
        """ADAPTER_HEALTH_CARD_REGISTRY, or the wallet sandbox's registry in development."""
        return self.health_card_registry or f"{origin_of(self.alipay_gateway)}/health-card"

    @property
    def wechatpay_notify_url(self) -> str:
        """Where WeChat Pay posts its callbacks."""
        return f"{self.effective_notify_base_url}/notify/wechatpay"

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to an embedded SQLite file under data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'adapter.db').resolve()}"

    def validate(self) -> Config:
        """Check values and contradictions; raise ConfigError naming the variable."""
        if self.environment not in ("development", "production"):
            raise ConfigError("ADAPTER_ENV must be development or production")
        try:
            zoneinfo.ZoneInfo(self.hospital_timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"ADAPTER_TIMEZONE {self.hospital_timezone!r} is not a known time zone"
            ) from exc
        if self.mllp_listen == self.his_mllp:
            raise ConfigError(
                "ADAPTER_MLLP_LISTEN and ADAPTER_HIS_MLLP name the same address: the adapter "
                "would send HL7 to itself"
            )
        for name, value in (
            ("ADAPTER_HIS_CONNECT_TIMEOUT", self.his_connect_timeout),
            ("ADAPTER_HIS_ACK_TIMEOUT", self.his_ack_timeout),
            ("ADAPTER_MLLP_IDLE_TIMEOUT", self.mllp_idle_timeout),
            ("ADAPTER_MLLP_FRAME_TIMEOUT", self.mllp_frame_timeout),
            ("ADAPTER_SLOT_SYNC_INTERVAL", self.slot_sync_interval),
            ("ADAPTER_LINK_CHECK_INTERVAL", self.link_check_interval),
        ):
            if value <= 0:
                raise ConfigError(f"{name} must be a positive number of seconds")
        self._validate_check_in()
        if self.session_idle_minutes <= 0 or self.session_max_hours <= 0:
            raise ConfigError(
                "ADAPTER_SESSION_IDLE_MINUTES and ADAPTER_SESSION_MAX_HOURS must be positive")
        if self.session_idle_minutes > self.session_max_hours * 60:
            raise ConfigError("ADAPTER_SESSION_IDLE_MINUTES is longer than "
                              "ADAPTER_SESSION_MAX_HOURS: the idle timeout would never apply")
        if self.staff_session_idle_minutes <= 0 or self.staff_session_max_hours <= 0:
            raise ConfigError("ADAPTER_STAFF_SESSION_IDLE_MINUTES and "
                              "ADAPTER_STAFF_SESSION_MAX_HOURS must be positive")
        if self.staff_session_idle_minutes > self.staff_session_max_hours * 60:
            raise ConfigError("ADAPTER_STAFF_SESSION_IDLE_MINUTES is longer than "
                              "ADAPTER_STAFF_SESSION_MAX_HOURS: the idle timeout would never apply")
        if self.staff_lockout_failures < 1 or self.staff_lockout_minutes <= 0:
            raise ConfigError("ADAPTER_STAFF_LOCKOUT_FAILURES must be 1 or more and "
                              "ADAPTER_STAFF_LOCKOUT_MINUTES positive")
        if not 1 <= self.bill_payment_minutes <= 120:
            raise ConfigError("ADAPTER_BILL_PAYMENT_MINUTES must be between 1 and 120")
        if self.bill_commit_give_up_minutes < 1:
            raise ConfigError("ADAPTER_BILL_COMMIT_GIVE_UP_MINUTES must be at least 1")
        if self.retention_days is not None and self.retention_days < MIN_RETENTION_DAYS:
            # The queue's pace estimate reads three days back, reconciliation yesterday's
            # messages; a week leaves room for a late re-run.
            raise ConfigError(f"ADAPTER_RETENTION_DAYS must be {MIN_RETENTION_DAYS} or more, "
                              "or off")
        for origin in self.allowed_origins:
            if origin_of(origin) != origin:
                raise ConfigError("ADAPTER_ALLOWED_ORIGINS must list origins such as "
                                  f"https://h5.example.cn (no path, no slash), got {origin!r}")
        for name, count in (
            ("ADAPTER_NOTIFY_MAX_BYTES", self.notify_max_bytes),
            ("ADAPTER_NOTIFY_REFUSED_KEPT", self.notify_refused_kept),
        ):
            if count < 1:
                raise ConfigError(f"{name} must be a whole number of 1 or more")
        url = self.database_url
        if url and not (url.startswith("sqlite") or url.startswith("postgresql")):
            raise ConfigError("ADAPTER_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        if len(set(self.wallets)) != len(self.wallets) or not set(self.wallets) <= set(WALLETS):
            raise ConfigError("ADAPTER_WALLETS must list alipay and/or wechatpay, once each")
        if "wechatpay" in self.wallets and not (self.wechatpay or self.wechatpay_sandbox):
            raise ConfigError("ADAPTER_WALLETS names wechatpay: set ADAPTER_WECHATPAY_MCHID")
        if self.environment == "production":
            if not url.startswith("postgresql"):
                raise ConfigError(
                    "ADAPTER_ENV=production needs ADAPTER_DATABASE_URL to name PostgreSQL "
                    "(SQLite is the embedded default for trying the adapter out)"
                )
            if not self.secret_key:
                raise ConfigError(
                    "ADAPTER_ENV=production needs ADAPTER_SECRET_KEY or ADAPTER_SECRET_KEY_FILE"
                )
            off = "alipay" not in self.effective_wallets  # its keys only where it is offered
            for name, value in (
                ("ADAPTER_DATA_KEY_FILE", self.data_key_file),
                ("ADAPTER_ALIPAY_APP_PRIVATE_KEY_FILE", off or self.alipay_app_private_key_file),
                ("ADAPTER_ALIPAY_PUBLIC_KEY_FILE", off or self.alipay_public_key_file),
                ("ADAPTER_ALIPAY_SELLER_ID", off or self.alipay_seller_id),
                ("ADAPTER_ALIPAY_MESSAGE_TEMPLATE_ID", off or self.alipay_message_template_id),
                ("ADAPTER_PUBLIC_URL", self.public_url),
            ):
                if not value:
                    raise ConfigError(f"ADAPTER_ENV=production needs {name}")
            for name, url in (("ADAPTER_PUBLIC_URL", self.public_url),
                              ("ADAPTER_NOTIFY_BASE_URL", self.notify_base_url or "https://")):
                if not url.startswith("https://"):
                    raise ConfigError(f"{name} must be https:// in production")
        self._validate_throttles()
        self._validate_binding()
        if not self.alipay_gateway.startswith(("http://", "https://")):
            raise ConfigError("ADAPTER_ALIPAY_GATEWAY must be an http(s) URL")
        if self.alipay_authorize_url and not self.alipay_authorize_url.startswith(
                ("http://", "https://")):
            raise ConfigError("ADAPTER_ALIPAY_AUTHORIZE_URL must be an http(s) URL")
        return self


    def _validate_binding(self) -> None:
        if any(m not in BINDING_METHODS for m in self.binding_methods):
            raise ConfigError("ADAPTER_BINDING_METHODS must list his_match and/or health_card")
        for name, url, method in (("ADAPTER_SMS_GATEWAY", self.sms_gateway, "his_match"),
                                  ("ADAPTER_HEALTH_CARD_REGISTRY", self.health_card_registry,
                                   "health_card")):
            if url and not url.startswith(("http://", "https://")):
                raise ConfigError(f"{name} must be an http(s) URL")
            if self.environment == "production" and method in self.binding_methods and not url:
                raise ConfigError(f"ADAPTER_ENV=production with {method} binding needs {name}")

    def _validate_check_in(self) -> None:
        if self.check_in_opens_minutes < 0 or self.check_in_closes_minutes < 0:
            raise ConfigError("ADAPTER_CHECK_IN_OPENS_MINUTES and ADAPTER_CHECK_IN_CLOSES_MINUTES "
                              "must be 0 or more")
        if self.check_in_token_minutes <= 0:
            raise ConfigError("ADAPTER_CHECK_IN_TOKEN_MINUTES must be a positive number")
        if (self.hospital_latitude is None) != (self.hospital_longitude is None):
            raise ConfigError("ADAPTER_HOSPITAL_LATITUDE and ADAPTER_HOSPITAL_LONGITUDE go "
                              "together: set both for remote check-in, or neither")
        if self.hospital_latitude is not None and not (
                -90 <= self.hospital_latitude <= 90 and -180 <= self.hospital_longitude <= 180):
            raise ConfigError("ADAPTER_HOSPITAL_LATITUDE must be within -90..90 and "
                              "ADAPTER_HOSPITAL_LONGITUDE within -180..180 (decimal degrees)")
        if self.geofence_radius_m <= 0:
            raise ConfigError("ADAPTER_GEOFENCE_RADIUS_M must be a positive number of metres")

    def _validate_throttles(self) -> None:
        from limits import parse_many

        for item in fields(Throttles):
            value = getattr(self.throttles, item.name)
            try:
                parse_many(value)
            except ValueError:
                raise ConfigError(
                    f"ADAPTER_THROTTLE_{item.name.upper()} must be rates like "
                    f"10/minute;30/hour, got {value!r}") from None
        scheme = self.throttle_storage.partition("://")[0]
        if "://" not in self.throttle_storage or scheme not in THROTTLE_STORAGE_SCHEMES:
            raise ConfigError("ADAPTER_THROTTLE_STORAGE must be memory:// or a redis:// URL")
        if self.trusted_proxies < 0:
            raise ConfigError("ADAPTER_TRUSTED_PROXIES must be 0 or more")
        for name, count in (("ADAPTER_OUTBOX_CONCURRENCY", self.outbox_concurrency),
                            ("ADAPTER_HIS_CONNECTIONS", self.his_connections)):
            if not 1 <= count <= 64:
                raise ConfigError(f"{name} must be a whole number from 1 to 64")


def origin_of(url: str) -> str:
    """The origin (RFC 6454: scheme://host[:port], lower case) of an absolute URL; "" if none."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()


def load_config(env: Mapping[str, str] | None = None, **overrides: Any) -> Config:  # noqa: ANN401
    """Build the configuration from the environment (or ``env``), then apply overrides."""
    env = os.environ if env is None else env
    defaults = Config()
    values: dict[str, Any] = {
        "environment": env.get("ADAPTER_ENV", defaults.environment),
        "data_dir": Path(env.get("ADAPTER_DATA_DIR", str(defaults.data_dir))),
        "database_url": env.get("ADAPTER_DATABASE_URL", ""),
        "hospital_timezone": env.get("ADAPTER_TIMEZONE", defaults.hospital_timezone),
        "public_url": env.get("ADAPTER_PUBLIC_URL", ""),
        "notify_base_url": env.get("ADAPTER_NOTIFY_BASE_URL", "").strip(),
        "alipay_gateway": env.get("ADAPTER_ALIPAY_GATEWAY", defaults.alipay_gateway),
        "alipay_app_id": env.get("ADAPTER_ALIPAY_APP_ID", defaults.alipay_app_id),
        "alipay_seller_id": env.get("ADAPTER_ALIPAY_SELLER_ID", ""),
        "alipay_message_template_id": env.get("ADAPTER_ALIPAY_MESSAGE_TEMPLATE_ID", ""),
        "alipay_authorize_url": env.get("ADAPTER_ALIPAY_AUTHORIZE_URL", ""),
        "secret_key": secret(env, "ADAPTER_SECRET_KEY"),
        "his_connect_timeout": number(
            env, "ADAPTER_HIS_CONNECT_TIMEOUT", defaults.his_connect_timeout
        ),
        "his_ack_timeout": number(env, "ADAPTER_HIS_ACK_TIMEOUT", defaults.his_ack_timeout),
        "mllp_idle_timeout": number(env, "ADAPTER_MLLP_IDLE_TIMEOUT", defaults.mllp_idle_timeout),
        "mllp_frame_timeout": number(
            env, "ADAPTER_MLLP_FRAME_TIMEOUT", defaults.mllp_frame_timeout
        ),
        "slot_sync_interval": number(
            env, "ADAPTER_SLOT_SYNC_INTERVAL", defaults.slot_sync_interval
        ),
        "outbox_concurrency": whole(env, "ADAPTER_OUTBOX_CONCURRENCY",
                                     defaults.outbox_concurrency),
        "his_connections": whole(env, "ADAPTER_HIS_CONNECTIONS", defaults.his_connections),
        "link_check_interval": number(
            env, "ADAPTER_LINK_CHECK_INTERVAL", defaults.link_check_interval
        ),
        "check_in_opens_minutes": number(
            env, "ADAPTER_CHECK_IN_OPENS_MINUTES", defaults.check_in_opens_minutes),
        "check_in_closes_minutes": number(
            env, "ADAPTER_CHECK_IN_CLOSES_MINUTES", defaults.check_in_closes_minutes),
        "check_in_token_minutes": number(
            env, "ADAPTER_CHECK_IN_TOKEN_MINUTES", defaults.check_in_token_minutes),
        "hospital_latitude": optional_number(env, "ADAPTER_HOSPITAL_LATITUDE"),
        "hospital_longitude": optional_number(env, "ADAPTER_HOSPITAL_LONGITUDE"),
        "geofence_radius_m": number(env, "ADAPTER_GEOFENCE_RADIUS_M",
                                     defaults.geofence_radius_m),
        "session_idle_minutes": number(
            env, "ADAPTER_SESSION_IDLE_MINUTES", defaults.session_idle_minutes
        ),
        "session_max_hours": number(env, "ADAPTER_SESSION_MAX_HOURS", defaults.session_max_hours),
        "staff_session_idle_minutes": number(
            env, "ADAPTER_STAFF_SESSION_IDLE_MINUTES", defaults.staff_session_idle_minutes),
        "staff_session_max_hours": number(
            env, "ADAPTER_STAFF_SESSION_MAX_HOURS", defaults.staff_session_max_hours),
        "staff_lockout_failures": whole(
            env, "ADAPTER_STAFF_LOCKOUT_FAILURES", defaults.staff_lockout_failures),
        "staff_lockout_minutes": number(
            env, "ADAPTER_STAFF_LOCKOUT_MINUTES", defaults.staff_lockout_minutes),
        "allowed_origins": tuple(
            o.strip().rstrip("/").lower() for o in env.get("ADAPTER_ALLOWED_ORIGINS", "").split(",")
            if o.strip()),
        "notify_max_bytes": whole(env, "ADAPTER_NOTIFY_MAX_BYTES", defaults.notify_max_bytes),
        "notify_refused_kept": whole(
            env, "ADAPTER_NOTIFY_REFUSED_KEPT", defaults.notify_refused_kept
        ),
        "reconcile_at": time_of_day(env, "ADAPTER_RECONCILE_AT", defaults.reconcile_at),
        "throttle": switch(env, "ADAPTER_THROTTLE", defaults.throttle),
        "throttle_storage": env.get("ADAPTER_THROTTLE_STORAGE") or defaults.throttle_storage,
        "throttle_key_prefix": env.get("ADAPTER_THROTTLE_KEY_PREFIX")
        or defaults.throttle_key_prefix,
        "throttles": Throttles(**{
            item.name: env.get(f"ADAPTER_THROTTLE_{item.name.upper()}") or item.default
            for item in fields(Throttles)
        }),
        "trusted_proxies": whole(env, "ADAPTER_TRUSTED_PROXIES", defaults.trusted_proxies),
        "bill_payment_minutes": number(
            env, "ADAPTER_BILL_PAYMENT_MINUTES", defaults.bill_payment_minutes),
        "bill_commit_give_up_minutes": number(
            env, "ADAPTER_BILL_COMMIT_GIVE_UP_MINUTES", defaults.bill_commit_give_up_minutes),
        "retention_days": days_or_off(env, "ADAPTER_RETENTION_DAYS", defaults.retention_days),
        "binding_methods": tuple(
            m.strip() for m in env.get("ADAPTER_BINDING_METHODS", "").split(",") if m.strip()),
        "sms_gateway": env.get("ADAPTER_SMS_GATEWAY", "").strip(),
        "health_card_registry": env.get("ADAPTER_HEALTH_CARD_REGISTRY", "").strip(),
        "wallets": tuple(w.strip() for w in env.get("ADAPTER_WALLETS", "").split(",")
                         if w.strip()),
    }
    for key, name in (
        ("web_listen", "ADAPTER_WEB_LISTEN"),
        ("mllp_listen", "ADAPTER_MLLP_LISTEN"),
        ("his_mllp", "ADAPTER_HIS_MLLP"),
    ):
        if env.get(name):
            values[key] = parse_address(env[name], name)
    for key, name in (
        ("alipay_app_private_key_file", "ADAPTER_ALIPAY_APP_PRIVATE_KEY_FILE"),
        ("alipay_public_key_file", "ADAPTER_ALIPAY_PUBLIC_KEY_FILE"),
        ("data_key_file", "ADAPTER_DATA_KEY_FILE"),
        ("archive_dir", "ADAPTER_ARCHIVE_DIR"),
    ):
        if env.get(name):
            values[key] = Path(env[name])
    try:
        production = values["environment"] == "production"
        values["wechatpay"] = load_wechatpay_config(env, production=production)
        values["wechatpay_sandbox"] = wechatpay_sandbox_url(env, production=production)
    except WechatPayConfigError as exc:
        raise ConfigError(str(exc)) from None
    if env.get("ADAPTER_MAPPINGS_DIR"):  # also read by default_mappings_dir(); env may differ
        values["mappings_dir"] = Path(env["ADAPTER_MAPPINGS_DIR"])
    config = replace(Config(**values), **overrides)
    return config.validate()
