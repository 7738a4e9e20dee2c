"""Every built-in reply ends with how to reach the secretariat, never with "do not reply",
and greets a known person by the name on file (issue 10.9)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from credmail.service.pacing import STAFF_TEMPLATES
from credmail.service.reply_templates import ReplyComposer

# The replies to families and staff on file (the school's own people's mail, the digest
# and the alerts, is not a reply: it says where to look instead).
TEMPLATES = sorted(
    p.name.removesuffix(".txt.j2")
    for p in (Path(__file__).parents[2] / "src" / "credmail" / "templates").glob("*.txt.j2")
    if p.name.removesuffix(".txt.j2") not in STAFF_TEMPLATES
)
CONTACT = "Per informazioni può rispondere a questo messaggio."
PERSON = SimpleNamespace(
    first_name="Giovanna",
    last_name="Esposito",
    full_name="Giovanna Esposito",
    sex=None,
    role="adult",
)
CONTEXT = {
    "person": PERSON,
    "student": PERSON,
    "username": "T3001",
    "link": "https://registro.example.org/reset/x",
    "expires_at": "28/11/2026 alle 11:00",
    "sent_at": "10:02",
    "note": "motivo",
    "message": "messaggio della segreteria",
    "students": [
        {
            "first_name": "Luca",
            "last_name": "Esposito",
            "full_name": "Luca Esposito",
            "sex": "M",
            "username": "S3001",
            "link": "https://x/1",
        }
    ],
    "front_desk_hours": "lunedì-venerdì 8:00-10:00",
    "request_address": "segreteria@example.org",
}


def composer() -> ReplyComposer:
    common = {"school_name": "Istituto Stanga", "signature": "La Segreteria", "contact": CONTACT}
    return ReplyComposer("segreteria@example.org", "Segreteria", common)


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_reply_gives_the_contact_and_never_says_do_not_reply(template: str) -> None:
    _, body = composer().render(template, CONTEXT)
    assert CONTACT in body
    assert "non risponda" not in body.lower()


def test_the_repeat_notice_greets_the_reader_on_file() -> None:
    _, body = composer().render("link_already_sent", {**CONTEXT, "reader": PERSON})
    assert body.startswith("Gentile Giovanna Esposito,")
    assert composer().render("link_already_sent", CONTEXT)[1].startswith("Gentile utente,")
