"""The ``hospital-adapter`` command: a Flask CLI group over the app factory.

Roles (web, listener, worker) run alone in production; ``run`` starts all three in one process
together with the HIS simulator, as a separate program on its own port, for a newcomer.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from flask import Flask
from flask.cli import FlaskGroup

from adapter import __version__, cli_admin, create_app
from adapter.cli_support import (
    _check_files,
    _config,
    _role_runtime,
    _runtime,
    _setup_logging,
)
from adapter.runtime import Runtime

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

    from adapter.config import Config

logger = logging.getLogger(__name__)


def _make_app() -> Flask:
    return create_app(runtime=_runtime())


@click.group(
    cls=FlaskGroup,
    create_app=_make_app,
    add_default_commands=False,
    add_version_option=False,
    load_dotenv=False,
    set_debug_flag=False,
)
@click.version_option(__version__, prog_name="hospital-adapter")
def main() -> None:
    """Future Hospital Adapter: the HIS (HL7 over MLLP) <-> mobile wallet bridge."""
    _setup_logging()


@main.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the schema migrations (Alembic) to ADAPTER_DATABASE_URL."""
    from adapter import migrate
    from adapter.db import make_engine

    config = _config()
    engine = make_engine(config.effective_database_url)
    migrate.upgrade(engine, revision)
    url = engine.url.render_as_string(hide_password=True)
    click.echo(f"database at revision {revision}: {url}")


@main.command("check-mappings")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
def check_mappings_command(directory: Path | None) -> None:
    """Validate the code tables in mappings/, naming file, line and problem."""
    from adapter.billing.stops import NextStopError, load_next_stops
    from adapter.mappings import MappingProblem, check_mappings
    from adapter.registration.policy import PolicyError, load_registration_policy
    from adapter.registration.rules import BookingRulesError, load_booking_rules

    directory = directory or _config().mappings_dir
    problems = check_mappings(directory)
    for name, load, error in (
        ("booking_rules.toml", load_booking_rules, BookingRulesError),
        ("registration.toml", load_registration_policy, PolicyError),
        ("next_stop.csv", lambda path: load_next_stops.__wrapped__(path.parent),
         NextStopError),
    ):
        try:
            load(directory / name)
        except error as exc:
            problems.append(MappingProblem(name, 0, str(exc)))
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        raise click.ClickException(f"{len(problems)} problem(s) in {directory}")
    click.echo(f"mappings in {directory} are valid")


def _first_admin_hint(runtime: Runtime) -> str:
    from adapter.staff.accounts import any_admin

    with runtime.session_factory() as db:
        if any_admin(db):
            return ""
    return ("  No admin yet: create the first one with\n"
            "    hospital-adapter create-admin --username admin\n")


@main.command("listener")
def listener_command() -> None:
    """Serve HL7 from the HIS over MLLP on ADAPTER_MLLP_LISTEN."""
    from adapter.his.listener import make_listener

    runtime = _role_runtime()
    server = make_listener(runtime.config, runtime.session_factory, runtime.profile)
    _stop_on_sigterm(server.shutdown)
    click.echo(f"MLLP listener on {runtime.config.mllp_listen}")
    server.serve_forever()


@main.command("worker")
def worker_command() -> None:
    """Run the scheduled jobs (slot sync, inbound processing, link checks)."""
    from adapter.worker import make_scheduler

    runtime = _role_runtime()
    runtime.warm_up()
    scheduler = make_scheduler(runtime, blocking=True)
    click.echo("worker started")
    scheduler.start()


@main.command("web")
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes")
def web_command(workers: int) -> None:
    """Serve the web role (API, pages, notify, admin, health) under gunicorn."""
    from gunicorn.app.base import BaseApplication

    from adapter.web.gunicorn_hooks import child_exit, multiprocess_metrics, on_exit

    multiprocess_metrics(workers)  # before any metric exists
    runtime = _role_runtime()
    listen = str(runtime.config.web_listen)

    class _Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", listen)
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", 8)
            self.cfg.set("child_exit", child_exit)
            self.cfg.set("on_exit", on_exit)

        def load(self) -> Flask:  # in each worker process, before it serves
            served = Runtime.from_config(runtime.config)
            served.warm_up()
            return create_app(runtime=served)

    _Gunicorn().run()


@main.command("run")
@click.option("--no-simulators", is_flag=True,
              help="Do not start the HIS simulator and the wallet sandbox.")
