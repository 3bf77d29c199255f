"""The release policy of results, read from mappings/result_release.toml: which kinds are held
for a doctor and for how long, what makes a value critical, when an alert is escalated."""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from adapter.ports import Observation

FILE_NAME = "result_release.toml"


class ReleasePolicyError(ValueError):
    """The policy file has a key or value the adapter cannot use."""


@dataclass(frozen=True)
class Limits:
    """Below ``below`` or above ``above`` an observation is critical."""

    below: Decimal | None = None
    above: Decimal | None = None


@dataclass(frozen=True)
class ReleasePolicy:
    """When results are shown and what is critical (defaults: final at once, nothing held)."""

    sensitive_kinds: frozenset[str] = frozenset()
    hold_days: int = 3
    critical_flags: frozenset[str] = frozenset({"HH", "LL", "AA"})
    escalate_after_minutes: int = 15
    critical_limits: dict[str, Limits] = field(default_factory=dict)

    def is_sensitive(self, kind: str) -> bool:
        """A kind the hospital lists as sensitive (held for a doctor)."""
        return kind in self.sensitive_kinds

    @property
    def hold_for(self) -> dt.timedelta:
        """How long a sensitive result waits for a doctor before it is released anyway."""
        return dt.timedelta(days=self.hold_days)

    @property
    def escalate_after(self) -> dt.timedelta:
        """How long a critical alert may stay unacknowledged before it is escalated."""
        return dt.timedelta(minutes=self.escalate_after_minutes)

    def is_critical(self, observation: Observation) -> bool:
        """A flag the hospital counts as critical, or a number beyond the hospital's limits."""
        if any(flag.upper() in self.critical_flags for flag in observation.abnormal_flags):
            return True
        limits = self.critical_limits.get(observation.code)
        if limits is None or not observation.number:
            return False
        value = Decimal(observation.number)
        comparator = observation.comparator
        # "<0.5" is below every limit above 0.5, but says nothing about being above one.
        low = limits.below is not None and value < limits.below and comparator not in (">", ">=")
        high = limits.above is not None and value > limits.above and comparator not in ("<", "<=")
        return low or high


def _decimal(where: str, value: Any) -> Decimal | None:  # noqa: ANN401
    if value is None:
        return None
    if not isinstance(value, str):
        raise ReleasePolicyError(f"{where} must be a decimal string like \"2.8\"")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ReleasePolicyError(f"{where} is not a decimal") from None


def read_release_policy(data: dict[str, Any]) -> ReleasePolicy:
    """A policy from the file's parsed TOML; ReleasePolicyError names the first bad key."""
    known = {"sensitive_kinds", "hold_days", "critical_flags", "escalate_after_minutes",
             "critical_limits"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ReleasePolicyError(f"unknown key(s) {', '.join(unknown)}")
    hold_days = data.get("hold_days", 3)
    escalate = data.get("escalate_after_minutes", 15)
    if not isinstance(hold_days, int) or not 0 <= hold_days <= 60:
        raise ReleasePolicyError("hold_days must be a whole number of days from 0 to 60")
    if not isinstance(escalate, int) or not 1 <= escalate <= 24 * 60:
        raise ReleasePolicyError("escalate_after_minutes must be from 1 to 1440")
    limits = {}
    for code, entry in data.get("critical_limits", {}).items():
        if not isinstance(entry, dict) or set(entry) - {"below", "above"}:
            raise ReleasePolicyError(f"critical_limits.{code} takes only below and above")
        limits[code] = Limits(_decimal(f"critical_limits.{code}.below", entry.get("below")),
                              _decimal(f"critical_limits.{code}.above", entry.get("above")))
    return ReleasePolicy(
        sensitive_kinds=frozenset(data.get("sensitive_kinds", ())),
        hold_days=hold_days,
        critical_flags=frozenset(f.upper() for f in data.get("critical_flags",
                                                              ("HH", "LL", "AA"))),
        escalate_after_minutes=escalate,
        critical_limits=limits,
    )


@cache
def load_release_policy(path: Path) -> ReleasePolicy:
    """Read the policy file once per process; a missing file gives the defaults."""
    if not path.exists():
        return ReleasePolicy()
    try:
        return read_release_policy(tomllib.loads(path.read_text(encoding="utf-8")))
    except (tomllib.TOMLDecodeError, ReleasePolicyError) as exc:
        raise ReleasePolicyError(f"{path}: {exc}") from exc


def policy_of(services: object) -> ReleasePolicy:
    """The policy of a runtime: its ``result_release`` when one was set (tests), else the
    file in its mappings directory."""
    given = getattr(services, "result_release", None)
    if given is not None:
        return given
    return load_release_policy(services.config.mappings_dir / FILE_NAME)
