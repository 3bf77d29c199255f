"""``hospital-adapter simulate-his``: the HIS simulator as its own program on its own port."""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import zoneinfo
from dataclasses import astuple
from pathlib import Path

import click

from adapter.config import Config, parse_address
from adapter.his.header import parse_ack
from adapter.his.mllp import MllpServer
from adapter.his.mllp_client import MllpClient
from adapter.his.simulator.core import HisSimulator
from adapter.his.simulator.lab import Laboratory
from adapter.mappings import default_mappings_dir, load_mappings

logger = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:2576"


def serve(simulator: HisSimulator, host: str, port: int) -> MllpServer:
    """An MllpServer (not yet started) answering with ``simulator``."""
    return MllpServer(host, port, simulator.handle, on_connect=simulator.on_connect)


@click.command("simulate-his")
@click.option("--listen", default=lambda: os.environ.get("ADAPTER_HIS_MLLP", DEFAULT_LISTEN),
              show_default="ADAPTER_HIS_MLLP or 127.0.0.1:2576", help="host:port to listen on.")
@click.option("--mappings", "mappings_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Mappings directory (default: the adapter's).")
@click.option("--latency-ms", type=click.IntRange(min=0), default=0, help="Delay each answer.")
@click.option("--ae-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Share of messages answered AE 207 at random.")
@click.option("--drop-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Share of answers cut in half and the connection dropped.")
@click.option("--refuse-connections", is_flag=True, help="Close every connection at once.")
@click.option("--seed", type=int, default=None, help="Seed of the fault dice.")
@click.option("--slots-per-session", type=click.IntRange(1, 200), default=10,
              show_default=True, help="Numbered slots per doctor per half day for the wallet.")
@click.option("--lis-to", default="", metavar="HOST:PORT",
              help="Also be the laboratory: send the day's results (ORU^R01) to the adapter's "
                   "MLLP listener there.")
@click.option("--lis-every", type=click.FloatRange(0.1, 3600), default=5.0, show_default=True,
              help="Seconds between the laboratory's rounds.")
@click.option("--timezone", envvar="ADAPTER_TIMEZONE", default=Config.hospital_timezone,
              show_default=True, show_envvar=True,
              help="The hospital's time zone, as the adapter's ADAPTER_TIMEZONE.")
def simulate_his_command(
    listen: str, mappings_dir: Path | None, latency_ms: int, ae_rate: float, drop_rate: float,
    refuse_connections: bool, seed: int | None, slots_per_session: int, lis_to: str,
    lis_every: float, timezone: str,
) -> None:
    """Run the HIS simulator over MLLP until interrupted."""
    try:
        host, port = astuple(parse_address(listen, "--listen"))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from None
    try:
        tz = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"{timezone!r} is not a known time zone",
                                 param_hint="--timezone") from None
    simulator = HisSimulator(
        load_mappings(mappings_dir or default_mappings_dir()), tz=tz, latency_ms=latency_ms,
        ae_rate=ae_rate, drop_rate=drop_rate, refuse_connections=refuse_connections, seed=seed,
        slots_per_session=slots_per_session,
    )
    stop = threading.Event()
    if lis_to:
        try:
            lis_host, lis_port = astuple(parse_address(lis_to, "--lis-to"))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--lis-to") from None
        start_laboratory(simulator, lis_host, lis_port, lis_every, stop)
    server = serve(simulator, host, port)
    logger.info("HIS simulator listening on %s:%s", *server.server_address)
    click.echo(f"HIS simulator listening on {host}:{server.server_address[1]}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.shutdown()


def start_laboratory(simulator: HisSimulator, host: str, port: int, every: float,
                     stop: threading.Event) -> threading.Thread:
    """The laboratory's rounds in a thread: the day's results to the adapter's listener."""
    lab = Laboratory(simulator.day_visitors, simulator.profile, simulator.tz,
                     {code: d.hl7_type for code, d in simulator.mappings.document_types.items()})
    client = MllpClient(host, port, connect_timeout=2, ack_timeout=10)

    def send(payload: bytes) -> str:
        return parse_ack(client.send(payload)).code

    def now() -> dt.datetime:
        return dt.datetime.now(simulator.tz)

    thread = threading.Thread(target=lab.run, args=(send, every, stop, now),
                              name="laboratory", daemon=True)
    thread.start()
    logger.info("laboratory sends results to %s:%s every %.1f s", host, port, every)
    return thread
