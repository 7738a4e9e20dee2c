"""Translated replies (issue 19): every shipped language has every reply, with the
Italian's placeholders, and renders every case the Italian renders; a missing key is
caught; a missing or broken translation falls back to Italian only."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from credmail.core.multilingual import FSI, PDI, RLM
from credmail.service.links import EXPIRY_PLACEHOLDER, LINK_PLACEHOLDER, PLAIN_EXPIRY_PLACEHOLDER
from credmail.service.outbox.queue import fill_link
from credmail.service.reply_templates import ReplyComposer, placeholders
from credmail.service.template_check import (
    ERROR,
    SAMPLE_VALUES,
    check_templates,
    sample_cases,
)

SHIPPED = ("ar", "en", "es", "fr", "ro", "sq", "uk", "zh")
# Every reply credmail sends to a person on file (acknowledge_unknown goes to strangers).
TRANSLATED = (
    "campaign_new_student",
    "link_adult",
    "link_already_sent",
    "link_student",
    "minor_procedure",
    "near_miss_guide",
    "rate_limited",
    "review_rejected",
    "task_done",
)
ITALIAN_ONLY = ("acknowledge_unknown", "admin_alert", "staff_digest")  # the last two: staff
COMMON = {"school_name": "Istituto Stanga", "signature": "La Segreteria", "contact": "Scriva."}
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def composer(templates_dir: Path | None = None) -> ReplyComposer:
    return ReplyComposer("segreteria@example.org", "Segreteria", COMMON, templates_dir)


def parsed(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def body(raw: bytes) -> str:
    return str(parsed(raw).get_content())


def test_the_shipped_languages_are_the_eight_of_the_issue_and_all_unreviewed() -> None:
    languages = composer().languages
    assert tuple(sorted(languages)) == SHIPPED
    for language in languages.values():
        assert language.problem is None
        assert language.status == "machine-drafted, awaiting review by a native speaker"
        assert not language.reviewed
        assert language.native_name and language.notice
        assert set(language.values) == {"contact", "signature"}
    assert languages["ar"].right_to_left
    assert not any(lang.right_to_left for code, lang in languages.items() if code != "ar")


@pytest.mark.parametrize("language", SHIPPED)
@pytest.mark.parametrize("template", TRANSLATED)
def test_every_reply_in_every_language_has_the_italian_keys_and_renders_every_case(
    language: str, template: str
) -> None:
    c = composer()
    assert c.translation_source(language, template) == "package", "translation missing"
    loader = c.env.loader
    assert loader is not None
    italian = placeholders(c.env, loader.get_source(c.env, f"{template}.txt.j2")[0])
    name = c.translation_name(language, template)
    translated = placeholders(c.env, loader.get_source(c.env, name)[0])
    assert translated == italian
    cases = sample_cases(c, template)
    assert cases
    for label, context in cases:
        subject, text = c.render_in(language, template, context)
        assert subject and subject != "Segreteria", label
        assert "Istituto Stanga" in subject
        assert text.strip(), label
        if isinstance(context.get("link"), str) and context["link"]:
            assert context["link"] in text.split("\n"), f"link not alone on a line: {label}"
        for student in context.get("students") or []:  # the September mailing's keyed links
            assert student["link"] in text.split("\n"), f"link not alone on a line: {label}"


def test_the_italian_replies_on_this_branch_are_all_translated_or_italian_only() -> None:
    assert set(composer().italian_templates()) == set(TRANSLATED) | set(ITALIAN_ONLY)


def test_templates_check_of_the_package_has_no_errors_and_warns_unreviewed() -> None:
    report = check_templates(composer(), TRANSLATED + ITALIAN_ONLY, ITALIAN_ONLY)
    assert report.errors == ()
    assert report.templates == TRANSLATED
    assert report.italian_only == ITALIAN_ONLY
    unreviewed = {f.language for f in report.warnings if f.message.startswith("unreviewed")}
    assert unreviewed == set(SHIPPED)
    assert all(s.missing == () for s in report.languages)


def _school(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def _package_source(name: str) -> str:
    c = composer()
    assert c.env.loader is not None
    return c.env.loader.get_source(c.env, name)[0]


def test_a_translation_missing_a_key_is_an_error(tmp_path: Path) -> None:
    without_link = _package_source("i18n/ro/link_adult.txt.j2").replace("{{ link }}", "")
    school = _school(tmp_path, {"i18n/ro/link_adult.txt.j2": without_link})
    report = check_templates(composer(school), TRANSLATED, ())
    assert [(f.language, f.template, f.message) for f in report.errors] == [
        ("ro", "link_adult", "missing key link")
    ]


def test_a_translation_using_a_key_the_italian_lacks_is_an_error(tmp_path: Path) -> None:
    extra = _package_source("i18n/fr/rate_limited.txt.j2").replace(
        '{{ dear(reader, "Madame, Monsieur,") }}', "Bonjour {{ person.first_name }},"
    )
    assert "person.first_name" in extra
    school = _school(tmp_path, {"i18n/fr/rate_limited.txt.j2": extra})
    messages = [f.message for f in check_templates(composer(school), TRANSLATED, ()).errors]
    assert "unknown key person (the Italian does not use it)" in messages
    assert any(m.startswith("render failure") for m in messages)


def test_a_broken_language_file_and_a_syntax_error_are_errors(tmp_path: Path) -> None:
    school = _school(
        tmp_path,
        {
            "i18n/es/language.toml": "name = [unclosed",
            "i18n/uk/link_student.txt.j2": "{% if %}",
        },
    )
    report = check_templates(composer(school), TRANSLATED, ())
    found = {(f.language, f.template) for f in report.errors}
    assert ("es", None) in found
    assert ("uk", "link_student") in found


def test_a_new_italian_reply_is_listed_as_missing_in_every_language_not_an_error(
    tmp_path: Path,
) -> None:
    """What another issue's new mail looks like until its translations are added."""
    school = _school(
        tmp_path,
        {
            "open_day_invitation.txt.j2": '{%- set subject = "Benvenuti - " ~ school_name -%}\n'
            "Gentile {{ guardian.first_name }}, ecco il link: {{ link }}\n{{ contact }}\n"
        },
    )
    c = composer(school)
    report = check_templates(c, (*TRANSLATED, "open_day_invitation"), ())
    assert report.errors == ()
    for summary in report.languages:
        assert summary.missing == ("open_day_invitation",)
    mail = c.compose(
        "open_day_invitation",
        "x@example.org",
        {"guardian": SAMPLE_VALUES["person"], "link": "https://r.example.org/x"},
        None,
        NOW,
        languages=["ro"],
    )
    assert parsed(mail.raw)["Content-Language"] == "it"
    # ...and adding the file is all it takes.
    _school(
        tmp_path,
        {
            "i18n/ro/open_day_invitation.txt.j2": '{%- set subject = "Bun venit - " ~ '
            "school_name -%}\nBună ziua, {{ guardian.first_name }}: {{ link }}\n{{ contact }}\n"
        },
    )
    c = composer(school)
    assert check_templates(c, ("open_day_invitation",), ()).errors == ()
    mail = c.compose(
        "open_day_invitation",
        "x@example.org",
        {"guardian": SAMPLE_VALUES["person"], "link": "https://r.example.org/x"},
        None,
        NOW,
        languages=["ro"],
    )
    assert parsed(mail.raw)["Content-Language"] == "it, ro"
    assert "Bună ziua, Mario: https://r.example.org/x" in body(mail.raw)


