"""Every console page, rendered over real data (a real SQLite database filled through the
desks, plus entries written before details were worded), reads as Italian: no internal
code, no English day or month, no "+0000" or numeric date, plurals that agree, messages
that start with a capital."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from starlette.testclient import TestClient

from credmail.bootstrap import App
from credmail.service.ports import AuditEntry
from tests.unit.test_presentation import FAMILIES, review_reasons
from tests.web.conftest import CLI, ROOT, hold, register_task

pytestmark = pytest.mark.integration  # a real database (SQLite)

SHARED = "famiglia.bianchi@example.org"
DATE = "Mon, 07 Dec 2026 17:48:21 +0000"
# Codes that are also words on a page: header names (the labels say "campo From"), the
# staff roles (Italian words) and language codes (shown as "rumeno (ro)").
SHOWN_AS_THEY_ARE = {"mail headers", "staff roles", "languages"}
CODES = {c for family, codes, _ in FAMILIES if family not in SHOWN_AS_THEY_ARE for c in codes}
ENGLISH_DATES = re.compile(
    r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|"
    r"Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|January|February|March|April|"
    r"June|July|August|September|October|November|December)\b"
)
NUMERIC_DATES = re.compile(r"\b\d{1,2}/\d{1,2}/\d{4}\b|\b\d{4}-\d{2}-\d{2}\b|[+-]0000\b|\bUTC\b")
SNAKE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")
SINGULAR_AFTER_ONE = re.compile(
    r"\b1 (messaggi|richieste|voci|persone|giorni|anni|collegamenti|indirizzi|respinte)\b"
)
STANDALONE = {
    "h1",
    "h2",
    "h3",
    "label",
    "button",
    "legend",
    "li",
    "th",
    "caption",
    "title",
    "option",
}
VOID = {"br", "hr", "img", "input", "link", "meta"}


class Visible(HTMLParser):
    """The text a reader sees, and the texts that stand alone (headings, labels, buttons,
    list items, alerts) to check they start with a capital. Quoted text is left out: a
    mail's own text, a server's reply (marked lang="en") and a command (<code>)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.open: list[tuple[str, list[str]]] = []
        self.standalone: list[str] = []
        self.quoted: list[str] = []  # the tags of the open quoted elements

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = set((found.get("class") or "").split())
        if tag in VOID:
            return
        if self.quoted or tag in ("code", "pre") or found.get("lang", "it") != "it":
            self.quoted.append(tag)
            return
        roles = classes | {found.get("role") or ""}
        if tag in STANDALONE or roles & {"status", "alert", "problems", "done"}:
            self.open.append((tag, []))

    def handle_endtag(self, tag: str) -> None:
        if self.quoted:
            if self.quoted[-1] == tag:
                self.quoted.pop()
            return
        if self.open and self.open[-1][0] == tag:
            _, parts = self.open.pop()
            said = " ".join("".join(parts).split())
            if said:
                self.standalone.append(said)

    def handle_data(self, data: str) -> None:
        if self.quoted:
            return
        self.text.append(data)
        for _, parts in self.open:
            parts.append(data)


def problems(html: str) -> Iterator[str]:
    page = Visible()
    page.feed(html)
    text = " ".join(" ".join(page.text).split())
    for code in sorted(CODES):
        if re.search(rf"(?<![\w.@-]){re.escape(code)}(?![\w@-]|\.\w)", text):
            yield f"raw code {code!r}"
    for pattern, what in (
        (SNAKE, "a snake_case code"),
        (ENGLISH_DATES, "an English day or month"),
        (NUMERIC_DATES, "a numeric or UTC date"),
        (SINGULAR_AFTER_ONE, "a plural after 1"),
    ):
        for found in pattern.finditer(text):
            yield f"{what}: {found.group(0)!r} in …{text[found.start() - 40 : found.end() + 40]}…"
    for said in page.standalone:
        if said[:1].islower() and not re.match(r"\S+@", said):  # an address is as written
            yield f"starts lowercase: {said[:60]!r}"


