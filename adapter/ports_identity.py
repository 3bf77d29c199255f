"""The identity part of the ports: the SMS gateway that confirms a phone, and the electronic
health card registry (电子健康卡) that vouches for a person.

Kept beside adapter/ports.py (same rules: neutral types, no provider's words). adapter/registry/
implements both over HTTP (the development sandbox speaks the same JSON); tests pass fakes.
Names, document numbers and phones are kept out of repr(): a repr can reach a log line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class RegistryUnavailable(Exception):
    """The SMS gateway or the health card registry did not answer: nothing is known."""


class SmsSender(Protocol):
    """Sends a short text message to a phone (the hospital's SMS gateway)."""

    def send(self, phone: str, text: str) -> None:
        """Hand one message to the gateway; raises RegistryUnavailable."""
        ...


@dataclass(frozen=True)
class HealthCardIdentity:
    """The verified person an electronic health card belongs to, as its registry says."""

    card_id: str  # the registry's id of the card (never the QR text, which changes)
    name: str = field(repr=False)
    document_type: str  # mappings/document_types.csv code
    document_number: str = field(repr=False)
    phone: str = field(default="", repr=False)
    sex: str = ""  # F, M or ""


class HealthCardRegistry(Protocol):
    """Looks a health card up (the code its QR carries, or the card id) -> its person."""

    def look_up(self, card: str) -> HealthCardIdentity | None:
        """The card's verified identity; None for an unknown or expired code. Raises
        RegistryUnavailable."""
        ...