CONTEXT = {
    "person": SAMPLE_VALUES["person"],
    "student": SAMPLE_VALUES["student"],
    "username": "S1234567A",
    "link": LINK_PLACEHOLDER,
    "expires_at": EXPIRY_PLACEHOLDER,
}
TRANSLATED_CONTEXT = {"expires_at": PLAIN_EXPIRY_PLACEHOLDER}


def _compose(c: ReplyComposer, languages: list[str], template: str = "link_student") -> bytes:
    mail = c.compose(
        template,
        "famiglia@example.org",
        CONTEXT,
        "<req@example.org>",
        NOW,
        languages=languages,
        translated=TRANSLATED_CONTEXT,
    )
    return fill_link(
        mail.raw,
        "https://registro.example.org/reset/abc",
        "28/11/2026 alle 11:00",
        "28/11/2026 11:00",
    )


def test_italian_first_then_romanian_in_one_mail_with_content_language() -> None:
    c = composer()
    raw = _compose(c, ["ro"])
    msg = parsed(raw)
    text = body(raw)
    assert msg["Content-Language"] == "it, ro"
    assert msg["Subject"].startswith("Credenziali studente del Registro Elettronico")
    italian = text.index("======== Italiano (it) ========")
    romanian = text.index("======== Română (ro) ========")
    assert text.index("Gentile genitore/tutore") > italian
    assert romanian > text.index("Istituto Stanga", italian)
    assert text.index("Stimate părinte/tutore") > romanian
    assert text.startswith("[ro] Textul în limba română se află mai jos")
    assert text.count("https://registro.example.org/reset/abc") == 2
    assert "scade il 28/11/2026 alle 11:00" in text
    assert "expiră la 28/11/2026 11:00." in text  # no Italian "alle" in the Romanian text
    assert "Secretariatul" in text and "La Segreteria" in text
    assert "@@" not in text


