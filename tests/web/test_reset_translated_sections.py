"""The reset page's translated sections in every shipped language, rendered by the pages
the web app builds from the settings: the configured password minimum, each password
problem beside the Italian one, never the school's Italian texts nor a made-up code, no
thanks by name, the right subject to write, an Arabic name isolated whole."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from credmail.config import load_settings
from credmail.core.recipients import PURPOSE_ADULT, PURPOSE_STUDENT
from credmail.service.desks.reset import ResetView
from credmail.service.link_backends import BackendKind
from credmail.service.password_policy import (
    BOTH_FIELDS,
    COMMON,
    DIRECTORY_REFUSED,
    HAS_NAME,
    HAS_USERNAME,
    MISMATCH,
    PROBLEM_CODES,
    SPACES,
    TOO_LONG,
    TOO_SHORT,
    WEAK,
    Problem,
)
from credmail.service.ports import TokenState
from credmail.web.app import make_pages
from credmail.web.pages import PROBLEMS_WITH_N, Pages, check_pages
from tests.web.conftest import web_env

SHIPPED = ("ar", "en", "es", "fr", "ro", "sq", "uk", "zh")
WHEN = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
ITALIAN_STEPS = "Il sistema della scuola Le scriverà. TESTO DELLA SCUOLA"
SECTION = re.compile(r'<section class="translation"[^>]*>(.*?)</section>', re.DOTALL)
ALSO = re.compile(r'<span class="also" lang="([a-z]+)" dir="(?:ltr|rtl)">(.*?)</span>')
EVERY_PROBLEM = (
    Problem(TOO_SHORT, "too_short", 14),
    Problem(TOO_LONG, "too_long", 128),
    Problem(SPACES, "spaces"),
    Problem(HAS_USERNAME, "has_username"),
    Problem(HAS_NAME, "has_name"),
    Problem(COMMON, "common"),
    Problem(WEAK, "weak"),
    Problem(BOTH_FIELDS, "both_fields"),
    Problem(MISMATCH, "mismatch"),
    Problem(DIRECTORY_REFUSED, "directory_refused"),
)


def pages(sqlite_url: str, **settings: str) -> Pages:
    return make_pages(load_settings(None, environ=web_env(sqlite_url, **settings)), ZoneInfo("UTC"))


@pytest.fixture
def ldap_pages(sqlite_url: str) -> Pages:
    return pages(
        sqlite_url,
        links__backend="ldap",
        ldap__url="ldap://127.0.0.1:1",
        ldap__bind_dn="cn=credmail,dc=example,dc=org",
        ldap__bind_password="x" * 20,
        ldap__base_dn="ou=people,dc=example,dc=org",
        ldap__password_min_length="14",
    )


@pytest.fixture
def webhook_pages(sqlite_url: str) -> Pages:
    return pages(
        sqlite_url,
        links__backend="webhook",
        webhook__url="http://127.0.0.1:9/hook",
        webhook__secret="s" * 40,
        webhook__next_steps=ITALIAN_STEPS,
        school__front_desk_hours="lunedì-venerdì 8:00-10:00 ORARIO",
    )


def view(kind: BackendKind, **values: object) -> ResetView:
    defaults: dict[str, object] = {
        "username": "G1234567L",
        "name": "Mario Rossi",
        "purpose": PURPOSE_ADULT,
        "expires_at": WHEN,
    }
    return ResetView(TokenState.VALID, kind, kind is BackendKind.LDAP, **{**defaults, **values})  # type: ignore[arg-type]


def render(p: Pages, name: str, code: str, **context: Any) -> tuple[str, str]:
    """(the whole page, the translated section alone)."""
    values: dict[str, Any] = {"problems": (), "csrf_token": "t", **context}
    html = bytes(p.render(name, lang=code, **values).body).decode()
    found = SECTION.search(html)
    assert found, f"no {code} section"
    return html, found.group(1)


def test_every_problem_has_a_translation_in_the_package() -> None:
    """The sample list above is the policy's whole list: a new code needs its test."""
    assert tuple(p.code for p in EVERY_PROBLEM) == PROBLEM_CODES
    with_n = tuple(p.code for p in EVERY_PROBLEM if p.n is not None)
    assert with_n == PROBLEMS_WITH_N  # the pages check wants {n} in exactly these


@pytest.mark.parametrize("code", SHIPPED)
def test_password_help_shows_the_configured_minimum(ldap_pages: Pages, code: str) -> None:
    html, _ = render(ldap_pages, "reset_confirm.html", code, view=view(BackendKind.LDAP))
    assert "Almeno 14 caratteri" in html
    lang, text = ALSO.findall(html.split('id="password-help"')[1].split("</p>")[0])[0]
    assert lang == code and "14" in text and "12" not in text


