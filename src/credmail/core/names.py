"""Find which directory people a free text names (username, full name or first name)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from credmail.core.values import Person


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " " + " ".join(re.findall(r"[\w@-]+(?:\.[\w@-]+)*", stripped)) + " "


def _mentions(haystack: str, phrase: str) -> bool:
    needle = _plain(phrase)
    return needle.strip() != "" and needle in haystack


def named_people(text: str, people: Iterable[Person], *, first_names: bool) -> tuple[Person, ...]:
    """People whose username or full name (either order) appears as whole words in `text`.

    With `first_names`, a first name alone also counts (used for a guardian's children).
    """
    haystack = _plain(text)
    found = []
    for person in people:
        phrases = [person.username, person.full_name, f"{person.last_name} {person.first_name}"]
        if first_names:
            phrases.append(person.first_name)
        if any(_mentions(haystack, phrase) for phrase in phrases):
            found.append(person)
    return tuple(found)