def run_command(no_simulators: bool) -> None:
    """Start web, listener and worker in one process, with the HIS simulator and the wallet
    sandbox beside them as separate programs."""
    import urllib.parse
    from dataclasses import replace

    from adapter import migrate
    from adapter.devkeys import app_public_key_file, sandbox_private_key_file
    from adapter.his.listener import make_listener
    from adapter.worker import make_scheduler

    config = _config()
    simulators: list[subprocess.Popen[bytes]] = []
    if not no_simulators and config.alipay_public_key_file is not None:
        # The sandbox writes its own platform key there: never overwrite a file a variable names.
        raise click.ClickException(
            "configuration: ADAPTER_ALIPAY_PUBLIC_KEY_FILE names a file, but `run` starts the "
            "wallet sandbox, whose generated key would replace it; unset the variable or pass "
            "--no-simulators")
    if not no_simulators:
        gateway = urllib.parse.urlsplit(config.alipay_gateway)
        sandbox_listen = f"{gateway.hostname}:{gateway.port or 80}"
        if not config.alipay_seller_id:
            config = replace(config, alipay_seller_id="2088000000000001")
        simulators.append(subprocess.Popen(
            [sys.executable, "-m", "adapter.cli", "simulate-his", "--listen", str(config.his_mllp),
             "--mappings", str(config.mappings_dir), "--timezone", config.hospital_timezone,
             # The simulator's hall plays each check-in's queue to our listener, and a slot
             # soon today lets a newcomer check in at once (docs/queueing.md, "The demo").
             "--adapter-mllp", str(config.mllp_listen), "--slots-soon",
             # The laboratory sends the day's results to our listener (docs/results.md).
             "--lis-to", str(config.mllp_listen)],
        ))
        simulators.append(subprocess.Popen(
            [sys.executable, "-m", "adapter.cli", "wallet-sandbox", "--listen", sandbox_listen,
             "--app-id", config.alipay_app_id, "--seller-id", config.alipay_seller_id,
             "--app-public-key-file", str(app_public_key_file(config)),
             "--platform-private-key-file", str(sandbox_private_key_file(config)),
             "--platform-public-key-out", str(config.effective_alipay_public_key_file)],
        ))
        wechatpay = _start_wechatpay_sandbox(config)
        if wechatpay is not None:
            simulators.append(wechatpay)
        _wait_for_port(config.his_mllp.host, config.his_mllp.port, simulators[0])
        _wait_for_port(gateway.hostname or "127.0.0.1", gateway.port or 80, simulators[1])
        if wechatpay is not None:
            api = urllib.parse.urlsplit(config.wechatpay_sandbox)
            _wait_for_port(api.hostname or "127.0.0.1", api.port or 80, wechatpay)
    runtime = _runtime(config)
    migrate.upgrade(runtime.engine)  # the embedded database is created on first run
    _check_files(runtime)

    listener = make_listener(config, runtime.session_factory, runtime.profile)
    listener.start()
    scheduler = make_scheduler(runtime, blocking=False)
    scheduler.start()
    app = create_app(runtime=runtime)
    web = make_web_server(config.web_listen.host, config.web_listen.port, app)

    stop = threading.Event()

    def _stop(*_args: object) -> None:
        if not stop.is_set():
            stop.set()
            threading.Thread(target=web.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    base = f"http://{config.web_listen}"
    click.echo(
        "\nFuture Hospital Adapter is running:\n"
        f"  patients   {base}/h5/   (open on a phone-sized browser)\n"
        f"  status     {base}/readyz\n"
        f"  admin      {base}/admin/   (staff sign-in)\n"
        f"{_first_admin_hint(runtime)}"
        f"  MLLP in    {config.mllp_listen}  (HL7 from the HIS)\n"
        f"  HIS        {config.his_mllp}  ({'simulator' if simulators else 'external'})\n"
        f"{_wallet_lines(runtime, bool(simulators))}"
        f"  database   {runtime.engine.url.render_as_string(hide_password=True)}\n"
        "Press Ctrl+C to stop.\n"
    )
    try:
        web.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.shutdown(wait=False)
        listener.shutdown()
        for process in simulators:
            process.terminate()
        for process in simulators:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def wechatpay_sandbox_args(config: Config) -> list[str]:
    """The command line of the WeChat Pay sandbox as development's default merchant's (its
    keys under ADAPTER_DATA_DIR/keys, listening where ADAPTER_WECHATPAY_API_URL says)."""
    import urllib.parse

    from adapter.devkeys import (
        wechatpay_merchant_public_key_file,
        wechatpay_sandbox_private_key_file,
    )

    section = config.wechatpay
    api = urllib.parse.urlsplit(config.wechatpay_sandbox)
    return [sys.executable, "-m", "adapter.cli", "wechatpay-sandbox",
            "--listen", f"{api.hostname}:{api.port or 80}", "--public-url", section.api_url,
            "--mchid", section.mchid, "--appid", section.appid,
            "--app-secret-file", str(section.app_secret_file),
            "--apiv3-key-file", str(section.apiv3_key_file),
            "--merchant-public-key-file", str(wechatpay_merchant_public_key_file(config)),
            "--merchant-serial", section.cert_serial_no,
            "--platform-private-key-file", str(wechatpay_sandbox_private_key_file(config)),
            "--platform-public-key-out", str(section.platform_public_key_file),
            "--platform-public-key-id", section.platform_public_key_id]


def _start_wechatpay_sandbox(config: Config) -> subprocess.Popen[bytes] | None:
    """The WeChat Pay sandbox, when development's default WeChat Pay is its merchant (a
    merchant of one's own, ADAPTER_WECHATPAY_MCHID, or ADAPTER_WECHATPAY=off: none)."""
    if config.wechatpay is None or not config.wechatpay_sandbox:
        return None
    return subprocess.Popen(wechatpay_sandbox_args(config))


def _wallet_lines(runtime: Runtime, simulators: bool) -> str:
    """One line per wallet offered, the default first, with where it is reached."""
    config = runtime.config
    lines = []
    for name in runtime.wallets:
        if name == "wechatpay" and config.wechatpay is not None:
            where = config.wechatpay.api_url
            kind = "sandbox" if simulators and config.wechatpay_sandbox else "external"
        else:
            where, kind = config.alipay_gateway, "sandbox" if simulators else "external"
        default = ", the default" if not lines and len(runtime.wallets) > 1 else ""
        lines.append(f"  {name:<10} {where}  ({kind}{default})\n")
    return "".join(lines)


def _make_quiet_handler() -> type:
    from http import HTTPStatus

    from werkzeug.serving import WSGIRequestHandler

    class QuietQueryHandler(WSGIRequestHandler):
        """Access log lines without query strings: they carry wallet auth codes."""

        # http.server answers a request line it cannot read as HTTP/0.9, without a status line
        # a client could read; no client of the adapter speaks HTTP/0.9.
        default_request_version = "HTTP/1.0"

        def parse_request(self) -> bool:
            if not super().parse_request():
                return False
            # RFC 9112 section 3.2: the request-target is visible ASCII; a control byte in it
            # (NUL, a bare CR) makes the request malformed, not a path to route or to log.
            if any(ord(c) < 0x21 or ord(c) == 0x7F for c in self.path):
                self.send_error(HTTPStatus.BAD_REQUEST, "Bad request target")
                return False
            return True

        def send_error(self, code: int, message: str | None = None,
                       explain: str | None = None) -> None:
            # http.server quotes a malformed request line in its message, which is logged and
            # echoed: it may hold a query string (an auth code). Say only what was wrong.
            if code == HTTPStatus.BAD_REQUEST:
                message = "Bad request"
            super().send_error(code, message, explain)

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            # A malformed request line is answered 400 before command and path are set.
            command = getattr(self, "command", None) or "-"
            path = (getattr(self, "path", None) or "-").split("?", 1)[0]
            if any(ord(c) < 0x21 or ord(c) == 0x7F for c in path):
                path = "-"
            self.log("info", '"%s %s" %s %s', command, path, code, size)

    return QuietQueryHandler


_QuietQueryHandler = _make_quiet_handler()


def make_web_server(host: str, port: int, app: Flask) -> BaseWSGIServer:
    """The web role of ``run``: werkzeug's threaded server with the quiet access log."""
    from werkzeug.serving import make_server

    return make_server(host, port, app, threaded=True, request_handler=_QuietQueryHandler)


def _wait_for_port(
    host: str, port: int, process: subprocess.Popen[bytes], timeout: float = 20.0
) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise click.ClickException(f"{process.args[3]} exited with code {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise click.ClickException(f"{process.args[3]} did not listen on {host}:{port} in time")


def _stop_on_sigterm(stop: object) -> None:
    def _handler(*_args: object) -> None:
        threading.Thread(target=stop, daemon=True).start()  # type: ignore[arg-type]

    signal.signal(signal.SIGTERM, _handler)


def _register_simulators() -> None:
    from adapter.demo import demo_command
    from adapter.his.simulator import simulate_his_command
    from adapter.wallet.sandbox import wallet_sandbox_command
    from adapter.wallet.wechatpay_sandbox import wechatpay_sandbox_command

    main.add_command(simulate_his_command)
    main.add_command(wallet_sandbox_command)
    main.add_command(wechatpay_sandbox_command)
    main.add_command(demo_command)


_register_simulators()

for _command in cli_admin.COMMANDS:
    main.add_command(_command)


if __name__ == "__main__":
    main()
