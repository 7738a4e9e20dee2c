"""Bilingual plain-text replies: Italian first, then the family's language.

Pure text work (no I/O): how the sections are marked, and how a right-to-left section
(Arabic, Urdu...) is made to read correctly in plain-text mail clients.

Right-to-left in plain text: a mail client decides each paragraph's direction from its
first strong character (Unicode Bidirectional Algorithm, rules P2/P3); a line that starts
with a Latin name, a user code or a digit would be laid out left-to-right and its Arabic
words reordered. So every line of a right-to-left section starts with U+200F RIGHT-TO-LEFT
MARK, and every value filled into it (a name, a code, a date) is wrapped in U+2068 FIRST
STRONG ISOLATE ... U+2069 POP DIRECTIONAL ISOLATE, so "Mario Rossi" or "28/11/2026 10:00"
keep their own order inside the Arabic sentence. A line that holds only a link is left
alone (left-to-right, nothing glued to the URL), so clients still recognise the link.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

RLM = "\u200f"  # RIGHT-TO-LEFT MARK
FSI = "\u2068"  # FIRST STRONG ISOLATE
PDI = "\u2069"  # POP DIRECTIONAL ISOLATE
ITALIAN = "it"
ITALIAN_HEADING = "Italiano"
MARK = "=" * 8

_LINK_ONLY = re.compile(
    r"^\s*(?:[a-z][a-z0-9+.-]*://\S+|@@CREDMAIL_LINK(?::[0-9a-f]+)?@@)\s*$", re.IGNORECASE
)
_ISO_639_1 = re.compile(r"^[a-z]{2}$")


def is_language_code(code: str) -> bool:
    """Two lower-case letters (ISO 639-1 shape; whether it exists is the catalog's business)."""
    return bool(_ISO_639_1.match(code))


def is_link_only(text: str) -> bool:
    return bool(_LINK_ONLY.match(text))


def isolate(value: str) -> str:
    """Wrap one inline value for a right-to-left sentence; links and multi-line text pass."""
    if not value or "\n" in value or is_link_only(value):
        return value
    return f"{FSI}{value}{PDI}"


def right_to_left_lines(text: str) -> str:
    """Start every line with a right-to-left mark, except empty lines and bare links."""
    out = []
    for line in text.split("\n"):
        if not line.strip() or is_link_only(line) or line.startswith(RLM):
            out.append(line)
        else:
            out.append(RLM + line)
    return "\n".join(out)


def has_right_to_left(text: str) -> bool:
    return any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text)


@dataclass(frozen=True)
class Section:
    """One translated copy of a reply."""

    language: str  # ISO 639-1
    heading: str  # the language's own name: "Română", "العربية"
    notice: str  # one line in that language: "the text in your language is below"
    subject: str
    body: str
    right_to_left: bool = False


def heading_line(label: str, code: str) -> str:
    return f"{MARK} {label} ({code}) {MARK}"


def bilingual_body(italian: str, sections: Sequence[Section]) -> str:
    """Italian first, then each translation, every section marked; the Italian text alone
    (unchanged) when there is nothing to add."""
    if not sections:
        return italian
    notices = [_directed(f"[{s.language}] {s.notice}", s.right_to_left) for s in sections]
    parts = ["\n".join(notices), heading_line(ITALIAN_HEADING, ITALIAN), italian.rstrip("\n")]
    for section in sections:
        text = f"{section.subject}\n\n{section.body.rstrip(chr(10))}"
        heading = heading_line(section.heading, section.language)
        parts.append(_directed(heading, section.right_to_left))
        parts.append(_directed(text, section.right_to_left))
    return "\n\n".join(parts) + "\n"


def content_language(sections: Sequence[Section]) -> str:
    """The Content-Language header (RFC 3282): every language the mail holds, Italian first."""
    return ", ".join([ITALIAN, *(s.language for s in sections)])


def _directed(text: str, right_to_left: bool) -> str:
    return right_to_left_lines(text) if right_to_left else text
