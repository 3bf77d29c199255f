"""Refusals: a rule said no. Each flow names its refusal codes and their zh-CN texts (marked
with N_ for the catalogue) and registers them here; the English texts are translations in
adapter/translations/, like every page string.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from adapter.i18n import language, translate

logger = logging.getLogger(__name__)

# code -> zh-CN source text; filled by each flow package's texts module on import.
TEXTS: dict[str, str] = {}


def register(texts: Mapping[str, str]) -> None:
    """Add a flow's refusal texts; one code has one text."""
    for code, text in texts.items():
        if TEXTS.setdefault(code, text) != text:
            raise ValueError(f"refusal code {code} registered twice")


class _KeepMissing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Refusal(Exception):
    """A rule said no; ``code`` is stable, ``message()`` is for the patient."""

    def __init__(self, code: str, **params: Any) -> None:
        # Only the code and params: never the checked name or number (they would be logged).
        super().__init__(code, params)
        self.code = code
        self.params: dict[str, Any] = params

    def message(self, locale: str = "zh-CN") -> str:
        """The refusal as a sentence in zh-CN (default) or en (any ``en-*`` locale)."""
        text = TEXTS.get(self.code)
        if text is None:  # a code added without text: say something rather than fail
            logger.warning("refusal code %s has no message", self.code)
            return "无法办理，请稍后再试。" if language(locale) == "zh-CN" else \
                "This cannot be done."
        return translate(text, locale).format_map(_KeepMissing(self.params))

    def __str__(self) -> str:
        if not self.params:
            return self.code
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.code} ({shown})"
