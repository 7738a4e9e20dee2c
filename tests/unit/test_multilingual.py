"""The plain-text shape of a bilingual reply (core.multilingual, pure)."""

from __future__ import annotations

from credmail.core.multilingual import (
    FSI,
    PDI,
    RLM,
    Section,
    bilingual_body,
    content_language,
    has_right_to_left,
    isolate,
    right_to_left_lines,
)


def test_isolate_wraps_inline_values_but_not_links_or_multiline_text() -> None:
    assert isolate("Mario Rossi") == f"{FSI}Mario Rossi{PDI}"
    assert isolate("https://r.example.org/reset/a.b") == "https://r.example.org/reset/a.b"
    assert isolate("@@CREDMAIL_LINK@@") == "@@CREDMAIL_LINK@@"
    assert isolate("@@CREDMAIL_LINK:0a1b@@") == "@@CREDMAIL_LINK:0a1b@@"  # a keyed link
    assert isolate("a\nb") == "a\nb"
    assert isolate("") == ""


def test_right_to_left_lines_mark_every_line_but_blank_ones_and_bare_links() -> None:
    text = "مرحبا Mario\n\nhttps://r.example.org/x\nS1234567A هو الرمز\n"
    assert right_to_left_lines(text) == (
        f"{RLM}مرحبا Mario\n\nhttps://r.example.org/x\n{RLM}S1234567A هو الرمز\n"
    )
    assert right_to_left_lines(right_to_left_lines(text)) == right_to_left_lines(text)
    assert has_right_to_left("مرحبا") and not has_right_to_left("Mario 12")


def test_no_section_leaves_the_italian_text_as_it_is() -> None:
    assert bilingual_body("Gentile utente,\n", []) == "Gentile utente,\n"
    assert content_language([]) == "it"


def test_sections_follow_the_italian_each_marked() -> None:
    ro = Section("ro", "Română", "Textul mai jos.", "Subiect", "Bună ziua,\n")
    ar = Section("ar", "العربية", "النص في الأسفل.", "الموضوع", "مرحبا\n", right_to_left=True)
    text = bilingual_body("Gentile utente,\n", [ro, ar])
    assert text.split("\n\n") == [
        f"[ro] Textul mai jos.\n{RLM}[ar] النص في الأسفل.",
        "======== Italiano (it) ========",
        "Gentile utente,",
        "======== Română (ro) ========",
        "Subiect",
        "Bună ziua,",
        f"{RLM}======== العربية (ar) ========",
        f"{RLM}الموضوع",
        f"{RLM}مرحبا\n",
    ]
    assert content_language([ro, ar]) == "it, ro, ar"
