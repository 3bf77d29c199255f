"""Crash points: named places where a test can make the process die, to prove recovery.

Set ADAPTER_CRASH_AT=<name> in a process's environment and it exits abruptly (os._exit, no
cleanup, no commit) when it reaches that point. Unset in production, this is one dict lookup.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)


def crash_point(name: str) -> None:
    """Die here if ADAPTER_CRASH_AT names this point."""
    if os.environ.get("ADAPTER_CRASH_AT") == name:
        logger.critical("crash point %s reached: exiting abruptly", name)
        logging.shutdown()
        os._exit(70)
