"""Keys for the embedded development setup, generated on first use under ADAPTER_DATA_DIR.

Production never reaches this: Config.validate() requires every key file to be named there.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import replace
from pathlib import Path

from adapter.config import Config
from adapter.protection import KeyFileError, generate_key_file
from adapter.wallet.alipay.signing import generate_key_pair
from adapter.wallet.wechatpay.config import sandbox_section

logger = logging.getLogger(__name__)


def _write_secret(path: Path, text: str) -> bool:
    """Create ``path`` (mode 0600) holding ``text``, complete or not at all; False when it
    exists already. Several roles started at once on a fresh data directory each try: one
    wins, the others use its file (a key pair's public half is written by the winner only)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            os.link(temporary, path)  # atomic, and refuses an existing name
        except FileExistsError:
            return False
        return True
    finally:
        temporary.unlink()


def _write_public(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def app_public_key_file(config: Config) -> Path:
    """Where the development app public key is (the wallet sandbox verifies requests with it)."""
    return config.keys_dir / "alipay_app_public_key.pem"


def sandbox_private_key_file(config: Config) -> Path:
    """The wallet sandbox's own platform key (the sandbox writes its public half for us)."""
    return config.keys_dir / "sandbox_platform_private_key.pem"


def wechatpay_merchant_public_key_file(config: Config) -> Path:
    """The development merchant's API public key (the WeChat Pay sandbox verifies us with it)."""
    return config.keys_dir / "wechatpay_merchant_public_key.pem"


def wechatpay_sandbox_private_key_file(config: Config) -> Path:
    """The WeChat Pay sandbox's own platform key (it writes the public half for us)."""
    return config.keys_dir / "wechatpay_sandbox_platform_private_key.pem"


def _ensure_wechatpay(config: Config) -> Config:
    """Development's default WeChat Pay: the sandbox's merchant, its keys made on first use
    (the merchant's API key pair, the APIv3 key, the official account's AppSecret; the
    platform key is the sandbox's own, written when `run` starts it)."""
    section = sandbox_section(config.wechatpay_sandbox, config.keys_dir)
    if not section.private_key_file.exists():
        private_pem, public_pem = generate_key_pair()
        if _write_secret(section.private_key_file, private_pem):
            _write_public(wechatpay_merchant_public_key_file(config), public_pem)
            logger.info("generated the development WeChat Pay merchant key pair")
    if not section.apiv3_key_file.exists():
        _write_secret(section.apiv3_key_file, secrets.token_hex(16))  # 32 characters
    if not section.app_secret_file.exists():
        _write_secret(section.app_secret_file, secrets.token_hex(16))
    return replace(config, wechatpay=section)


def ensure_development_keys(config: Config) -> Config:
    """Generate whichever development keys are missing; return the config that uses them."""
    if config.environment != "development":
        return config
    config.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if config.data_key_file is None and not config.effective_data_key_file.exists():
        try:
            generate_key_file(config.effective_data_key_file)
            logger.info("generated the development data key")
        except (KeyFileError, FileExistsError):
            if not config.effective_data_key_file.exists():
                raise  # not another role's key made meanwhile: a real problem
    if (config.alipay_app_private_key_file is None
            and not config.effective_app_private_key_file.exists()):
        private_pem, public_pem = generate_key_pair()
        if _write_secret(config.effective_app_private_key_file, private_pem):
            _write_public(app_public_key_file(config), public_pem)
            logger.info("generated the development Alipay app key pair")
    if config.wechatpay is None and config.wechatpay_sandbox:
        config = _ensure_wechatpay(config)
    if not config.secret_key:
        secret_file = config.keys_dir / "secret_key"
        if not secret_file.exists():
            _write_secret(secret_file, secrets.token_hex(32))
        config = replace(config, secret_key=secret_file.read_text(encoding="utf-8").strip())
    return config
