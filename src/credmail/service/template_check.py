"""`credmail templates check`: every translation against its Italian reply.

For each language: its review note, the replies it lacks (sent in Italian only: a
warning), and for each reply it has, the placeholders compared with the Italian's and a
render of every case the Italian renders, for every link backend, with and without a
reader known by name, a person's decision and the school's own Italian texts (a missing
or unknown key, a failure to render, the school's Italian text or a made-up code in the
translation, is an error). The partials the Italian replies import (`next_steps.j2`,
`names.j2`) are checked too: each language has its own, with the same macros, and they
render for every backend; a translation that imports the Italian partial would print
Italian, which is an error. A translation whose Italian has changed since it was made (its
recorded hash, service/translation_hashes.py) is a warning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2

from credmail.service.partial_check import (
    ERROR,
    WARNING,
    check_partials,
    italian_partials,
    source_of,
)
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
from credmail.service.template_samples import (
    MADE_UP,
    SAMPLE_VALUES,
    VARIANTS,
    Anything,
    leaks,
    made_up,
)
from credmail.service.translation_hashes import STALE, stale

__all__ = ["ERROR", "SAMPLE_VALUES", "WARNING", "check_templates", "sample_cases"]


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
    """Contexts the Italian reply renders with: every value set (with each of the VARIANTS
    and with made-up codes), then each value left out, None and empty in turn (the
    `{% if %}` branches)."""
    source = source_of(composer, f"{template}{SUFFIX}")
    names = sorted(n for n in placeholders(composer.env, source) if "." not in n)
    full = {n: SAMPLE_VALUES.get(n, Anything(n)) for n in names if n not in COMMON_KEYS}
    cases: list[tuple[str, dict[str, Any]]] = [("all values", full)]
    cases += [(label, {**full, **values}) for label, values in VARIANTS]
    if "username" in full or "students" in full:
        cases.append(("made-up codes", made_up(full)))
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
    expected = {n: placeholders(composer.env, source_of(composer, f"{n}{SUFFIX}")) for n in names}
    cases = {n: sample_cases(composer, n) for n in names}
    partials = italian_partials(composer, names)
    summaries = []
    for language in composer.languages.values():
        summary, found = _check_language(composer, language, names, expected, cases, partials)
        summaries.append(summary)
        findings += found
    return TemplatesReport(tuple(names), tuple(sorted(skip)), tuple(summaries), tuple(findings))


def _check_language(
    composer: ReplyComposer,
    language: Language,
    names: list[str],
    expected: Mapping[str, set[str]],
    cases: Mapping[str, list[tuple[str, dict[str, Any]]]],
    partials: Mapping[str, set[str]],
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
    if language.problem is None:
        for level, where, message in check_partials(composer, language, partials, translated):
            add(level, where, message)
    for name in stale(composer.env, code):
        add(WARNING, name, STALE.format(code=code))
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
        source = source_of(composer, composer.translation_name(code, name))
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
        text = f"{subject}\n{body}"
        italian = "\n".join(composer.render(name, context)) if MADE_UP in text else ""
        for message in leaks(text, italian):
            if (ERROR, message) not in problems:
                problems.append((ERROR, message))
    return problems
