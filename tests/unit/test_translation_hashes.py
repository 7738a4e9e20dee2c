"""Translations record the Italian they translate (its sha256, first line): `templates check`
warns when the Italian has changed since (tests/unit/test_templates_check_cli.py), `templates
rehash LANG` records it again."""

from __future__ import annotations

from pathlib import Path

import pytest

from credmail.service.translation_hashes import digest, recorded, stamped

PACKAGE = Path(__file__).parents[2] / "src" / "credmail"
REPLIES, PAGES = PACKAGE / "templates", PACKAGE / "web" / "templates"


@pytest.mark.parametrize(("root", "pattern"), [(REPLIES, "i18n/*/*.j2"), (PAGES, "i18n/*/*.html")])
def test_every_shipped_translation_records_todays_italian(root: Path, pattern: str) -> None:
    translations = sorted(root.glob(pattern))
    assert len(translations) >= 8 * 7
    for path in translations:
        italian = (root / path.name).read_text("utf-8")
        # after a reviewed change or a new translation: scripts/translations-rehash
        assert recorded(path.read_text("utf-8")) == digest(italian), path


def test_the_record_prints_nothing_and_replaces_an_older_one() -> None:
    again = stamped("nuovo", stamped("vecchio", "{%- set subject = 'x' -%}\nCiao\n"))
    assert again.count("it-sha256") == 1 and recorded(again) == digest("nuovo")
    assert recorded("Ciao\n") is None
