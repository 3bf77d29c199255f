"""What the demo's scripts share: timeouts, waiting for a condition, free ports, the failure."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

TIMEOUT = 10
# The demo hospital's geofence centre (WGS-84), given to the adapter in `demo`.
DEMO_CENTRE = (31.2165, 121.4575)


class DemoFailed(Exception):
    """An invariant did not hold."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(what: str, check: Callable[[], Any], seconds: float = 60) -> Any:  # noqa: ANN401
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            result = check()
        except OSError:  # requests' errors are OSErrors: not up yet
            result = None
        if result:
            return result
        time.sleep(0.3)
    raise DemoFailed(f"timed out waiting for {what}")
