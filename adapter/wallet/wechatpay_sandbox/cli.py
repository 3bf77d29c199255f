"""``hospital-adapter wechatpay-sandbox``: the WeChat Pay sandbox as its own program."""

from __future__ import annotations

import logging
from dataclasses import astuple
from pathlib import Path

import click
from werkzeug.serving import BaseWSGIServer, make_server

from adapter.config import parse_address
from adapter.wallet.sandbox import keys
from adapter.wallet.sandbox.common import serve_until_interrupted
from adapter.wallet.wechatpay_sandbox import crypto
from adapter.wallet.wechatpay_sandbox.app import create_wechatpay_sandbox_app
from adapter.wallet.wechatpay_sandbox.state import (
    CERTIFICATE_MODE,
    PUBLIC_KEY_MODE,
    WechatSandboxState,
)

logger = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:8901"
ENV = "ADAPTER_WECHATPAY_SANDBOX_"


def serve_wechatpay_sandbox(state: WechatSandboxState, host: str, port: int) -> BaseWSGIServer:
    """A threaded WSGI server (not yet serving) for the sandbox; port 0 picks a free one."""
    return make_server(host, port, create_wechatpay_sandbox_app(state), threaded=True)


def _read_secret(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise click.ClickException(f"{what}: {exc}") from None


def _option(name: str, **kwargs: object):  # type: ignore[no-untyped-def]
    envvar = ENV + name.lstrip("-").replace("-", "_").upper()
    return click.option(name, envvar=envvar, show_envvar=True, **kwargs)  # type: ignore[call-overload]


_rate = click.FloatRange(0, 1)
_file = click.Path(dir_okay=False, exists=True, path_type=Path)
_out = click.Path(dir_okay=False, path_type=Path)


@click.command("wechatpay-sandbox")
@_option("--listen", default=DEFAULT_LISTEN, show_default=True, help="host:port to listen on.")
@_option("--public-url", default=None,
         help="Base URL of the sandbox (download_url, pages) [default: http://LISTEN].")
@_option("--mchid", default="1900000001", show_default=True, help="The merchant's mchid.")
@_option("--appid", default="wx0000000000000001", show_default=True,
         help="The official account's appid, bound to the mchid.")
@_option("--app-secret-file", type=_file, default=None,
         help="The official account's AppSecret [default: sandbox-app-secret].")
@_option("--apiv3-key-file", type=_file, required=True,
         help="The merchant's APIv3 key (32 characters), to encrypt callbacks and certificates.")
@_option("--merchant-public-key-file", type=_file, required=True,
         help="The merchant's API certificate (PEM; its serial is read) or public key (PEM).")
@_option("--merchant-serial", default=None,
         help="The merchant's API certificate serial (needed with a bare public key).")
@_option("--platform-private-key-file", type=_out, required=True,
         help="The platform public-key mode's key; generated (mode 0600) when missing.")
@_option("--platform-public-key-out", type=_out, default=None,
         help="Write the platform public key (PEM) here for the adapter.")
@_option("--platform-public-key-id", default=None,
         help="The key's id [default: PUB_KEY_ID_01... derived from the key and mchid].")
@_option("--certificate-key-file", type=_out, default=None,
         help="The platform certificate's key; generated when missing [default: a new key "
              "each start, as after a certificate rotation].")
@_option("--platform-mode", type=click.Choice([PUBLIC_KEY_MODE, CERTIFICATE_MODE]),
         default=PUBLIC_KEY_MODE, show_default=True,
         help="Which key signs answers and callbacks (a request's Wechatpay-Serial may ask "
              "for the other, as during a switch).")
@_option("--notify-time-scale", default=1.0, show_default=True,
         type=click.FloatRange(min=0, min_open=True),
         help="Multiplies the platform's delays (callback retries, code and token lives).")
@_option("--notify-delay-seconds", default=0.0, type=click.FloatRange(min=0),
         help="Hold every first callback back this long.")
@_option("--refund-seconds", default=0.0, type=click.FloatRange(min=0),
         help="How long a refund stays PROCESSING before SUCCESS and its callback.")
@_option("--latency-ms", default=0, type=click.IntRange(min=0), help="Delay each API answer.")
@_option("--timeout-rate", default=0.0, type=_rate,
         help="Share of calls applied but answered too late.")
@_option("--timeout-seconds", default=30.0, type=click.FloatRange(min=0),
         help="How late a timed-out call is answered.")
@_option("--system-error-rate", default=0.0, type=_rate,
         help="Share of calls answered 500 SYSTEM_ERROR.")
@_option("--system-error-applies/--system-error-not-applied", default=True, show_default=True,
         help="Apply the operation before answering SYSTEM_ERROR.")
@_option("--frequency-limit-rate", default=0.0, type=_rate,
         help="Share of calls refused 429 FREQUENCY_LIMITED (not applied).")
@_option("--bad-signature-rate", default=0.0, type=_rate,
         help="Share of answers and callbacks signed with a wrong key.")
@_option("--duplicate-notifications", is_flag=True, help="Deliver every callback twice.")
@_option("--out-of-order-notifications", is_flag=True,
         help="Hold first callbacks back at random and shuffle them.")
@_option("--lost-notifications", is_flag=True,
         help="Send no callbacks (only a query or the day's bill shows payments).")
@_option("--bills-today", is_flag=True,
         help="Serve today's bill so far (the platform answers STATEMENT_CREATING).")
@_option("--seed", type=int, default=None, help="Seed of the fault dice.")
def wechatpay_sandbox_command(
    listen: str, public_url: str | None, mchid: str, appid: str, app_secret_file: Path | None,
    apiv3_key_file: Path, merchant_public_key_file: Path, merchant_serial: str | None,
    platform_private_key_file: Path, platform_public_key_out: Path | None,
    platform_public_key_id: str | None, certificate_key_file: Path | None, platform_mode: str,
    seed: int | None, **knobs: object,
) -> None:
    """Run the WeChat Pay sandbox (APIv3, official-account OAuth and messages, the cashier)
    until interrupted."""
    try:
        host, port = astuple(parse_address(listen, "--listen"))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from None
    try:
        merchant_key, cert_serial = crypto.load_merchant_key(
            merchant_public_key_file.read_text(encoding="ascii"))
        platform_key = keys.load_or_create_platform_key(platform_private_key_file)
        certificate_key = (keys.load_or_create_platform_key(certificate_key_file)
                           if certificate_key_file is not None else None)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"keys: {exc}") from None
    serial = merchant_serial or cert_serial
    if not serial:
        raise click.BadParameter("give the serial of the merchant's API certificate with a "
                                 "bare public key", param_hint="--merchant-serial")
    if platform_public_key_out is not None:
        keys.write_public_key(platform_key, platform_public_key_out)
    try:
        state = WechatSandboxState(
            merchant_public_key=merchant_key, merchant_serial=serial,
            apiv3_key=_read_secret(apiv3_key_file, "--apiv3-key-file"), mchid=mchid,
            appid=appid, app_secret=(_read_secret(app_secret_file, "--app-secret-file")
                                     if app_secret_file else "sandbox-app-secret"),
            platform_private_key=platform_key, certificate_key=certificate_key,
            public_key_id=platform_public_key_id, platform_mode=platform_mode,
            public_url=public_url or f"http://{listen}", seed=seed, **knobs,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    server = serve_wechatpay_sandbox(state, host, port)
    logger.info("wechatpay sandbox listening on %s:%s", host, server.server_port)
    serial = state.signing_key()[0]
    click.echo(f"wechatpay sandbox listening on http://{host}:{server.server_port}/v3/ "
               f"({platform_mode} mode, serial {serial})")
    serve_until_interrupted(server, state.close)