def a_school_day(app: App) -> dict[str, int]:
    """Requests of every kind held, decided and not; tasks; mail in every state; an
    audit log with entries from before details were worded; a paused delivery."""
    every = tuple(sorted(review_reasons()))

    def held(sender: str, kind: str, *reasons: str) -> int:
        return hold(app, sender, kind, reasons, Date=DATE)  # the mail's Date is shown

    ids = {
        "every_reason": held("g.esposito@example.org", "adult", *every),
        "student": held(SHARED, "student", "ambiguous_student"),
        "adult_student": held("elena.neri@example.org", "student", "adult_student"),
        "unknown": held(SHARED, "unknown", "undecided"),
        "minor": held("sara.verdi@studenti.example.org", "student", "not_guardian"),
    }
    approved = held(SHARED, "student", "ambiguous_student")
    app.review.approve(approved, "S2002", CLI, SHARED)
    rejected = held("g.esposito@example.org", "adult", "unknown_sender")
    app.review.reject(rejected, "documento illeggibile", True, CLI)
    discarded = held("franco.gallo@example.org", "adult", "spam_flagged")
    app.review.discard(discarded, CLI, note="pubblicità")
    ids |= {"approved": approved, "rejected": rejected, "discarded": discarded}
    done = register_task(app, "sel-done")
    app.desks.tasks.done(done, CLI, "reinviate", "Controlli la posta indesiderata.")
    ids["open_task"] = register_task(app, "sel-open")
    app.desks.directory.set_language("G1002", "ro", CLI)
    now = app.clock()
    lines = app.desks.outbox.listing()
    with app.uow() as uow:
        uow.outbox.mark_sent(lines[0].id, now)
        uow.outbox.mark_failed(lines[1].id, "550 5.1.1 mailbox unavailable")
        bounced = uow.outbox.get(lines[2].id)
        assert bounced is not None
        uow.outbox.mark_bounced([bounced.message_id])
        uow.outbox.pause(now, "SMTPAuthenticationError: 535 5.7.8 authentication failed")
        uow.breaker.trip(now, "global limit")
        uow.checkpoints.set("INBOX", 1, 0, now - timedelta(hours=2))
        for action, detail in (
            ("review.approved", "link_student per S2345679C"),
            ("review.rejected", "review_rejected; nota: documento illeggibile"),
            ("task.done", "inviate oggi"),
        ):
            uow.audit.add(AuditEntry(now, "olga", "web", action, "richiesta 99", detail))
        uow.commit()
    return ids


def pages(ids: dict[str, int]) -> list[str]:
    items = [f"/revisione/{i}" for key, i in ids.items() if key != "open_task"]
    return [
        "/",
        "/revisione",
        *items,
        f"/revisione/{ids['student']}/eccezione?persona=G1002",
        f"/revisione/{ids['adult_student']}/eccezione?persona=S2005",
        "/registro",
        "/registro?tutte=si",
        "/rubrica?q=bianchi",
        "/rubrica/persona/G1002",
        "/rubrica/persona/S2002",
        "/rubrica/importa",
        "/posta",
        *(f"/posta?stato={state}" for state in ("pending", "sent", "failed", "bounced")),
        "/attivita",
        "/personale",
    ]


def test_every_console_page_reads_as_italian(
    console_app: App, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    ids = a_school_day(console_app)
    found: dict[str, list[str]] = {}
    for path in pages(ids):
        answer = client.get(ROOT + path)
        assert answer.status_code == 200, (path, answer.text[:300])
        found[path] = list(problems(answer.text))
    posts = {
        "task preview": (f"/registro/{ids['open_task']}/fatto", {"messaggio": "Tutto a posto."}),
        "a refusal": (f"/revisione/{ids['student']}/approva", {"persona": "NESSUNO"}),
        "a race lost": (f"/revisione/{ids['approved']}/archivia", {}),
        "a done message": (f"/revisione/{ids['minor']}/archivia", {}),
    }
    for name, (path, data) in posts.items():
        answer = client.post(ROOT + path, data={"csrf_token": csrf, **data}, follow_redirects=True)
        assert answer.status_code in (200, 409), (name, answer.text[:300])
        found[name] = list(problems(answer.text))
    report = [f"{path}: {problem}" for path, said in found.items() for problem in said]
    assert report == [], "\n".join(report)


def test_the_check_finds_what_it_looks_for() -> None:
    """The scan is not vacuous: each kind of problem on a page is reported."""
    bad = (
        "<html><body><h1>richiesta</h1><p>Tipo: task_done; review_rejected</p>"
        "<p>Data: Mon, 07 Dec 2026 17:48:21 +0000</p><p>1 messaggi, stato pending</p>"
        "</body></html>"
    )
    said = "\n".join(problems(bad))
    for expected in (
        "'task_done'",
        "'pending'",
        "English day",
        "numeric or UTC",
        "plural",
        "starts lowercase",
    ):
        assert expected in said, expected
