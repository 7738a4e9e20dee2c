"""The writer's own words: quoted earlier messages and signatures cut off a body's text.

Names are matched only in what the sender wrote now, so a child named only in a quoted
older mail is never chosen. A body is cut at the first line that opens a quotation or a
signature (`Il giorno … ha scritto:`, `On … wrote:`, `-----Messaggio originale-----`,
an Outlook `Da:`/`Inviato:` block, `Inviato da iPhone`, `-- `), and `>` lines are dropped.
HTML is cut where a quotation starts (`<blockquote`, Gmail's and Outlook's quote blocks)
before its tags are removed. Text after a quotation is lost, which can only leave a
person unnamed (review), never name the wrong one. Every pattern is linear-time and
applied to one bounded line at a time.
"""

from __future__ import annotations

import re

_MAX_LINE = 1_000
_MAX_SENT_FROM = 60  # "Inviato da iPhone" is short; a sentence opening alike is not cut
_ATTRIBUTION_START = re.compile(r"(il giorno\b|il\s+\S|on\s+\S|in data\b)", re.I)
_ATTRIBUTION_END = re.compile(r"(ha scritto|wrote|scrive)\s*:?\s*$", re.I)
_SEPARATORS = re.compile(
    r"-{2,}\s*(messaggio originale|original message|messaggio inoltrato|forwarded message)"
    r"\s*-{2,}",
    re.I,
)
_SENT_FROM = re.compile(r"(inviato da|inviato dal mio|sent from my|get outlook for)\b", re.I)
_OUTLOOK_FROM = re.compile(r"\**\s*(da|from)\s*:\s*\**\s*\S", re.I)
_OUTLOOK_NEXT = re.compile(r"\**\s*(inviato|data|sent|date|a|to|oggetto|subject)\s*:", re.I)
_HTML_QUOTE = re.compile(
    r"<blockquote\b|<div[^<>]*\b(?:gmail_quote|divRplyFwdMsg|appendonsend|moz-cite-prefix)\b",
    re.I,
)


def unquoted_html(html: str) -> str:
    """The HTML before its first quotation block."""
    found = _HTML_QUOTE.search(html)
    return html[: found.start()] if found else html


def own_text(text: str) -> str:
    """The text before the first quotation or signature line, without `>` lines."""
    lines = text.splitlines()
    kept: list[str] = []
    for index, line in enumerate(lines):
        following = lines[index + 1][:_MAX_LINE] if index + 1 < len(lines) else ""
        if _opens_quote(line[:_MAX_LINE], following):
            break
        if not line.lstrip().startswith(">"):
            kept.append(line)
    return "\n".join(kept)


def _opens_quote(line: str, following: str) -> bool:
    stripped = line.strip()
    if stripped == "--" or _SEPARATORS.search(stripped):
        return True
    if len(stripped) <= _MAX_SENT_FROM and _SENT_FROM.match(stripped):
        return True
    if _OUTLOOK_FROM.match(stripped) and _OUTLOOK_NEXT.match(following.strip()):
        return True
    if not _ATTRIBUTION_START.match(stripped):
        return False
    return bool(
        _ATTRIBUTION_END.search(stripped)
        or _ATTRIBUTION_END.search(f"{stripped} {following.strip()}")
    )
