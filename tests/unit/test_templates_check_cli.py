"""`credmail templates check`: languages, missing replies, unreviewed texts; exit 1 on a
missing key or a render failure, 0 with warnings. Needs no database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from credmail.entrypoints.cli import main
from tests.support.wiring import IDENTITY

PACKAGE = Path(__file__).parents[2] / "src" / "credmail"
REPLIES, PAGES = PACKAGE / "templates", PACKAGE / "web" / "templates"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in IDENTITY.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CREDMAIL_DATABASE__URL", f"sqlite:///{tmp_path / 'never.db'}")
    monkeypatch.delenv("CREDMAIL_CONFIG", raising=False)
    school = tmp_path / "templates"
    school.mkdir()
    monkeypatch.setenv("CREDMAIL_REPLIES__TEMPLATES_DIR", str(school))
    return school


def test_the_shipped_translations_pass_with_unreviewed_warnings(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["templates", "check"]) == 0
    out = capsys.readouterr().out
    assert "ar  Arabic / العربية  rtl  9/9 replies  7/7 pages  [package]  UNREVIEWED" in out
    assert "replies with translations: campaign_new_student, link_adult," in out
    assert (
        "Italian only (staff mail, or no person on file to choose a language): "
        "acknowledge_unknown, admin_alert, staff_digest"
    ) in out
    assert out.strip().endswith(
        "8 languages, 0 errors, 0 missing translations, 8 unreviewed languages"
    )
    assert not (env.parent / "never.db").exists()


def test_a_missing_key_fails_and_a_new_reply_is_listed_missing(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (env / "register_task_done.txt.j2").write_text(
        '{%- set subject = "Fatto - " ~ school_name -%}\nFatto, {{ person.first_name }}.\n'
    )
    assert main(["templates", "check"]) == 0
    out = capsys.readouterr().out
    assert "missing: register_task_done (sent in Italian only)" in out
    assert "8 languages, 0 errors, 8 missing translations" in out
    (env / "i18n" / "zh").mkdir(parents=True)
    (env / "i18n" / "zh" / "register_task_done.txt.j2").write_text(
        '{%- set subject = "完成 - " ~ school_name -%}\n完成。\n'
    )
    assert main(["templates", "check", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert {
        "level": "error",
        "language": "zh",
        "template": "register_task_done",
        "message": "missing key person",
    } in report["findings"]


def test_the_pages_are_checked_too(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["templates", "check", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pages"] == []  # every page in every shipped language renders
    (env / "i18n" / "fr").mkdir(parents=True)
    (env / "i18n" / "fr" / "reset_retry.html").write_text("<h2>{{ view.nothing.x }}</h2>")
    (env / "i18n" / "es").mkdir(parents=True)
    (env / "i18n" / "es" / "reset_confirm.html").write_text('{% set footer = "f" %}<h2>x</h2>')
    (env / "i18n" / "ur").mkdir(parents=True)
    (env / "i18n" / "ur" / "language.toml").write_text(
        'name = "Urdu"\nnative_name = "اردو"\ndirection = "rtl"\n'
        '[text]\nnotice = "نیچے"\ncontact = "رابطہ"\nsignature = "دفتر"\n'
    )
    assert main(["templates", "check"]) == 1
    out = capsys.readouterr().out
    assert "ERROR fr reset_retry.html: render failure" in out
    assert "ERROR es reset_confirm.html: missing key button" in out
    assert "missing page ur reset_confirm.html (shown in Italian only)" in out


def test_a_broken_partial_fails_the_check(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A school's own i18n/fr/next_steps.j2 without the macro the replies call."""
    (env / "i18n" / "fr").mkdir(parents=True)
    (env / "i18n" / "fr" / "next_steps.j2").write_text(
        "{%- macro button() -%}Confirmer{%- endmacro -%}\n"
        "{%- macro open_link() -%}Ouvrez ce lien :{%- endmacro -%}\n"
        "{%- macro after_confirm() -%}{{ backend }} {{ worklist_days }}"
        " {{ webhook_next_steps }}{%- endmacro -%}\n"
    )
    assert main(["templates", "check"]) == 1
    out = capsys.readouterr().out
    assert "ERROR fr next_steps.j2: missing macro unknown_code" in out
    assert "ERROR fr link_adult: render failure" in out  # the reply that calls it


def test_a_changed_italian_reply_and_page_are_flagged_then_rehashed(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the school rewords the Italian of a reply and of a page; its own English reply
    # was made from the old Italian
    old = (REPLIES / "link_adult.txt.j2").read_text("utf-8")
    (env / "link_adult.txt.j2").write_text(old + "\nOrari: lunedì 9-12.\n", "utf-8")
    page = (PAGES / "reset_done.html").read_text("utf-8")
    (env / "reset_done.html").write_text(page.replace("</", "\n</", 1), "utf-8")
    (env / "i18n" / "en").mkdir(parents=True)
    english = (REPLIES / "i18n" / "en" / "link_adult.txt.j2").read_text("utf-8")
    (env / "i18n" / "en" / "link_adult.txt.j2").write_text(english, "utf-8")

    assert main(["templates", "check"]) == 0  # warnings: the checker's exit 0
    out = capsys.readouterr().out
    assert (
        "WARNING en i18n/en/link_adult.txt.j2: the Italian text changed since this "
        "translation: review it, then run `credmail templates rehash en`"
    ) in out
    assert "WARNING fr i18n/fr/link_adult.txt.j2: the Italian text changed" in out
    assert "WARNING zh i18n/zh/reset_done.html: the Italian text changed" in out
    assert out.strip().endswith("8 unreviewed languages, 16 stale translations")
    assert main(["templates", "check", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    stale = {(item["language"], item["file"]) for item in report["stale"]}
    assert len(stale) == 16 and ("en", "i18n/en/link_adult.txt.j2") in stale

    # English reviewed against the new Italian: rehash writes the school's copies (the
    # page copied first, so that credmail's own file is not the one written)
    (env / "i18n" / "en" / "reset_done.html").write_text(
        (PAGES / "i18n" / "en" / "reset_done.html").read_text("utf-8"), "utf-8"
    )
    assert main(["templates", "rehash", "en"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines[:-1]) == [
        f"recorded the Italian in {env / 'i18n' / 'en' / 'link_adult.txt.j2'}",
        f"recorded the Italian in {env / 'i18n' / 'en' / 'reset_done.html'}",
    ]
    assert lines[-1] == "en: 2 translations updated"
    assert main(["templates", "check"]) == 0
    out = capsys.readouterr().out
    assert "WARNING en " not in out
    assert out.strip().endswith("14 stale translations")


def test_rehash_names_an_unknown_language_in_one_line(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["templates", "rehash", "xx"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("credmail: no translation set 'xx' (known: ar, en, es,")
    assert "Traceback" not in err
