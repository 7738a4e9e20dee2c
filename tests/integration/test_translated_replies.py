"""A guardian whose directory record says `language = ro` asks for the student's
credentials: one reply, Italian first then Romanian, through real Dovecot and aiosmtpd,
on SQLite and PostgreSQL (issue 19). The language comes from the directory CSV, as the
secretariat sets it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from credmail.adapters.db.directory_import import import_records
from credmail.entrypoints.daemon import run_once
from credmail.samples import SAMPLES, directory_csv
from credmail.service.directory_csv import read_directory
from credmail.service.links import check_token
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import body_text, link_in, make_app, server_settings

pytestmark = pytest.mark.integration


def _with_languages(languages: dict[str, str]) -> bytes:
    """The sample directory with the optional `language` column filled in."""
    lines = directory_csv(date.today()).decode().splitlines()
    out = [lines[0] + ",language"]
    for line in lines[1:]:
        username = line.split(",")[1]
        out.append(f"{line},{languages.get(username, '')}")
    return ("\n".join(out) + "\n").encode()


def _request(name: str) -> bytes:
    return next(s for s in SAMPLES if s.name == name).to_bytes()


def test_a_romanian_guardian_gets_italian_then_romanian(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url))
    with app.uow() as uow:
        # The student has a language of their own: the guardian's counts for his mail.
        records = read_directory(_with_languages({"G1001": "ro", "S2001": "ar"}))
        import_records(uow.session, records, prune=False)
        uow.commit()
    dovecot.append(_request("student-one-child"))  # from mario.rossi@example.org (G1001)

    run_once(app)

    (reply,) = smtp.handler.parsed()
    assert reply["To"] == "mario.rossi@example.org"
    assert reply["Content-Language"] == "it, ro"
    assert reply["Subject"].startswith("Credenziali studente del Registro Elettronico")
    text = body_text(reply)
    italian = text.index("======== Italiano (it) ========")
    romanian = text.index("======== Română (ro) ========")
    # The reader (Mario Rossi, alone at the address) is greeted, never the child.
    assert italian < text.index("Gentile Mario Rossi,") < romanian
    assert romanian < text.index("Stimată/Stimate Mario Rossi,")  # no sex on file
    assert "pentru Luca Rossi" in text[romanian:]  # no sex on file: no elevul/eleva
    assert "العربية" not in text
    link = link_in(reply)
    assert text.count(link) == 2  # the same single-use link in both texts
    assert "S2001" in text[romanian:]
    expiry = text[romanian:].split("expiră la ", 1)[1].split(".", 1)[0]
    assert " alle " not in expiry and len(expiry) == len("28/11/2026 11:00")
    with app.uow() as uow:
        status = check_token(uow, link, app.clock())
    assert (status.username, status.purpose, status.valid) == ("S2001", "student_reset", True)


def test_an_adult_without_a_language_and_a_broken_translation_get_italian_only(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, tmp_path: Path
) -> None:
    school = tmp_path / "templates"
    (school / "i18n" / "ro").mkdir(parents=True)
    (school / "i18n" / "ro" / "link_adult.txt.j2").write_text("{{ no_such_value.x }}")
    settings = server_settings(dovecot, smtp, db_url, replies__templates_dir=str(school))
    app = make_app(settings)
    with app.uow() as uow:
        import_records(uow.session, read_directory(_with_languages({"G1001": "ro"})), prune=False)
        uow.commit()
    dovecot.append(_request("adult-guardian"))  # Mario Rossi: ro, but link_adult is broken
    dovecot.append(_request("student-named-child"))  # the Bianchi family: no language

    run_once(app)

    replies = {str(m["To"]): m for m in smtp.handler.parsed()}
    assert set(replies) == {"mario.rossi@example.org", "famiglia.bianchi@example.org"}
    for reply in replies.values():
        assert reply["Content-Language"] == "it"
        text = body_text(reply)
        assert text.startswith("Gentile ")
        assert "========" not in text
        link_in(reply)