def test_an_italian_only_mail_is_unchanged() -> None:
    c = composer()
    raw = _compose(c, [])
    _, italian = c.render("link_student", CONTEXT)
    assert parsed(raw)["Content-Language"] == "it"
    assert body(raw).startswith("Gentile genitore/tutore,")
    assert "========" not in body(raw)
    assert len(body(raw)) < len(italian) + 40


def test_arabic_lines_start_right_to_left_values_are_isolated_and_the_link_is_bare() -> None:
    text = body(_compose(composer(), ["ar"]))
    arabic = text[text.index("======== العربية (ar) ========") - 1 :]
    assert text.startswith(RLM + "[ar] ")
    lines = [line for line in arabic.split("\n") if line.strip()]
    link = "https://registro.example.org/reset/abc"
    assert link in lines  # alone, untouched: clients still make it clickable
    for line in lines:
        assert line == link or line.startswith(RLM), line
    assert f"{FSI}S1234567A{PDI}" in arabic
    assert f"{FSI}Luca Rossi{PDI}" in arabic  # the full name is one value, one isolate
    assert f"Luca{PDI}" not in arabic
    assert f"{FSI}28/11/2026 11:00{PDI}" in arabic
    italian = text[: text.index(RLM + "======== العربية")]
    assert FSI not in italian
    assert RLM not in italian.split("\n", 1)[1]


def test_two_languages_on_one_shared_address_follow_the_italian_in_order() -> None:
    raw = _compose(composer(), ["ro", "ar", "ro", "it"])
    assert parsed(raw)["Content-Language"] == "it, ro, ar"


@pytest.mark.parametrize(
    "broken",
    [
        "{% if %}",  # does not load
        "{%- set subject = 'x' -%}{{ nonexistent.value }}",  # fails to render
        "{%- set subject = 'x' -%}{{ person.first_name | no_such_filter }}",
        "{%- set subject = 'x' -%}{{ 1 / 0 }}",
    ],
)
def test_a_broken_translation_falls_back_to_italian_only(tmp_path: Path, broken: str) -> None:
    school = _school(tmp_path, {"i18n/ro/link_student.txt.j2": broken})
    c = composer(school)
    raw = _compose(c, ["ro"])
    assert parsed(raw)["Content-Language"] == "it"
    text = body(raw)
    assert text.startswith("Gentile genitore/tutore,")
    assert "https://registro.example.org/reset/abc" in text
    assert "========" not in text
    # Another language in the same mail is unaffected.
    both = _compose(c, ["ro", "fr"])
    assert parsed(both)["Content-Language"] == "it, fr"


def test_a_broken_language_file_or_missing_language_falls_back_to_italian_only(
    tmp_path: Path,
) -> None:
    school = _school(tmp_path, {"i18n/ro/language.toml": "direction = 'sideways'"})
    c = composer(school)
    assert c.languages["ro"].problem is not None
    assert parsed(_compose(c, ["ro"]))["Content-Language"] == "it"
    assert parsed(_compose(composer(), ["xx"]))["Content-Language"] == "it"


