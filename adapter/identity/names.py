"""Names as people type, paste or get from OCR: normalised for storage, compared for matching."""

from __future__ import annotations

import logging
import re
import unicodedata

logger = logging.getLogger(__name__)


# Marks people type, paste or get from OCR for the middle dot of transliterated names
# (阿卜杜拉·买买提). NFKC runs first, which already maps U+0387 to U+00B7, U+FF65 to U+30FB,
# U+FF0E/U+FE52 to '.' and the Hangul araea U+318D to U+119E (an archaic vowel that no modern
# Korean name uses on its own).
_MIDDLE_DOTS = "\u00b7\u2022\u2027\u30fb\uff65\u318d\u119e\u16eb\u2219\u22c5\u2e31\u0387\uff0e"
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_DOT_RE = re.compile(rf"\s*[{_MIDDLE_DOTS}]\s*")
# A '.' (what NFKC makes of U+FF0E) between CJK characters is a middle dot too.
_CJK_PERIOD_RE = re.compile(rf"(?<=[{_CJK}])\s*\.\s*(?=[{_CJK}])")
# Chinese names have no spaces: "张 三" is 张三. Latin names keep one space between words.
_CJK_SPACE_RE = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")
_SPACE_RE = re.compile(r"\s+")


def normalize_name(name: str) -> str:
    """The name as it is stored and shown: NFKC, one middle dot (U+00B7), spaces tidied.

    Case is kept for display; compare with :func:`names_match`.
    """
    text = unicodedata.normalize("NFKC", name)  # full-width letters, digits, U+3000 -> ASCII
    text = _CJK_PERIOD_RE.sub("\u00b7", text)
    text = _DOT_RE.sub("\u00b7", text)
    text = _SPACE_RE.sub(" ", text).strip()
    return _CJK_SPACE_RE.sub("", text)


def names_match(a: str, b: str) -> bool:
    """True when two names are the same after normalising, Latin case ignored."""
    left, right = normalize_name(a).casefold(), normalize_name(b).casefold()
    return bool(left) and left == right
