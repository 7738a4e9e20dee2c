"""What every translated reply says, rendered in every shipped language: the same next
steps as the Italian for each link backend and never the school's Italian texts; the
reader greeted, never the child; no made-up code; the student code's S; "sent
automatically" only when no person decided; the formal register; one term for the
register and the secretariat in Chinese and Arabic, glossed once; an Arabic full name is
one bidi isolate."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from credmail.core.multilingual import FSI, PDI
from credmail.core.values import Person, Role
from credmail.service.reply_templates import SCHOOL_TEXTS, ReplyComposer
from credmail.service.template_samples import MADE_UP, SAMPLE_VALUES, made_up

SHIPPED = ("ar", "en", "es", "fr", "ro", "sq", "uk", "zh")
BACKENDS = ("worklist", "ldap", "webhook")
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
WITH_LINK = ("campaign_new_student", "link_adult", "link_student")
ITALIAN_HOURS = "lunedì-venerdì 8:00-10:00 ORARIO"
ITALIAN_WEBHOOK = "Il sistema della scuola Le invierà le istruzioni. TESTO DELLA SCUOLA"
COMMON = {
    "school_name": "Istituto Stanga",
    "signature": "La Segreteria",
    "contact": "Scriva.",
    "front_desk_hours": ITALIAN_HOURS,
    "webhook_next_steps": ITALIAN_WEBHOOK,
}
GUARDIAN = Person("G1", Role.GUARDIAN, "Anna", "Bianchi", None, sex="F")
CHILD = Person("S1", Role.STUDENT, "Luca", "Bianchi", date(2012, 5, 4), sex="M")


def composer(templates_dir: Path | None = None) -> ReplyComposer:
    return ReplyComposer("segreteria@example.org", "Segreteria", COMMON, templates_dir)


def context(**values: Any) -> dict[str, Any]:
    return {**SAMPLE_VALUES, **values}


def partial(c: ReplyComposer, code: str, name: str, **values: Any) -> Any:
    """A translation's partial as render_in fills it: the school's texts are the language's."""
    language = c.languages[code]
    filled = {**c.common, **language.values, **values}
    filled |= {key: language.values.get(key, "") for key in SCHOOL_TEXTS}
    env = c.rtl_env if language.right_to_left else c.env
    return env.get_template(f"i18n/{code}/{name}").make_module(filled)


@pytest.mark.parametrize("code", SHIPPED)
@pytest.mark.parametrize("backend", BACKENDS)
def test_next_steps_say_something_for_every_backend_and_never_the_italian_text(
    code: str, backend: str
) -> None:
    c = composer()
    steps = partial(c, code, "next_steps.j2", backend=backend)
    for text in (
        steps.button(),
        steps.open_link(),
        steps.after_confirm(),
        steps.unknown_code(),
        steps.unknown_code(student=True),
    ):
        assert text.strip()
        assert "ORARIO" not in text and "TESTO DELLA SCUOLA" not in text
    for template in TRANSLATED:
        for values in (context(backend=backend), made_up(context(backend=backend))):
            _, body = c.render_in(code, template, values)
            assert "ORARIO" not in body and "TESTO DELLA SCUOLA" not in body, template


@pytest.mark.parametrize("code", SHIPPED)
def test_the_language_s_own_webhook_text_is_shown_when_it_has_one(
    code: str, tmp_path: Path
) -> None:
    school = tmp_path / "i18n" / code
    school.mkdir(parents=True)
    (school / "language.toml").write_text('[text]\nwebhook_next_steps = "OWN-WEBHOOK-TEXT"\n')
    c = composer(tmp_path)
    _, body = c.render_in(code, "link_adult", context(backend="webhook"))
    assert "OWN-WEBHOOK-TEXT" in body
    _, body = composer().render_in(code, "link_adult", context(backend="webhook"))
    assert "OWN-WEBHOOK-TEXT" not in body


@pytest.mark.parametrize("code", SHIPPED)
def test_the_student_code_s_first_letter_is_said_where_the_register_gave_it(code: str) -> None:
    c = composer()
    for backend in ("ldap", "webhook"):  # the worklist: the register's own mail gives it
        steps = partial(c, code, "next_steps.j2", backend=backend)
        assert re.search(r"(?<![A-Za-z])S(?![A-Za-z])", steps.unknown_code(student=True))
        assert not re.search(r"(?<![A-Za-z])S(?![A-Za-z])", steps.unknown_code())


@pytest.mark.parametrize("code", SHIPPED)
@pytest.mark.parametrize("template", TRANSLATED)
def test_no_translation_shows_a_made_up_code(code: str, template: str) -> None:
    c = composer()
    for backend in BACKENDS:
        subject, body = c.render_in(code, template, made_up(context(backend=backend)))
        assert MADE_UP not in subject + body


@pytest.mark.parametrize("code", SHIPPED)
def test_task_done_greets_the_reader_never_the_child(code: str) -> None:
    c = composer()
    values = context(person=CHILD, username="S1", reader=GUARDIAN, automatic=False)
    _, body = c.render_in(code, "task_done", values)
    greeting = body.split("\n", 1)[0]
    assert "Anna Bianchi" in greeting and "Luca" not in greeting
    assert "Luca Bianchi" in body  # the child is named in the text


