"""The text of an HTML body as a reader sees it (the HTML is never rendered).

Block elements become line breaks, other tags are removed, character references are
decoded. What a mail client never shows is dropped with its content: `<script>`,
`<style>`, `<title>` and comments, so a child's name written there (a CSS class, a
window title, a template's leftovers) never takes part in matching names. An element
left open hides the rest of the document, as it does in a browser: that can only leave
a name out (review), never put one in.

Linear on hostile input: each pattern starts at a `<` and cannot run past the next one,
and every search resumes where the last one ended.
"""

from __future__ import annotations

import html
import re

_HIDDEN_OPEN = re.compile(r"<!--|<(script|style|title)\b[^<>]*>", re.I)
_HIDDEN_CLOSE = {  # by the opening's element name; "" for a comment
    "": re.compile(r"-->"),
    **{name: re.compile(rf"</{name}\b", re.I) for name in ("script", "style", "title")},
}
_TAG = re.compile(r"<[^<>]*>")  # cannot span a '<'
_BLOCK_TAG = re.compile(r"</?(?:br|p|div|tr|li|hr|h[1-6]|table)\b[^<>]*>", re.I)


def without_hidden(markup: str) -> str:
    """The HTML without the elements (and comments) a reader never sees."""
    kept: list[str] = []
    at = 0
    while (opened := _HIDDEN_OPEN.search(markup, at)) is not None:
        kept.append(markup[at : opened.start()])
        name = (opened.group(1) or "").lower()
        closed = _HIDDEN_CLOSE[name].search(markup, opened.end())
        if closed is None:
            return " ".join(kept)
        at = closed.start() if name else closed.end()  # a closing tag goes with the tags
    kept.append(markup[at:])
    return " ".join(kept)


def tags_to_text(markup: str) -> str:
    """Block elements as line breaks, other tags removed, references decoded."""
    return html.unescape(_TAG.sub(" ", _BLOCK_TAG.sub("\n", markup)))


def visible_text(markup: str) -> str:
    """The text a reader sees."""
    return tags_to_text(without_hidden(markup))
