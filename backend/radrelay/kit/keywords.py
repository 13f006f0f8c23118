"""Keywords found in the free-text descriptions Chinese and English hospitals send.

Used by the subspecialty rule (routing) and by report templates (which template fits a study).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["keyword_pattern"]


def keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str] | None:
    """Latin keywords match at the start of a word ("head" not in "forehead", "mammo" in
    "mammography"); Chinese ones anywhere (Chinese descriptions have no spaces). Longer keywords
    are tried first, so the match names the most specific one. Search casefolded text."""
    if not keywords:
        return None
    parts = []
    for kw in sorted(keywords, key=len, reverse=True):
        escaped = re.escape(kw.casefold())
        parts.append(rf"(?<![a-z0-9]){escaped}" if kw.isascii() else escaped)
    return re.compile("|".join(parts))
