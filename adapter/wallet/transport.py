"""What every wallet client says about a failed HTTP call: whether it may have reached the
platform (outcome unknown) or provably never left (nothing happened there)."""

from __future__ import annotations

import logging

import requests
import urllib3

from adapter.ports import WalletUnavailable, WalletUnreachable

logger = logging.getLogger(__name__)


def never_sent(exc: requests.RequestException) -> bool:
    """Whether the request provably never reached the platform: no connection was made
    (refused, no route, name not found). A connection that broke later may have carried it."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def transport_failure(what: str, exc: requests.RequestException) -> WalletUnavailable:
    """The exception to raise for a request that failed in transport (logged here, by type
    only: a URL may carry a token)."""
    if never_sent(exc):
        logger.warning("%s: platform unreachable (%s)", what, type(exc).__name__)
        return WalletUnreachable(f"{what}: {type(exc).__name__}")
    if isinstance(exc, requests.Timeout):
        logger.warning("%s: platform timed out; outcome unknown", what)
        return WalletUnavailable(f"{what}: timeout")
    logger.warning("%s: connection failed (%s); outcome unknown", what, type(exc).__name__)
    return WalletUnavailable(f"{what}: {type(exc).__name__}")