@pytest.mark.parametrize("code", SHIPPED)
@pytest.mark.parametrize("template", TRANSLATED)
def test_the_greeting_is_the_reader_s_when_known(code: str, template: str) -> None:
    c = composer()
    person = GUARDIAN if template == "link_adult" else SAMPLE_VALUES["person"]
    _, body = c.render_in(code, template, context(reader=GUARDIAN, person=person))
    assert "Anna Bianchi" in body.split("\n", 1)[0], template


@pytest.mark.parametrize("code", SHIPPED)
@pytest.mark.parametrize("template", WITH_LINK)
def test_sent_automatically_only_when_no_person_decided(code: str, template: str) -> None:
    c = composer()
    sentence = str(partial(c, code, "names.j2", automatic=True).sent_by()).strip()
    assert sentence
    _, automatic = c.render_in(code, template, context(automatic=True))
    _, decided = c.render_in(code, template, context(automatic=False))
    assert sentence in automatic
    assert sentence not in decided


# Forms of address a formal text never uses (the audit found them in the minors' mail).
INFORMAL = {
    "ro": r"\b(tu|te|ta|tău|tale|ai|poți|autentifică-te)\b",
    "sq": r"\b(ti|jote|tënd|ke|hyr|ndrysho)\b",
    "uk": r"(?<![\w'])(ти|тебе|тобі|твій|твоя|твої|твого|увійди|зміни)(?![\w'])",
    "zh": r"你",
    "ar": r"(?<!\w)(عنوانك|لديك|فادخل|وغيّر|يمكنك)(?!\w)",
}


@pytest.mark.parametrize("code", sorted(INFORMAL))
@pytest.mark.parametrize("template", TRANSLATED)
def test_the_formal_register_everywhere(code: str, template: str) -> None:
    c = composer()
    for reader in (None, GUARDIAN):
        _, body = c.render_in(code, template, context(reader=reader))
        found = re.findall(INFORMAL[code], body, flags=re.IGNORECASE)
        assert not found, f"{template}: {found}"


GLOSSES = {
    "zh": ("电子登记册", ("电子登记系统", "登记册系统", "学校秘书处", "登记册运营方")),
    "ar": ("السجل الإلكتروني", ("السكرتارية", "مشغّل السجل")),
}


@pytest.mark.parametrize("code", sorted(GLOSSES))
@pytest.mark.parametrize("template", TRANSLATED)
def test_one_term_for_the_register_and_the_secretariat_each_glossed_once(
    code: str, template: str
) -> None:
    register, avoided = GLOSSES[code]
    c = composer()
    for backend in BACKENDS:
        _, body = c.render_in(code, template, context(backend=backend))
        assert not [word for word in avoided if word in body], template
        assert body.count('"segreteria"') == 1  # in the contact line: every mail has one
        if register in body:
            assert body.count('"Registro Elettronico"') == 1, (template, backend)
            assert f'{register}（"Registro Elettronico"）' in body or (
                f'{register} ("Registro Elettronico")' in body
            )


@pytest.mark.parametrize("code", SHIPPED)
@pytest.mark.parametrize("template", ("campaign_new_student", "minor_procedure", "near_miss_guide"))
def test_the_italian_subject_to_write_stays_italian(code: str, template: str) -> None:
    _, body = composer().render_in(code, template, context())
    assert "richiesta credenziali studente" in body


@pytest.mark.parametrize("template", ("link_student", "task_done", "campaign_new_student"))
def test_an_arabic_full_name_is_one_isolate(template: str) -> None:
    c = composer()
    values = context(student=CHILD, person=CHILD, reader=GUARDIAN)
    values["students"] = [{**SAMPLE_VALUES["students"][0], "full_name": "Luca Bianchi"}]
    _, body = c.render_in("ar", template, values)
    assert f"{FSI}Luca Bianchi{PDI}" in body
    assert f"Luca{PDI}" not in body and f"{FSI}Bianchi" not in body
    if template != "campaign_new_student":
        assert f"{FSI}Anna Bianchi{PDI}" in body.split("\n", 1)[0]


@pytest.mark.parametrize(
    ("code", "female", "male"),
    [
        ("es", "para la alumna", "para el alumno"),
        ("ro", "pentru eleva", "pentru elevul"),
        ("sq", "për nxënësen", "për nxënësin"),
        ("uk", "для учениці", "для учня"),
        ("ar", "بخصوص التلميذة", "بخصوص التلميذ"),
    ],
)
def test_the_student_is_named_by_the_register_s_sex_or_neutrally(
    code: str, female: str, male: str
) -> None:
    c = composer()

    def said(sex: str | None) -> str:
        student = Person("S1", Role.STUDENT, "Sofia", "Ferri", date(2012, 5, 4), sex=sex)
        return c.render_in(code, "link_student", context(student=student))[1]

    assert female in said("F") and male not in said("F").replace(female, "")
    assert male in said("M")
    neutral = said(None)
    assert female not in neutral and male not in neutral
