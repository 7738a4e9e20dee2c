"""`credmail templates check`, the partials: the texts the Italian replies import
(`next_steps.j2`, `names.j2`) exist in each language as i18n/<code>/<partial>, with the
same macros and keys, and say something for every link backend wherever the Italian does;
no translation imports an Italian partial (it would print Italian)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.runtime import Macro

from credmail.service.reply_templates import (
    SCHOOL_TEXTS,
    SUFFIX,
    TRANSLATIONS,
    Language,
    ReplyComposer,
    placeholders,
)
from credmail.service.template_samples import MACRO_ARGUMENTS, VARIANTS, Anything, leaks

ERROR = "error"
WARNING = "warning"
Found = tuple[str, str, str]  # (level, template or partial, message)


def imported(env: jinja2.Environment, source: str) -> set[str]:
    """The templates a template imports or includes by a constant name."""
    found = set()
    for node in env.parse(source).find_all((nodes.FromImport, nodes.Import, nodes.Include)):
        name = getattr(node, "template", None)
        if isinstance(name, nodes.Const) and isinstance(name.value, str):
            found.add(name.value)
    return found


def foreign_imports(env: jinja2.Environment, source: str, code: str) -> list[str]:
    """What a translation of language `code` imports from outside its own i18n/<code>/
    directory (the Italian partials): messages, one per import."""
    own = f"{TRANSLATIONS}/{code}/"
    return [
        f"imports {name}: it would print Italian (import {own}{name.rpartition('/')[2]})"
        for name in sorted(imported(env, source))
        if not name.startswith(own)
    ]


def italian_partials(composer: ReplyComposer, names: Iterable[str]) -> dict[str, set[str]]:
    """Each partial the Italian replies import, with the replies that import it."""
    found: dict[str, set[str]] = {}
    for name in names:
        for partial in imported(composer.env, source_of(composer, f"{name}{SUFFIX}")):
            found.setdefault(partial, set()).add(name)
    return found


def check_partials(
    composer: ReplyComposer,
    language: Language,
    partials: Mapping[str, set[str]],
    translated: Iterable[str],
) -> list[Found]:
    """The language's replies import only its own partials; each partial the Italian
    replies use is there (a warning when missing: those replies cannot be translated) and
    passes `_check_partial`."""
    code = language.code
    done = set(translated)
    found: list[Found] = []
    for name in sorted(done):
        source = source_of(composer, composer.translation_name(code, name))
        try:
            found += [(ERROR, name, m) for m in foreign_imports(composer.env, source, code)]
        except jinja2.TemplateError:  # reported as "does not load" with the reply itself
            continue
    for partial, users in sorted(partials.items()):
        own = f"{TRANSLATIONS}/{code}/{partial}"
        try:
            source = source_of(composer, own)
        except jinja2.TemplateNotFound:
            if users & done:
                message = f"missing partial {own} (the Italian {', '.join(sorted(users))} use it)"
                found.append((WARNING, partial, message))
            continue
        found += [(ERROR, partial, m) for m in _check_partial(composer, language, partial, source)]
    return found


def _check_partial(
    composer: ReplyComposer, language: Language, partial: str, source: str
) -> list[str]:
    """The same macros and keys as the Italian partial; every macro renders for every
    backend with every sample argument, says something wherever the Italian does, and
    never prints the school's Italian texts."""
    env = composer.rtl_env if language.right_to_left else composer.env
    try:
        found = placeholders(env, source)
    except jinja2.TemplateError as exc:
        return [f"does not load: {type(exc).__name__}: {exc}"]
    expected = placeholders(composer.env, source_of(composer, partial))
    problems = [f"missing key {key}" for key in sorted(expected - found)]
    problems += [
        f"unknown key {key} (the Italian does not use it)" for key in sorted(found - expected)
    ]
    problems += foreign_imports(env, source, language.code)
    own = f"{TRANSLATIONS}/{language.code}/{partial}"
    for label, variant in VARIANTS:
        italian_values = {**composer.common, **variant}
        values = {**italian_values, **language.values}
        values |= {key: language.values.get(key, "") for key in SCHOOL_TEXTS}
        try:
            italian = _macros(composer.env.get_template(partial).make_module(italian_values))
            translated = _macros(env.get_template(own).make_module(values))
        except Exception as exc:  # report every way a partial can fail
            problems.append(f"render failure ({label}): {type(exc).__name__}: {exc}")
            continue
        for macro_name, macro in italian.items():
            problems += _compare_macro(macro_name, macro, translated.get(macro_name), label)
    return list(dict.fromkeys(problems))


def _macros(module: Any) -> dict[str, Macro]:
    return {k: v for k, v in vars(module).items() if isinstance(v, Macro)}


def _compare_macro(name: str, italian: Macro, translated: Macro | None, label: str) -> list[str]:
    if translated is None:
        return [f"missing macro {name}"]
    if list(translated.arguments) != list(italian.arguments):
        args, want = ", ".join(translated.arguments), ", ".join(italian.arguments)
        return [f"macro {name}({args}) takes other arguments than the Italian {name}({want})"]
    problems: list[str] = []
    choices: list[tuple[Any, ...]] = [
        MACRO_ARGUMENTS.get(arg, (Anything(arg),)) for arg in italian.arguments
    ]
    for values in itertools.product(*choices):
        kwargs = dict(zip(italian.arguments, values, strict=True))
        try:
            text = str(translated(**kwargs))
        except Exception as exc:  # report every way a macro can fail
            problems.append(f"macro {name} fails ({label}): {type(exc).__name__}: {exc}")
            continue
        if str(italian(**kwargs)).strip() and not text.strip():
            problems.append(f"macro {name} says nothing where the Italian does ({label})")
        problems += [f"macro {name} {m}" for m in leaks(text)]
    return problems


def source_of(composer: ReplyComposer, name: str) -> str:
    loader = composer.env.loader
    assert loader is not None
    return loader.get_source(composer.env, name)[0]
