"""The hospital's registration timings (mappings/registration.toml)."""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegistrationPolicy:
    """The hospital's registration timings (mappings/registration.toml)."""

    hold_minutes: int = 15  # time to pay before the slot returns to the pool
    cancel_deadline_days_before: int = 1  # patients may cancel until this many days before...
    cancel_deadline_hour: int = 15  # ...at this hour (hospital time): 15:00 the day before
    release_delay_min_seconds: int = 30  # a cancelled slot returns to the pool after a random
    release_delay_max_seconds: int = 300  # delay in this range, so bots cannot pounce on it
    outbox_max_attempts: int = 12  # then the message is parked for admins


class PolicyError(ValueError):
    """mappings/registration.toml has a key or value the adapter cannot use."""


def load_registration_policy(path: Path) -> RegistrationPolicy:
    """Read the policy file; a missing file or key keeps the defaults."""
    if not path.exists():
        return RegistrationPolicy()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path.name}: {exc}") from None
    known = {f.name for f in fields(RegistrationPolicy)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise PolicyError(f"{path.name}: unknown key(s) {', '.join(unknown)}")
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PolicyError(f"{path.name}: {key} must be a whole number of 0 or more")
    policy = RegistrationPolicy(**data)
    if not 0 <= policy.cancel_deadline_hour <= 23:
        raise PolicyError(f"{path.name}: cancel_deadline_hour must be 0 to 23")
    if policy.release_delay_min_seconds > policy.release_delay_max_seconds:
        raise PolicyError(f"{path.name}: release_delay_min_seconds exceeds the max")
    if policy.hold_minutes < 1:
        raise PolicyError(f"{path.name}: hold_minutes must be at least 1")
    return policy
