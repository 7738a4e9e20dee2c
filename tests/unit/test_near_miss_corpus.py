"""The near-miss corpus in `guide` mode: precision (an ordinary mail answered is a
complaint) and recall, overall, on the held-out part and per language."""

from __future__ import annotations

import pytest

from tests.support.near_miss_corpus import LANGUAGES, load_corpus, measure

MAILS = load_corpus()
REPORT = measure(MAILS)


def test_corpus_is_large_and_covers_every_language() -> None:
    assert len(MAILS) >= 300
    assert len({mail.id for mail in MAILS}) == len(MAILS)
    for lang in LANGUAGES:
        mine = [mail for mail in MAILS if mail.lang == lang]
        assert any(m.near_miss for m in mine) and not all(m.near_miss for m in mine), lang
    assert {mail.part for mail in MAILS} == {"holdout", "late", "dev"}


def test_precision_and_recall_in_guide_mode() -> None:
    total = REPORT.score()
    assert total.precision >= 0.99, REPORT.wrong
    assert total.recall >= 0.85, REPORT.wrong


def test_held_out_part_alone() -> None:
    held = REPORT.score("holdout")
    assert held.tp + held.fn >= 60
    assert held.precision >= 0.99, REPORT.wrong
    assert held.recall >= 0.85, REPORT.wrong


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_language_is_answered(lang: str) -> None:
    score = REPORT.score(lang=lang)
    assert score.precision >= 0.99, [w for w in REPORT.wrong if w[0].startswith(lang)]
    assert score.recall >= 0.85, [w for w in REPORT.wrong if w[0].startswith(lang)]


def test_every_decision_is_named_by_a_rule() -> None:
    assert "" not in REPORT.rules
    assert REPORT.rules["credentials_in_subject"] > 0
    assert REPORT.rules["register_use"] > 0  # the ordinary mail of the same words
