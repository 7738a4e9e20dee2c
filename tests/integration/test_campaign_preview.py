"""What `campaign plan` tells before anything goes, on real aiosmtpd, Dovecot, SQLite and
PostgreSQL: the preview of one mail is the mail a family receives (once its link and
expiry are filled in) and writes nothing; PEC addresses are skipped and reported as
skipped unless the school sends to PEC; usernames credmail made up are warned about, and
a start where every one is made up is refused without its flag."""

from __future__ import annotations

import csv
import json
import re
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from credmail.adapters.db.directory_import import import_records
from credmail.adapters.db.models import Base
from credmail.bootstrap import App
from credmail.core.campaign import Warn
from credmail.entrypoints.cli import main
from credmail.service.campaign_mail import PREVIEW_EXPIRY, PREVIEW_LINK
from credmail.service.desks import DeskError
from credmail.service.directory_csv import read_directory
from tests.integration.test_campaign import ACTOR, CODE, campaign_mails, run_until_done
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import body_text, make_app, server_env, server_settings, write_config

pytestmark = pytest.mark.integration

MINOR = date(date.today().year - 12, 3, 15).isoformat()
HEADER = "role,username,first_name,last_name,birth_date,emails,students,class,new,language\n"
# Two siblings whose guardians speak Arabic and Romanian on one address, one of them with
# a PEC box too; a family reachable only at a PEC box; a family with an ordinary address.
FAMILIES = HEADER + (
    f"student,S7000002,Amir,Haddad,{MINOR},,,1A,sì,\n"
    f"student,S7000003,Lina,Haddad,{MINOR},,,1B,sì,\n"
    "guardian,G7000002,Karim,Haddad,,haddad@example.org,S7000002;S7000003,,,ar\n"
    "guardian,G7000003,Elena,Haddad,,haddad@example.org;elena.haddad@pec.it,"
    "S7000002;S7000003,,,ro\n"
    f"student,S7000004,Luca,Bianchi,{MINOR},,,1C,sì,\n"
    "guardian,G7000004,Anna,Bianchi,,bianchi@legalmail.it,S7000004,,,\n"
    f"student,S7000005,Sara,Neri,{MINOR},,,1C,sì,\n"
    "guardian,G7000005,Paolo,Neri,,neri@example.org,S7000005,,,\n"
)
LINK = re.compile(r"https?://\S+?/reset/[0-9a-f]+\.[A-Za-z0-9_-]+")
ITALIAN_EXPIRY = re.compile(r"\d\d/\d\d/\d{4} alle \d\d:\d\d")
PLAIN_EXPIRY = re.compile(r"\d\d/\d\d/\d{4} \d\d:\d\d")


def directory(app: App, sheet: str) -> None:
    with app.uow() as uow:
        import_records(uow.session, read_directory(sheet.encode()), prune=False)
        uow.commit()


def row_counts(app: App) -> dict[str, int]:
    with app.uow(read_only=True) as uow:
        return {
            table.name: int(uow.session.scalar(select(func.count()).select_from(table)) or 0)
            for table in Base.metadata.sorted_tables
        }


def as_previewed(sent_body: str) -> str:
    """A received body with its real links and expiry put back as the preview shows them."""
    text = LINK.sub(PREVIEW_LINK, sent_body.replace("\r\n", "\n"))
    return PLAIN_EXPIRY.sub(PREVIEW_EXPIRY, ITALIAN_EXPIRY.sub(PREVIEW_EXPIRY, text))


