"""Reading one ``ADAPTER_*`` variable of a kind (a switch, a number, a time of day, a secret),
failing with a ConfigError that names it (adapter/config.py builds the Config with these)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path


class ConfigError(ValueError):
    """A configuration variable is missing, malformed or contradicts another."""


def switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("on", "true", "1", "yes"):
        return True
    if raw in ("off", "false", "0", "no"):
        return False
    raise ConfigError(f"{name} must be on or off, got {raw!r}")


def number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def optional_number(env: Mapping[str, str], name: str) -> float | None:
    if not env.get(name, "").strip():
        return None
    value = number(env, name, 0.0)
    if value != value or value in (float("inf"), float("-inf")):  # NaN or infinite
        raise ConfigError(f"{name} must be a finite number")
    return value


def whole(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def time_of_day(env: Mapping[str, str], name: str, default: dt.time | None) -> dt.time | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if raw.lower() == "off":
        return None
    try:
        hour, minute = raw.split(":")
        if len(hour) > 2 or len(minute) != 2:
            raise ValueError(raw)
        return dt.time(int(hour), int(minute))
    except ValueError:
        raise ConfigError(f"{name} must be a time of day such as 10:00, or off; got {raw!r}"
                          ) from None


def days_or_off(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    """A whole number of days, or ``off`` (None)."""
    raw = env.get(name, "").strip()
    if raw.lower() == "off":
        return None
    return whole(env, name, 0) if raw else default


def secret(env: Mapping[str, str], name: str) -> str:
    """A secret from NAME, or from the file named by NAME_FILE (never from the repository)."""
    if env.get(name):
        return env[name]
    path = env.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
    return ""
