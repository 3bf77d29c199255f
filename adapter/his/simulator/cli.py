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
from adapter.his.simulator.hall import ClinicHall
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
@click.option("--adapter-mllp", default="",
              help="host:port of the adapter's listener: play the queue (SIU^S14) of each "
                   "patient who checks in (ADT^A10) there.")
@click.option("--clinic-time-scale", type=click.FloatRange(min=0), default=60.0,
              show_default=True, help="How much faster than life the queue moves (0: at once).")
@click.option("--slots-soon", is_flag=True,
              help="Also open a slot per department starting in about 20 minutes.")
@click.option("--window-races", is_flag=True,
              help="The cash desk's window takes charges the wallet has locked.")
@click.option("--refuse-commit-with", default="", metavar="CODE",
              help="Refuse every bill commit with this ERR-5 code.")
@click.option("--lose-commit-answers", type=click.IntRange(min=0), default=0,
              help="Make this many bill commits and lose their answers on the wire.")
def simulate_his_command(
    listen: str, mappings_dir: Path | None, latency_ms: int, ae_rate: float, drop_rate: float,
    refuse_connections: bool, seed: int | None, slots_per_session: int, lis_to: str,
    lis_every: float, timezone: str,
    adapter_mllp: str, clinic_time_scale: float, slots_soon: bool,
    window_races: bool, refuse_commit_with: str, lose_commit_answers: int,
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
    if slots_soon:
        simulator.open_slots_soon(dt.datetime.now(tz))
    client = None
    if adapter_mllp:
        try:
            adapter_host, adapter_port = astuple(parse_address(adapter_mllp, "--adapter-mllp"))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--adapter-mllp") from None
        client = MllpClient(adapter_host, adapter_port, connect_timeout=5, ack_timeout=30)
        hall = ClinicHall(simulator, lambda text: client.send(text.encode()), tz=tz,
                          time_scale=clinic_time_scale,
                          seed=seed)
        simulator.arrival_listeners.append(hall.on_arrival)
        simulator.queue_source = hall.snapshot
    cashier = simulator.cashier
    cashier.window_races, cashier.refuse_commit_with = window_races, refuse_commit_with
    cashier.lose_commit_answers = lose_commit_answers
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
        if client is not None:
            client.close()


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
