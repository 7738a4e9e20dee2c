"""`credmail templates check`: every translation against its Italian reply.

For each language: its review note, the replies it lacks (sent in Italian only: a
warning), and for each reply it has, the placeholders compared with the Italian's and a
render of every case the Italian renders (a missing or unknown key, or a failure to
render, is an error).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import jinja2

from credmail.core.values import Person, Role
from credmail.service.reply_templates import (
    COMMON_KEYS,
    SCHOOL_TEXTS,
    SUFFIX,
    TRANSLATABLE_VALUES,
    Language,
    ReplyComposer,
    TranslationMissing,
    placeholders,
)

ERROR = "error"
WARNING = "warning"


class Anything:
    """A stand-in for a value the checker knows nothing about (a reply added later)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Anything:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return Anything(f"{self._name}.{attr}")

    def __iter__(self) -> Iterator[Anything]:
        return iter((Anything(f"{self._name}[0]"),))

    def __len__(self) -> int:
        return 1

    def __str__(self) -> str:
        return f"<{self._name}>"


SAMPLE_VALUES: Mapping[str, Any] = {
    "person": Person("G1234567L", Role.GUARDIAN, "Mario", "Rossi", None),
    "student": Person("S1234567A", Role.STUDENT, "Luca", "Rossi", date(2012, 5, 4)),
    "username": "S1234567A",
    "link": "https://registro.example.org/reset/abc.def",
    "expires_at": "28/11/2026 11:00",
    "sent_at": "10:02",
    "note": "documento non leggibile",
    "students": [  # a mail naming several students (the September mailing)
        {
            "first_name": "Luca",
            "last_name": "Rossi",
            "username": "S1234567A",
            "link": "https://registro.example.org/reset/abc.def",
        },
        {
            "first_name": "Anna",
            "last_name": "Rossi",
            "username": "S7654321B",
            "link": "https://registro.example.org/reset/ghi.jkl",
        },
    ],
}


@dataclass(frozen=True)
class Finding:
    level: str  # ERROR or WARNING
    language: str
    template: str | None
    message: str


@dataclass(frozen=True)
class LanguageSummary:
    code: str
    name: str
    native_name: str
    direction: str
    origin: str
    status: str
    reviewed_by: str
    reviewed_on: str
    reviewed: bool
    translated: tuple[str, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True)
class TemplatesReport:
    templates: tuple[str, ...]  # Italian replies that take translations
    italian_only: tuple[str, ...]
    languages: tuple[LanguageSummary, ...]
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == WARNING)


def sample_cases(composer: ReplyComposer, template: str) -> list[tuple[str, dict[str, Any]]]:
    """Contexts the Italian reply renders with: every value set, then each value left out,
    None and empty in turn (the `{% if %}` branches)."""
    source = _source(composer, f"{template}{SUFFIX}")
    names = sorted(n for n in placeholders(composer.env, source) if "." not in n)
    full = {n: SAMPLE_VALUES.get(n, Anything(n)) for n in names if n not in COMMON_KEYS}
    cases: list[tuple[str, dict[str, Any]]] = [("all values", full)]
    for name in full:
        rest = {k: v for k, v in full.items() if k != name}
        cases += [(f"without {name}", rest), (f"{name}=None", {**rest, name: None})]
        cases.append((f"{name}=''", {**rest, name: ""}))
    usable = []
    for label, context in cases:
        try:
            composer.render(template, context)
        except Exception:  # noqa: S112 - a case the Italian cannot render is no case
            continue
        usable.append((label, context))
    return usable


def check_templates(
    composer: ReplyComposer, templates: Iterable[str], italian_only: Iterable[str] = ()
) -> TemplatesReport:
    skip = set(italian_only)
    names = sorted(set(templates) - skip)
    findings: list[Finding] = []
    expected = {n: placeholders(composer.env, _source(composer, f"{n}{SUFFIX}")) for n in names}
    cases = {n: sample_cases(composer, n) for n in names}
    summaries = []
    for language in composer.languages.values():
        summary, found = _check_language(composer, language, names, expected, cases)
        summaries.append(summary)
        findings += found
    return TemplatesReport(tuple(names), tuple(sorted(skip)), tuple(summaries), tuple(findings))


def _check_language(
    composer: ReplyComposer,
    language: Language,
    names: list[str],
    expected: Mapping[str, set[str]],
    cases: Mapping[str, list[tuple[str, dict[str, Any]]]],
) -> tuple[LanguageSummary, list[Finding]]:
    code = language.code
    findings: list[Finding] = []

    def add(level: str, template: str | None, message: str) -> None:
        findings.append(Finding(level, code, template, message))

    if language.problem is not None:
        add(ERROR, None, f"language.toml: {language.problem}")
    for key in ("name", "native_name"):
        if not getattr(language, key):
            add(ERROR, None, f"language.toml: missing key {key}")
    if not language.notice:
        add(ERROR, None, "language.toml: missing key text.notice")
    for key in set(TRANSLATABLE_VALUES) - set(SCHOOL_TEXTS):  # the school's own: optional
        if key not in language.values:
            add(ERROR, None, f"language.toml: missing key text.{key}")
    if not language.reviewed:
        add(WARNING, None, f"unreviewed: {language.status}")
    translated, missing = [], []
    for name in names:
        if composer.translation_source(code, name) is None:
            missing.append(name)
            add(WARNING, name, "missing template: this reply goes in Italian only")
            continue
        translated.append(name)
        if language.problem is None:
            for level, message in _check_one(composer, code, name, expected[name], cases[name]):
                add(level, name, message)
    summary = LanguageSummary(
        code=code,
        name=language.name,
        native_name=language.native_name,
        direction="rtl" if language.right_to_left else "ltr",
        origin=language.origin,
        status=language.status,
        reviewed_by=language.reviewed_by,
        reviewed_on=language.reviewed_on,
        reviewed=language.reviewed,
        translated=tuple(translated),
        missing=tuple(missing),
    )
    return summary, findings


def _check_one(
    composer: ReplyComposer,
    code: str,
    name: str,
    expected: set[str],
    cases: list[tuple[str, dict[str, Any]]],
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    try:
        source = _source(composer, composer.translation_name(code, name))
        found = placeholders(composer.env, source)
    except jinja2.TemplateError as exc:
        return [(ERROR, f"does not load: {type(exc).__name__}: {exc}")]
    expected = expected - COMMON_KEYS
    found = found - COMMON_KEYS
    for key in sorted(expected - found):
        problems.append((ERROR, f"missing key {key}"))
    for key in sorted(found - expected):
        problems.append((ERROR, f"unknown key {key} (the Italian does not use it)"))
    for label, context in cases:
        try:
            subject, body = composer.render_in(code, name, context)
        except TranslationMissing:
            problems.append((ERROR, "language unusable"))
            break
        except Exception as exc:  # report every way a render can fail
            problems.append((ERROR, f"render failure ({label}): {type(exc).__name__}: {exc}"))
            continue
        if subject == "Segreteria" or not body.strip():
            problems.append((ERROR, f"missing key subject or empty body ({label})"))
    return problems


def _source(composer: ReplyComposer, name: str) -> str:
    loader = composer.env.loader
    assert loader is not None
    return loader.get_source(composer.env, name)[0]