def test_the_preview_is_the_mail_the_family_receives_and_writes_nothing(
    dovecot: Dovecot,
    smtp: SmtpServer,
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = server_settings(dovecot, smtp, db_url, school__front_desk_hours="lun-ven 8-10")
    app = make_app(settings, directory=False)
    directory(app, FAMILIES)
    before = row_counts(app)
    preview = app.desks.campaign.preview("Haddad@Example.org")
    assert preview.mail.students == ("S7000002", "S7000003") and not preview.skipped
    assert app.desks.campaign.preview("G7000002").mail == preview.mail  # a guardian's username
    assert app.desks.campaign.preview("S7000003").mail == preview.mail  # a student's
    assert app.desks.campaign.preview(None).mail.address == "haddad@example.org"  # the first
    with pytest.raises(DeskError, match="no mail of the plan goes to or is about 'X1'"):
        app.desks.campaign.preview("X1")
    assert row_counts(app) == before  # no campaign, no token, no outbox row, no audit

    config = write_config(tmp_path / "credmail.toml", server_env(dovecot, smtp, db_url))
    command = ["--config", str(config), "campaign", "plan", "settembre", "--preview", "G7000003"]
    assert main(command) == 0
    shown = capsys.readouterr().out
    assert "nothing stored or sent, no link created" in shown
    assert "To: haddad@example.org\n" in shown and "Content-Language: it, ar, ro\n" in shown
    code_and_link = (
        "CODICE STUDENTE (il nome utente): S7000002\nPer continuare, apra questo collegamento e "
        'prema il pulsante "Conferma":\n'
    )
    assert f"{code_and_link}{PREVIEW_LINK}\n" in shown
    assert main([*command[:-1], "bianchi@legalmail.it"]) == 0
    assert "this mail is NOT sent: PEC address" in capsys.readouterr().out
    assert row_counts(app) == before

    app.desks.campaign.start("settembre", None, ACTOR)
    run_until_done(app, "settembre")
    [sent] = [m for m in campaign_mails(smtp) if str(m["To"]) == "haddad@example.org"]
    assert len(CODE.findall(body_text(sent))) == 2  # two real links, filled in
    assert as_previewed(body_text(sent)) == preview.body().replace("\r\n", "\n")
    assert dict(preview.headers()) == {
        name: str(sent[name])
        for name in ("From", "To", "Subject", "Content-Language", "Auto-Submitted")
    }


def rows_name(rows: list[list[str]], student: str) -> str:
    return next(row[2] for row in rows if row[1] == student and row[2])


def test_pec_addresses_are_skipped_and_reported_unless_the_school_sends_to_them(
    dovecot: Dovecot,
    smtp: SmtpServer,
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url), directory=False)
    directory(app, FAMILIES)
    plan = app.desks.campaign.plan().plan
    assert [m.address for m in plan.skipped] == ["bianchi@legalmail.it", "elena.haddad@pec.it"]
    assert {(w.kind, w.subject, w.detail) for w in plan.warnings} == {
        (Warn.PEC_ADDRESS, "bianchi@legalmail.it", "G7000004"),
        (Warn.PEC_ADDRESS, "elena.haddad@pec.it", "G7000003"),
        (Warn.UNREACHABLE, "S7000004", "PEC addresses only"),
    }
    config = write_config(tmp_path / "credmail.toml", server_env(dovecot, smtp, db_url))
    sheet = tmp_path / "piano.csv"
    command = ["--config", str(config), "campaign", "plan", "settembre", "--csv", str(sheet)]
    assert main(command) == 0
    out = capsys.readouterr().out
    assert "not sent (PEC addresses): mails: 2; links: 3" in out
    assert "  PEC address, not mailed ([campaign] send_to_pec = false): elena.haddad@pec.it" in out
    with sheet.open(encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    skipped_rows = [row[:2] for row in rows if row[4].startswith("non inviata: indirizzo PEC")]
    assert skipped_rows == [
        ["bianchi@legalmail.it", "S7000004"],
        ["elena.haddad@pec.it", "S7000002"],
        ["elena.haddad@pec.it", "S7000003"],
    ]
    warnings = [row for row in rows[1:] if row[4] and not row[4].startswith("non inviata")]
    assert warnings == [  # each in its column, in Italian, the PEC links not listed twice
        [
            "",
            "S7000004",
            rows_name(rows, "S7000004"),
            "",
            "nessun indirizzo utilizzabile dei genitori/tutori: nessuna e-mail "
            "(solo indirizzi PEC)",
        ]
    ]

    assert main(["--config", str(config), "campaign", "start", "settembre"]) == 0
    assert "3 links to PEC addresses recorded as skipped" in capsys.readouterr().out
    run_until_done(app, "settembre")
    assert sorted(str(m["To"]) for m in campaign_mails(smtp)) == [
        "haddad@example.org",
        "neri@example.org",
    ]
    assert app.desks.campaign.status("settembre").counts == {"sent": 3, "skipped": 3}
    report = tmp_path / "stato.csv"
    command = ["--config", str(config), "campaign", "report", "settembre", "--csv", str(report)]
    assert main(command) == 0
    with report.open(encoding="utf-8-sig") as handle:
        states = {(row[0], row[1]): row[3] for row in list(csv.reader(handle, delimiter=";"))[1:]}
    assert states[("elena.haddad@pec.it", "S7000002")] == "non inviata (indirizzo PEC)"
    assert states[("haddad@example.org", "S7000002")] == "inviata"

    # the school decides to mail PEC boxes: the plan skips nothing, extend sends the three
    willing = make_app(
        server_settings(dovecot, smtp, db_url, campaign__send_to_pec="true"), directory=False
    )
    assert willing.desks.campaign.plan().plan.skipped == ()
    assert willing.desks.campaign.extend("settembre", ACTOR) == 3
    run_until_done(willing, "settembre")
    assert sorted(str(m["To"]) for m in campaign_mails(smtp)[2:]) == [
        "bianchi@legalmail.it",
        "elena.haddad@pec.it",
    ]
    assert willing.desks.campaign.status("settembre").counts == {"sent": 6}


def test_made_up_usernames_are_warned_about_and_a_start_with_only_those_is_refused(
    dovecot: Dovecot,
    smtp: SmtpServer,
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url), directory=False)
    directory(
        app,
        HEADER
        + f"student,alunno-5256302,Marco,Verdi,{MINOR},,,1A,sì,\n"
        + "guardian,tutore-cf-0a1b2c3d4e,Paola,Verdi,,verdi@example.org,alunno-5256302,,,\n"
        + f"student,alunno-cf-9f8e7d6c5b,Ada,Gialli,{MINOR},,,1A,sì,\n"
        + "guardian,tutore-1a2b3c,Ugo,Gialli,,gialli@example.org,alunno-cf-9f8e7d6c5b,,,\n",
    )
    config = write_config(tmp_path / "credmail.toml", server_env(dovecot, smtp, db_url))
    base = ["--config", str(config), "campaign"]
    sheet = tmp_path / "piano.csv"
    assert main([*base, "plan", "settembre", "--csv", str(sheet)]) == 0
    out = capsys.readouterr().out
    assert "warning: 2 of 2 students to mail have no register login code on file" in out
    assert "(e.g. alunno-5256302)" in out and "Codice utente/Username" in out
    assert "`campaign start` refuses this without --without-register-codes" in out
    with sheet.open(encoding="utf-8-sig") as handle:
        notes = [row[4] for row in csv.reader(handle, delimiter=";") if row[1] == "alunno-5256302"]
    assert notes == ["senza codice del registro: l'e-mail dice dove trovarlo"]
    assert main([*base, "plan", "settembre", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["made_up_codes"] == {
        "count": 2,
        "all": True,
        "students": ["alunno-5256302", "alunno-cf-9f8e7d6c5b"],
    }

    before = row_counts(app)
    assert main([*base, "start", "settembre"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("credmail: none of the 2 students this campaign would mail has")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert row_counts(app) == before  # refused: nothing stored

    assert main([*base, "start", "settembre", "--without-register-codes"]) == 0
    out = capsys.readouterr().out
    assert "campaign settembre stored: 2 links" in out
    assert "warning: 2 of 2 students to mail have no register login code" in out

    # one student with the register's code: a warning, and the start goes ahead
    directory(
        app,
        HEADER
        + f"student,S7000009,Rita,Blu,{MINOR},,,1A,sì,\n"
        + "guardian,G7000009,Ivo,Blu,,blu@example.org,S7000009,,,\n",
    )
    started = app.desks.campaign.start("recupero", None, ACTOR)
    assert started.created and started.made_up_codes == ("alunno-5256302", "alunno-cf-9f8e7d6c5b")
    assert started.students == 3
