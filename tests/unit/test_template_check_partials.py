"""`credmail templates check` and the partials the replies import (next_steps.j2,
names.j2): each language has its own with the Italian's macros, they render and say
something for every link backend, a translation never imports the Italian one, and no
translation shows a code credmail made up."""

from __future__ import annotations

from pathlib import Path

from credmail.service.reply_templates import ReplyComposer
from credmail.service.template_check import ERROR, WARNING, check_templates, sample_cases

TRANSLATED = (
    "campaign_new_student",
    "link_adult",
    "link_already_sent",
    "link_student",
    "minor_procedure",
    "rate_limited",
    "review_rejected",
    "task_done",
)
COMMON = {"school_name": "Istituto Stanga", "signature": "La Segreteria", "contact": "Scriva."}


def composer(templates_dir: Path | None = None) -> ReplyComposer:
    return ReplyComposer("segreteria@example.org", "Segreteria", COMMON, templates_dir)


def package_source(name: str) -> str:
    c = composer()
    assert c.env.loader is not None
    return c.env.loader.get_source(c.env, name)[0]


def school(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def errors(templates_dir: Path) -> set[tuple[str, str | None, str]]:
    report = check_templates(composer(templates_dir), TRANSLATED, ())
    return {(f.language, f.template, f.message) for f in report.errors}


def test_every_shipped_language_has_both_partials() -> None:
    report = check_templates(composer(), TRANSLATED, ())
    assert [f for f in report.findings if "partial" in f.message] == []
    assert report.errors == ()


def test_every_reply_is_rendered_for_every_backend_and_with_made_up_codes() -> None:
    for template in TRANSLATED:
        labels = [label for label, _ in sample_cases(composer(), template)]
        for backend in ("worklist", "ldap", "webhook"):
            assert any(f"backend={backend}" in label for label in labels), template
    campaign = [label for label, _ in sample_cases(composer(), "campaign_new_student")]
    assert "all values" in campaign and "made-up codes" in campaign


def test_a_translation_importing_the_italian_partial_is_an_error(tmp_path: Path) -> None:
    source = package_source("i18n/ro/link_adult.txt.j2").replace(
        '"i18n/ro/next_steps.j2"', '"next_steps.j2"'
    )
    found = errors(school(tmp_path, {"i18n/ro/link_adult.txt.j2": source}))
    assert (
        "ro",
        "link_adult",
        "imports next_steps.j2: it would print Italian (import i18n/ro/next_steps.j2)",
    ) in found


def test_a_partial_without_a_macro_or_with_other_arguments_is_an_error(tmp_path: Path) -> None:
    steps = package_source("i18n/fr/next_steps.j2")
    without = steps[: steps.index("{%- macro unknown_code")]
    names = package_source("i18n/es/names.j2").replace(
        "macro dear(reader, fallback)", "macro dear(fallback)"
    )
    found = errors(school(tmp_path, {"i18n/fr/next_steps.j2": without, "i18n/es/names.j2": names}))
    assert ("fr", "next_steps.j2", "missing macro unknown_code") in found
    assert (
        "es",
        "names.j2",
        "macro dear(fallback) takes other arguments than the Italian dear(reader, fallback)",
    ) in found


def test_a_webhook_text_only_in_italian_leaves_the_translation_saying_nothing(
    tmp_path: Path,
) -> None:
    """The school's webhook text is Italian: a translation printing only it says nothing."""
    steps = package_source("i18n/en/next_steps.j2")
    start = steps.index("{%- elif webhook_next_steps -%}")
    end = steps.index("{%- endif -%}", start)
    bare = steps[:start] + "{%- else -%}\n{{ webhook_next_steps }}\n" + steps[end:]
    found = errors(school(tmp_path, {"i18n/en/next_steps.j2": bare}))
    assert any(
        (code, where) == ("en", "next_steps.j2")
        and message.startswith("macro after_confirm says nothing where the Italian does")
        and "backend=webhook" in message
        for code, where, message in found
    )


def test_a_translation_showing_a_made_up_code_is_an_error(tmp_path: Path) -> None:
    source = package_source("i18n/uk/link_student.txt.j2").replace(
        "{% if username is register_reference -%}", "{{ username }}\n{% if false -%}"
    )
    found = errors(school(tmp_path, {"i18n/uk/link_student.txt.j2": source}))
    assert (
        "uk",
        "link_student",
        "shows the code credmail made up (alunno-5256302): say where the code is",
    ) in found


def test_a_new_language_without_partials_is_warned_not_failed(tmp_path: Path) -> None:
    """A school adds a language with one reply that needs no partial: that works; the
    partials the other replies would need are listed."""
    templates = school(
        tmp_path,
        {
            "i18n/de/language.toml": 'name = "German"\nnative_name = "Deutsch"\n'
            '[text]\nnotice = "Unten."\ncontact = "Antworten Sie."\nsignature = "Sekretariat"\n',
            "i18n/de/rate_limited.txt.j2": '{%- set subject = "Zu viele - " ~ school_name -%}\n'
            "Zu viele Anfragen.\n{{ contact }}\n",
        },
    )
    report = check_templates(composer(templates), TRANSLATED, ())
    assert [f for f in report.errors if f.language == "de"] == []
    warned = {(f.template, f.level) for f in report.findings if f.language == "de"}
    assert ("names.j2", WARNING) in warned
    assert all(f.level != ERROR for f in report.findings if f.language == "de")