def test_the_school_overrides_a_translation_and_its_review_note_and_adds_a_language(
    tmp_path: Path,
) -> None:
    own = _package_source("i18n/ro/link_student.txt.j2").replace(
        "Stimate părinte/tutore,", "Dragi părinți,"
    )
    school = _school(
        tmp_path,
        {
            "i18n/ro/link_student.txt.j2": own,
            "i18n/ro/language.toml": 'reviewed_by = "Ana Popescu, mediatrice"\n'
            "reviewed_on = 2026-11-20\n"
            '[text]\ncontact = "Sunați la 0123 456789."\n',
            "i18n/ur/language.toml": 'name = "Urdu"\nnative_name = "اردو"\ndirection = "rtl"\n'
            '[text]\nnotice = "اردو متن نیچے ہے۔"\ncontact = "رابطہ"\nsignature = "دفتر"\n',
            "i18n/ur/rate_limited.txt.j2": '{%- set subject = "درخواستیں - " ~ school_name -%}\n'
            "بہت زیادہ درخواستیں۔\n{{ contact }}\n",
        },
    )
    c = composer(school)
    ro = c.languages["ro"]
    assert (ro.origin, ro.reviewed, ro.reviewed_on) == ("package+school", True, "2026-11-20")
    assert ro.native_name == "Română"  # the package's keys stay
    text = body(_compose(c, ["ro"]))
    assert "Dragi părinți," in text and "Sunați la 0123 456789." in text
    assert c.translation_source("ro", "link_student") == "school"
    assert c.translation_source("ro", "link_adult") == "package"
    report = check_templates(c, TRANSLATED, ())
    assert report.errors == ()
    ur = next(s for s in report.languages if s.code == "ur")
    assert (ur.direction, ur.origin, ur.translated) == ("rtl", "school", ("rate_limited",))
    assert len(ur.missing) == len(TRANSLATED) - 1
    assert "ro" not in {f.language for f in report.warnings if f.message.startswith("unreviewed")}


def test_fill_link_keeps_content_language() -> None:
    raw = _compose(composer(), ["en"])
    assert parsed(raw)["Content-Language"] == "it, en"
    assert "expires on 28/11/2026 11:00." in body(raw)


def test_a_language_code_that_is_not_iso_639_1_is_refused(tmp_path: Path) -> None:
    school = _school(
        tmp_path, {"i18n/rom/language.toml": 'name = "x"', "i18n/it/language.toml": ""}
    )
    c = composer(school)
    assert c.languages["rom"].problem and c.languages["it"].problem
    report = check_templates(c, TRANSLATED, ())
    assert {f.language for f in report.errors if f.template is None} >= {"rom", "it"}
    assert all(f.level == ERROR for f in report.errors)


def test_a_mail_listing_several_students_is_checked_and_translated(tmp_path: Path) -> None:
    """The shape of the September mailing: a loop over `students` (a school's own mail)."""
    italian = (
        '{%- set subject = "Benvenuti - " ~ school_name -%}\n'
        "{% if students|length > 1 %}Per i Suoi figli:{% else %}Per lo studente:{% endif %}\n"
        "{% for s in students %}{{ s.first_name }} {{ s.username }}\n{{ s.link }}\n{% endfor %}"
        "{{ contact }}\n"
    )
    arabic = (
        '{%- set subject = "مرحبًا - " ~ school_name -%}\n'
        "{% if students|length > 1 %}لأبنائكم:{% else %}للتلميذ:{% endif %}\n"
        "{% for s in students %}{{ s.first_name }} {{ s.username }}\n{{ s.link }}\n{% endfor %}"
        "{{ contact }}\n"
    )
    school = _school(
        tmp_path,
        {"class_trip_notice.txt.j2": italian, "i18n/ar/class_trip_notice.txt.j2": arabic},
    )
    c = composer(school)
    report = check_templates(c, ("class_trip_notice",), ())
    assert report.errors == ()
    assert len(sample_cases(c, "class_trip_notice")) >= 2
    links = ["@@CREDMAIL_LINK:0a1b@@", "@@CREDMAIL_LINK:2c3d@@"]
    students = [
        {"first_name": "Luca", "username": "S1", "link": links[0]},
        {"first_name": "Anna", "username": "S2", "link": links[1]},
    ]
    mail = c.compose(
        "class_trip_notice", "x@example.org", {"students": students}, None, NOW, languages=["ar"]
    )
    lines = body(mail.raw).split("\n")
    assert lines.count(links[0]) == 2 and lines.count(links[1]) == 2  # bare, in both texts
    assert f"{RLM}{FSI}Anna{PDI} {FSI}S2{PDI}" in lines