@pytest.mark.parametrize("code", SHIPPED)
def test_each_password_problem_is_shown_beside_the_italian(ldap_pages: Pages, code: str) -> None:
    html, _ = render(
        ldap_pages, "reset_confirm.html", code, view=view(BackendKind.LDAP), problems=EVERY_PROBLEM
    )
    items = re.findall(r"<li>(.*?)</li>", html.split('class="problems"')[1].split("</ul>")[0])
    assert len(items) == len(PROBLEM_CODES)
    for problem, item in zip(EVERY_PROBLEM, items, strict=True):
        assert item.startswith(str(problem).replace("'", "&#39;")), item
        translated = ALSO.findall(item)
        assert translated and translated[0][0] == code, f"{problem.code}: no {code} text"
        if problem.code in ("too_short", "too_long"):
            assert str(problem.n) in translated[0][1]


@pytest.mark.parametrize("code", SHIPPED)
@pytest.mark.parametrize("name", ("reset_confirm.html", "reset_done.html"))
def test_the_school_s_italian_texts_stay_out_of_the_translation(
    webhook_pages: Pages, code: str, name: str
) -> None:
    html, section = render(webhook_pages, name, code, view=view(BackendKind.WEBHOOK))
    assert "TESTO DELLA SCUOLA" in html.split('<section class="translation"')[0]
    assert "TESTO DELLA SCUOLA" not in section and "ORARIO" not in section
    assert section.strip()


@pytest.mark.parametrize("code", SHIPPED)
@pytest.mark.parametrize("kind", list(BackendKind))
def test_the_done_page_thanks_nobody_by_name_and_hides_a_made_up_code(
    sqlite_url: str, code: str, kind: BackendKind
) -> None:
    p = pages(sqlite_url)
    student = view(kind, name="Luca Rossi", username="alunno-5256302", purpose=PURPOSE_STUDENT)
    for name in ("reset_confirm.html", "reset_done.html"):
        _, section = render(p, name, code, view=student)
        assert "alunno-5256302" not in section
        if name == "reset_done.html":
            assert "Luca" not in section


@pytest.mark.parametrize("code", SHIPPED)
def test_the_invalid_page_asks_for_the_subject_of_the_link_s_kind(
    sqlite_url: str, code: str
) -> None:
    p = pages(sqlite_url)
    for purpose, subject in (
        (PURPOSE_STUDENT, "richiesta credenziali studente"),
        (PURPOSE_ADULT, "richiesta credenziali"),
    ):
        expired = ResetView(TokenState.EXPIRED, BackendKind.WORKLIST, False, purpose=purpose)
        _, section = render(p, "reset_invalid.html", code, view=expired)
        asked = re.findall(r'<bdi lang="it"><strong>(.*?)</strong></bdi>', section)
        assert asked == [subject]


def test_the_arabic_section_isolates_a_full_name_whole(sqlite_url: str) -> None:
    p = pages(sqlite_url)
    for purpose in (PURPOSE_ADULT, PURPOSE_STUDENT):
        _, section = render(
            p, "reset_confirm.html", "ar", view=view(BackendKind.WORKLIST, purpose=purpose, sex="F")
        )
        assert (
            "<bdi>Mario Rossi</bdi>" in section
            or "<bdi><strong>Mario Rossi</strong></bdi>" in section
        )


def test_the_pages_check_finds_the_mistakes_the_audit_found(
    tmp_path: Path, sqlite_url: str
) -> None:
    """A hard-coded minimum, a problem missing or without its number, an Italian partial
    imported: each an error of `credmail templates check`."""
    school = tmp_path / "templates" / "i18n"
    (school / "es").mkdir(parents=True)
    (school / "fr").mkdir()
    p = pages(sqlite_url)
    assert p.env.loader is not None
    spanish = p.env.loader.get_source(p.env, "i18n/es/reset_confirm.html")[0]
    spanish = re.sub(
        r"{% set password_help = .*? %}",
        '{% set password_help = "Al menos 12 caracteres." %}',
        spanish,
    )
    spanish = spanish.replace("{% set problem_weak =", "{% set _unused =")
    spanish = spanish.replace("al menos {n} caracteres", "al menos 12 caracteres")
    (school / "es" / "reset_confirm.html").write_text(spanish)
    (school / "fr" / "reset_done.html").write_text(
        '{% from "next_steps.j2" import after_confirm with context %}'
        '{% set footer = "f" %}<p>{{ after_confirm() }}</p>'
    )
    found = {
        (code, page, message)
        for level, code, page, message in check_pages(
            pages(sqlite_url, replies__templates_dir=str(tmp_path / "templates"))
        )
        if level == "error"
    }
    assert ("es", "reset_confirm.html", "missing key problem_weak") in found
    assert ("es", "reset_confirm.html", "problem_too_short must say the number as {n}") in found
    assert (
        "es",
        "reset_confirm.html",
        "password_help must show {{ password_min_length }}",
    ) in found
    assert any(c == "fr" and m.startswith("imports next_steps.j2") for c, _, m in found)
    assert check_pages(pages(sqlite_url)) == []
