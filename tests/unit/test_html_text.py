"""What a reader never sees in an HTML body never names a child: the content of <style>,
<script>, <title> and comments is dropped, the body's own text still counts. One
HTML-to-text step serves the pipeline (core.parse) and the review desk."""

from __future__ import annotations

import time

import pytest

from credmail.core.html_text import visible_text
from credmail.core.parse import html_text, parse_message
from credmail.service.review import html_to_text
from tests.support import provider_mail as pm
from tests.unit.test_provider_shapes import chosen

# The family (FAMILY in provider_mail) has two children: Giulia (S2) and Nicolò (S3).
HIDDEN = {
    "style": "<style>.Giulia { color: red }</style>",
    "style with attributes": '<STYLE type="text/css" media="screen">p.Giulia{}</STYLE >',
    "script": '<script>var figlia = "Giulia";</script>',
    "script with a tag inside": "<script>document.write('<b>Giulia</b>')</script>",
    "title": "<title>Giulia</title>",
    "title in the head": "<head><title>Richiesta per Giulia</title></head>",
    "comment": "<!-- Giulia -->",
    "comment with tags": "<!-- <b>Giulia</b> -->",
}


@pytest.mark.parametrize("where", sorted(HIDDEN))
def test_a_name_the_reader_never_sees_does_not_count(where: str) -> None:
    hidden = HIDDEN[where]
    assert chosen(pm.html_only(f"<html>{hidden}<body><p>Buongiorno</p></body></html>")) is None
    shown = f"<html>{hidden}<body><p>Il collegamento per Nicol&ograve;</p></body></html>"
    assert chosen(pm.html_only(shown)) == "S3"
    alternative = pm.alternative("Buongiorno.\n", f"{hidden}<p>Per <i>Nicolò</i>.</p>")
    assert chosen(alternative) == "S3"
    assert "Giulia" not in parse_message(alternative).html_text


@pytest.mark.parametrize("where", sorted(HIDDEN))
def test_the_review_desk_shows_only_the_visible_text(where: str) -> None:
    assert html_to_text(f"{HIDDEN[where]}<p>Per   Nicolò</p><p></p><br>grazie") == (
        "Per Nicolò\ngrazie"
    )


def test_an_element_left_open_hides_the_rest() -> None:
    assert "Nicolò" not in visible_text("<p>Buongiorno</p><script>x = 1; <p>Nicolò</p>")
    assert "Nicolò" not in visible_text("<p>Buongiorno</p><!-- <p>Nicolò</p>")
    assert "Buongiorno" in visible_text("<p>Buongiorno</p><script>")


def test_text_around_hidden_elements_is_kept_apart() -> None:
    assert visible_text("Per<style>x</style>Nicolò").split() == ["Per", "Nicolò"]
    assert visible_text("<scripts>Nicolò</scripts> <titles>Anna</titles>").split() == [
        "Nicolò",
        "Anna",
    ]


def test_a_quotation_inside_a_comment_does_not_cut_the_text() -> None:
    text = html_text("<!-- <blockquote> --><p>Il collegamento per Nicolò</p>")
    assert "Nicolò" in text


@pytest.mark.parametrize(
    "body",
    [
        "<script>" * 40_000,
        "<style" * 40_000,
        "<!--" * 50_000,
        "<title>" + "</titl" * 30_000,
        "<script " + "a=b " * 40_000,
        ("<title>x</title>" * 10_000),
    ],
)
def test_hidden_elements_are_removed_in_linear_time(body: str) -> None:
    start = time.process_time()
    html_text(body)
    html_to_text(body)
    assert time.process_time() - start < 1.0
