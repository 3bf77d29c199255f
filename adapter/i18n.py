"""One translation mechanism for everything a patient reads: page strings, refusal texts and
status texts all live in the gettext catalogues under adapter/translations/ that Flask-Babel
renders the pages with. Source strings are Chinese (zh-CN is the default language); English is
the translation. This module reads the same catalogues without Flask, so use cases and tests can
translate too.
"""

from __future__ import annotations

import gettext
from functools import cache
from pathlib import Path

from babel.support import Translations

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"
LOCALES = ("zh-CN", "en")


def language(locale: str) -> str:
    """The supported language of a locale tag: "en" for any en-*, else "zh-CN"."""
    return "en" if locale.lower().startswith("en") else "zh-CN"


@cache
def _catalogue(lang: str) -> gettext.NullTranslations:
    if lang == "zh-CN":
        return gettext.NullTranslations()  # the source strings are the zh-CN texts
    return Translations.load(str(TRANSLATIONS_DIR), [lang], domain="messages")


def translate(text: str, locale: str) -> str:
    """``text`` (a Chinese source string) in the language of ``locale``."""
    return _catalogue(language(locale)).gettext(text)


def N_(text: str) -> str:  # noqa: N802 - the usual gettext marker name
    """Mark a string for extraction into the catalogue; translated later with translate()."""
    return text
