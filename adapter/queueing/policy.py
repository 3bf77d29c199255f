"""The hospital's queueing rules (mappings/queue.toml)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from adapter.queueing.estimate import Prior
from adapter.queueing.line import AbsentRule


class QueuePolicyError(ValueError):
    """mappings/queue.toml has a key or value the adapter cannot use."""


@dataclass(frozen=True)
class QueuePolicy:
    """How the line moves for an absent patient, when to push, and the estimate's prior."""

    absent: AbsentRule = field(default_factory=AbsentRule)
    push_ahead: tuple[int, ...] = (5, 2)
    prior: Prior = field(default_factory=Prior)


def read_queue_policy(text: str, name: str = "queue.toml") -> QueuePolicy:
    """Parse the policy file's text; raises QueuePolicyError naming the problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise QueuePolicyError(f"{name}: {exc}") from None
    known = {"absent_rule", "absent_skip", "push_ahead", "consult_minutes", "late_start_minutes",
             "sch25"}  # [sch25] is the HL7 side's (adapter.his.profile.load_queue_statuses)
    unknown = sorted(set(data) - known)
    if unknown:
        raise QueuePolicyError(f"{name}: unknown key(s) {', '.join(unknown)}")
    try:
        absent = AbsentRule(str(data.get("absent_rule", "skip")), int(data.get("absent_skip", 3)))
    except (TypeError, ValueError) as exc:
        raise QueuePolicyError(f"{name}: {exc}") from None
    ahead = data.get("push_ahead", [5, 2])
    if not isinstance(ahead, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in ahead):
        raise QueuePolicyError(f"{name}: push_ahead must be a list of whole numbers above 0")
    prior = Prior()
    for key in ("consult_minutes", "late_start_minutes"):
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise QueuePolicyError(f"{name}: {key} must be a number above 0")
            prior = replace(prior, **{key: float(value)})
    return QueuePolicy(absent, tuple(sorted(set(ahead), reverse=True)), prior)


@cache
def load_queue_policy(path: Path) -> QueuePolicy:
    """Read the policy file once per process; a missing file gives the defaults."""
    if not path.exists():
        return QueuePolicy()
    return read_queue_policy(path.read_text(encoding="utf-8"), path.name)
