"""What every ``hospital-adapter`` command shares: logging, the configuration and the runtime,
checked before a role starts."""

from __future__ import annotations

import logging
import os

import click

from adapter.config import Config, ConfigError, load_config
from adapter.runtime import Runtime

logger = logging.getLogger(__name__)


def _setup_logging(level: str = "INFO") -> None:
    """Text lines, or one JSON object a line with ADAPTER_LOG_FORMAT=json (for a log
    collector: each request's line carries request_id, method, route, status, duration_ms)."""
    log_format = os.environ.get("ADAPTER_LOG_FORMAT", "text")
    if log_format not in ("text", "json"):
        raise click.ClickException("configuration: ADAPTER_LOG_FORMAT must be text or json")
    handler = logging.StreamHandler()
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=os.environ.get("ADAPTER_LOG_LEVEL", level), handlers=[handler])
    # One line per job run every second drowns what matters; job failures still show.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _config() -> Config:
    from adapter.devkeys import ensure_development_keys

    try:
        return ensure_development_keys(load_config())
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


def _runtime(config: Config | None = None) -> Runtime:
    """The runtime, its mappings and HL7 profile loaded and checked."""
    from adapter.his.profile import ProfileError
    from adapter.mappings import MappingsError

    config = config or _config()
    if not config.mappings_dir.is_dir():
        raise click.ClickException(
            f"configuration: ADAPTER_MAPPINGS_DIR: {config.mappings_dir} is not a directory")
    try:
        return Runtime.from_config(config)
    except MappingsError as exc:
        raise click.ClickException(
            f"mappings in ADAPTER_MAPPINGS_DIR ({config.mappings_dir}) are invalid; "
            f"run `hospital-adapter check-mappings`:\n{exc}"
        ) from None
    except ProfileError as exc:
        raise click.ClickException(f"HL7 profile: {exc}") from None
    except ValueError as exc:  # booking_rules.toml, registration.toml
        raise click.ClickException(f"mappings: {exc}") from None


def _check_files(runtime: Runtime) -> None:
    """Stop a role at start when a file the configuration names is missing or malformed."""
    try:
        runtime.check_files()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


def _role_runtime() -> Runtime:
    """The runtime of a role: schema up to date, every named file readable."""
    runtime = _runtime()
    _require_schema(runtime)
    _check_files(runtime)
    return runtime


def _require_schema(runtime: Runtime) -> None:
    from adapter import migrate

    if migrate.pending(runtime.engine):
        raise click.ClickException(
            "the database schema is not up to date: run `hospital-adapter db upgrade` first"
        )
