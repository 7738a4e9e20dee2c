"""Which Italian text a translation was made from: its sha256, recorded in the translation's
first line as a Jinja comment, `{#- it-sha256: <hex> -#}` (it prints nothing).

`credmail templates check` warns about a translation whose Italian has changed since (the
translation may no longer say the same thing); `credmail templates rehash LANG`, run once a
person has reviewed the translation against the new Italian, records the hashes again. A
translation without the line (a school's own, written before) is not tracked.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import jinja2

TRANSLATIONS = "i18n"
RECORD = re.compile(r"\A\{#-? it-sha256: ([0-9a-f]{64}) -?#\}\n?")
STALE = (
    "the Italian text changed since this translation: "
    "review it, then run `credmail templates rehash {code}`"
)


def digest(italian: str) -> str:
    return hashlib.sha256(italian.encode("utf-8")).hexdigest()


def recorded(translation: str) -> str | None:
    """The hash a translation records, or None."""
    found = RECORD.match(translation)
    return found.group(1) if found else None


def stamped(italian: str, translation: str) -> str:
    """The translation with the Italian's hash in its first line (replacing an older one)."""
    return f"{{#- it-sha256: {digest(italian)} -#}}\n" + RECORD.sub("", translation, count=1)


def pairs(env: jinja2.Environment, code: str, suffix: str = "") -> Iterator[tuple[str, str]]:
    """(Italian, translation) template names for every translation of language `code`
    ending in `suffix` that has an Italian template of the same name."""
    loader = env.loader
    assert loader is not None
    prefix = f"{TRANSLATIONS}/{code}/"
    for name in sorted(loader.list_templates()):
        if not name.startswith(prefix) or not name.endswith(suffix):
            continue
        italian = name.removeprefix(prefix)
        try:
            loader.get_source(env, italian)
        except jinja2.TemplateNotFound:
            continue  # language.toml, or a translation of nothing
        yield italian, name


def stale(env: jinja2.Environment, code: str, suffix: str = "") -> list[str]:
    """The translations (template names) whose recorded Italian is not today's."""
    found = []
    for italian, name in pairs(env, code, suffix):
        record = recorded(_source(env, name)[0])
        if record is not None and record != digest(_source(env, italian)[0]):
            found.append(name)
    return found


def rehash(env: jinja2.Environment, code: str, suffix: str = "") -> list[Path]:
    """Record today's Italian in every translation of `code` (in the file the template
    comes from: the school's templates_dir wins over credmail's own); the files changed."""
    changed = []
    for italian, name in pairs(env, code, suffix):
        source, filename = _source(env, name)
        new = stamped(_source(env, italian)[0], source)
        if new != source and filename is not None:
            Path(filename).write_text(new, encoding="utf-8")
            changed.append(Path(filename))
    return changed


def _source(env: jinja2.Environment, name: str) -> tuple[str, str | None]:
    assert env.loader is not None
    source, filename, _ = env.loader.get_source(env, name)
    return source, filename
