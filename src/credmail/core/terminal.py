"""Text that is safe to print on a terminal: no control sequences, no bidi overrides.

Mail is written by strangers; a reviewer's terminal must show it, not obey it.
"""

from __future__ import annotations

import re

# C0 controls except tab and newline, DEL, C1 controls, and the Unicode bidi controls
# (LRM, RLM, ALM, LRE..RLO, LRI..PDI) that can reorder what the reader sees.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str, *, one_line: bool = False) -> str:
    """`text` with every unsafe character removed (newlines too when `one_line`)."""
    clean = _UNSAFE.sub("", text)
    return clean.replace("\n", " ").replace("\t", " ") if one_line else clean
