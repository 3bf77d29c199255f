"""``hospital-adapter wallet-sandbox``: the sandbox as its own program on its own port."""

from __future__ import annotations

import logging
from dataclasses import astuple
from pathlib import Path

import click
from werkzeug.serving import BaseWSGIServer, make_server

from adapter.config import parse_address
from adapter.wallet.sandbox import keys
from adapter.wallet.sandbox.app import create_sandbox_app
from adapter.wallet.sandbox.common import serve_until_interrupted
from adapter.wallet.sandbox.state import SandboxState

logger = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:8900"


def serve_sandbox(state: SandboxState, host: str, port: int) -> BaseWSGIServer:
    """A threaded WSGI server (not yet serving) for the sandbox; port 0 picks a free one."""
    return make_server(host, port, create_sandbox_app(state), threaded=True)


_rate = click.FloatRange(0, 1)


@click.command("wallet-sandbox")
@click.option("--listen", envvar="ADAPTER_SANDBOX_LISTEN", default=DEFAULT_LISTEN,
              show_default=True, show_envvar=True, help="host:port to listen on.")
@click.option("--app-id", envvar="ADAPTER_ALIPAY_APP_ID", default="2021000000000001",
              show_default=True, show_envvar=True, help="The adapter's app_id.")
@click.option("--app-public-key-file", envvar="ADAPTER_SANDBOX_APP_PUBLIC_KEY_FILE",
              required=True, show_envvar=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The adapter's app public key (PEM or base64), to verify requests.")
@click.option("--platform-private-key-file", envvar="ADAPTER_SANDBOX_PLATFORM_PRIVATE_KEY_FILE",
              required=True, show_envvar=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The sandbox's own key; generated (mode 0600) when missing.")
@click.option("--platform-public-key-out", envvar="ADAPTER_SANDBOX_PLATFORM_PUBLIC_KEY_OUT",
              show_envvar=True, type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the platform public key here for the adapter to verify with.")
@click.option("--seller-id", envvar="ADAPTER_SANDBOX_SELLER_ID", default="2088000000000001",
              show_default=True, show_envvar=True, help="The merchant's seller_id (PID).")
@click.option("--notify-time-scale", envvar="ADAPTER_SANDBOX_NOTIFY_TIME_SCALE", default=1.0,
              type=click.FloatRange(min=0, min_open=True), show_default=True, show_envvar=True,
              help="Multiplies the platform's delays (retries, auth code life); 1.0 = real.")
@click.option("--public-url", envvar="ADAPTER_SANDBOX_PUBLIC_URL", default=None,
              show_envvar=True, help="Base URL of the sandbox's pages [default: http://LISTEN].")
@click.option("--latency-ms", envvar="ADAPTER_SANDBOX_LATENCY_MS", default=0,
              type=click.IntRange(min=0), show_envvar=True, help="Delay each gateway answer.")
@click.option("--timeout-rate", envvar="ADAPTER_SANDBOX_TIMEOUT_RATE", default=0.0, type=_rate,
              show_envvar=True, help="Share of calls applied but answered too late.")
@click.option("--timeout-seconds", envvar="ADAPTER_SANDBOX_TIMEOUT_SECONDS", default=30.0,
              type=click.FloatRange(min=0), show_envvar=True,
              help="How late a timed-out call is answered.")
@click.option("--system-error-rate", envvar="ADAPTER_SANDBOX_SYSTEM_ERROR_RATE", default=0.0,
              type=_rate, show_envvar=True, help="Share of calls answered 20000 SYSTEM_ERROR.")
@click.option("--system-error-applies/--system-error-not-applied",
              envvar="ADAPTER_SANDBOX_SYSTEM_ERROR_APPLIES", default=True, show_default=True,
              show_envvar=True, help="Apply the operation before answering SYSTEM_ERROR.")
@click.option("--duplicate-notifications", envvar="ADAPTER_SANDBOX_DUPLICATE_NOTIFICATIONS",
              is_flag=True, show_envvar=True, help="Deliver every notification twice.")
@click.option("--out-of-order-notifications",
              envvar="ADAPTER_SANDBOX_OUT_OF_ORDER_NOTIFICATIONS", is_flag=True,
              show_envvar=True, help="Hold first deliveries back at random and shuffle them.")
@click.option("--refund-notifications", envvar="ADAPTER_SANDBOX_REFUND_NOTIFICATIONS",
              is_flag=True, show_envvar=True,
              help="Also notify refunds (refund_fee, gmt_refund, out_biz_no).")
@click.option("--lost-notifications", envvar="ADAPTER_SANDBOX_LOST_NOTIFICATIONS",
              is_flag=True, show_envvar=True,
              help="Never notify payments (only a query or the day's bill shows them).")
@click.option("--seed", envvar="ADAPTER_SANDBOX_SEED", type=int, default=None,
              show_envvar=True, help="Seed of the fault dice.")
def wallet_sandbox_command(
    listen: str, app_id: str, app_public_key_file: Path, platform_private_key_file: Path,
    platform_public_key_out: Path | None, seller_id: str, notify_time_scale: float,
    public_url: str | None, latency_ms: int, timeout_rate: float, timeout_seconds: float,
    system_error_rate: float, system_error_applies: bool, duplicate_notifications: bool,
    out_of_order_notifications: bool, refund_notifications: bool, lost_notifications: bool,
    seed: int | None,
) -> None:
    """Run the wallet sandbox (Alipay OpenAPI v1 gateway, login, cashier) until interrupted."""
    try:
        host, port = astuple(parse_address(listen, "--listen"))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from None
    try:
        app_public_key = keys.load_public_key(app_public_key_file.read_text(encoding="ascii"))
        platform_key = keys.load_or_create_platform_key(platform_private_key_file)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"keys: {exc}") from None
    if platform_public_key_out is not None:
        keys.write_public_key(platform_key, platform_public_key_out)
    state = SandboxState(
        app_public_key=app_public_key, platform_private_key=platform_key, app_id=app_id,
        seller_id=seller_id, public_url=public_url or f"http://{listen}",
        notify_time_scale=notify_time_scale, seed=seed, latency_ms=latency_ms,
        timeout_rate=timeout_rate, timeout_seconds=timeout_seconds,
        system_error_rate=system_error_rate, system_error_applies=system_error_applies,
        duplicate_notifications=duplicate_notifications,
        lost_notifications=lost_notifications,
        out_of_order_notifications=out_of_order_notifications,
        refund_notifications=refund_notifications,
    )
    server = serve_sandbox(state, host, port)
    logger.info("wallet sandbox listening on %s:%s", host, server.server_port)
    click.echo(f"wallet sandbox listening on http://{host}:{server.server_port}/gateway.do")
    serve_until_interrupted(server, state.close)
