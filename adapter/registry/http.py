"""JSON-over-HTTP clients of the SMS gateway and the health card registry (stdlib urllib:
two small POSTs do not need a client library; explicit timeouts; nothing personal logged)."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any

from adapter.ports_identity import HealthCardIdentity, RegistryUnavailable

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5.0  # a patient waits on the page meanwhile


def _post(url: str, body: dict[str, str]) -> tuple[int, Any]:
    # The URL is the configuration's, checked to be http(s) (adapter/config.py).
    request = urllib.request.Request(  # noqa: S310
        url, data=json.dumps(body, ensure_ascii=False).encode("utf-8"), method="POST",
        headers={"Content-Type": "application/json; charset=utf-8",
                 "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        logger.warning("registry at %s did not answer: %s", url, type(exc).__name__)
        raise RegistryUnavailable(type(exc).__name__) from None


class HttpSmsSender:
    """SmsSender: ``POST <url>`` ``{"phone", "text"}``; any 2xx means the gateway took it."""

    def __init__(self, url: str) -> None:
        self.url = url

    def send(self, phone: str, text: str) -> None:
        """Hand one message to the gateway; raises RegistryUnavailable."""
        status, _ = _post(self.url, {"phone": phone, "text": text})
        if not 200 <= status < 300:
            logger.warning("SMS gateway answered %s", status)
            raise RegistryUnavailable(f"status {status}")


class HttpHealthCardRegistry:
    """HealthCardRegistry: ``POST <url>/lookup`` ``{"card"}`` -> 200 with the card's person
    (card_id, name, document_type, document_number, phone, sex), or 404 for no such card."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def look_up(self, card: str) -> HealthCardIdentity | None:
        """The card's verified identity; None for an unknown or expired code."""
        status, body = _post(f"{self.url}/lookup", {"card": card})
        if status == 404:
            return None
        if status != 200 or not isinstance(body, dict):
            logger.warning("health card registry answered %s", status)
            raise RegistryUnavailable(f"status {status}")
        try:
            return HealthCardIdentity(
                card_id=str(body["card_id"]), name=str(body["name"]),
                document_type=str(body["document_type"]),
                document_number=str(body["document_number"]),
                phone=str(body.get("phone") or ""), sex=str(body.get("sex") or ""))
        except KeyError as exc:
            raise RegistryUnavailable(f"answer without {exc.args[0]}") from None
