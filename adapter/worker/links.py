"""The link checker: every few seconds, ask the HIS and each wallet something cheap that only a
working application answers, and record the outcome (adapter.links.record_link) for /readyz,
/metrics and the status page. A TCP connect is not enough: a HIS that accepts connections and
closes them at once is down.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from adapter.failures import safe_code
from adapter.links import record_link, wallet_link
from adapter.ports import HisRefused, HisUnavailable, WalletRefused, WalletUnavailable

logger = logging.getLogger(__name__)

# Asked of every wallet: a trade that never exists. "Not found", in a verified answer, is up.
PROBE_OUT_TRADE_NO = "LINKCHECK"
# Asked of the HIS: a document number no patient has; any answer (AA, or AE refusing it) is up.
PROBE_DOCUMENT_NUMBER = "0" * 18


def check_links(runtime: Any) -> None:  # noqa: ANN401 - the adapter.runtime.Runtime
    """Check the HIS (unless the profile says none) and every configured wallet."""
    if runtime.profile.link_check == "query":
        document_type = next(iter(runtime.mappings.document_types))
        _check(runtime, "his", (HisUnavailable,), (HisRefused,),
               lambda: runtime.his.find_patient(document_type, PROBE_DOCUMENT_NUMBER))
    for platform, wallet in runtime.wallets.items():
        _check(runtime, wallet_link(platform), (WalletUnavailable,), (WalletRefused,),
               lambda wallet=wallet: wallet.query_trade(PROBE_OUT_TRADE_NO))


def _check(runtime: Any, name: str, down: tuple[type[Exception], ...],  # noqa: ANN401
           answered: tuple[type[Exception], ...], ask: Any) -> None:  # noqa: ANN401
    started = time.monotonic()
    try:
        ask()
        up, detail = True, ""
    except answered:
        up, detail = True, ""
    except down as exc:
        up, detail = False, safe_code(exc)
    except Exception as exc:  # noqa: BLE001 - a check that breaks says "down", never crashes
        up, detail = False, safe_code(exc)
    millis = round((time.monotonic() - started) * 1000)
    detail = f"answered in {millis} ms" if up else f"{detail} after {millis} ms"
    record_link(runtime, name, up, detail, latency_ms=millis)
    if not up:
        logger.warning("link check: %s down (%s)", name, detail)
