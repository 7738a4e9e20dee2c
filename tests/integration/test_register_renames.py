"""The September trap, end to end on real aiosmtpd, Dovecot, SQLite and PostgreSQL: the
register's files imported without login codes (credmail makes usernames up), a campaign
mailed on them, then the files imported again WITH the codes. The same people are renamed,
never added again: their links, the campaign's pairs, an open register task and a link
already mailed all follow the new username."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from credmail.adapters.db.models import PersonRow
from credmail.bootstrap import App
from credmail.core.recipients import link_kind
from credmail.service.links import TokenLinkIssuer
from credmail.service.ports import AuditFilter
from credmail.service.review import Actor
from tests.integration.test_campaign import campaign_mails, run_until_done
from tests.integration.test_register_import import cli, config
from tests.support.register_files import Guardian, Pupil, classeviva_xls, guardians_xlsx
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import body_text, make_app, server_settings

pytestmark = pytest.mark.integration
__all__ = ["config"]  # the CLI's configuration, shared with the register import's tests

LUCA = Pupil(5256305, "Rossi", "Luca", date(2014, 5, 1), "RSSLCU14E01H501A", year=1)
MARTA = Pupil(5256306, "Rossi", "Marta", date(2014, 5, 1), "RSSMRT14E41H501D", year=1)
ADA = Pupil(5256307, "Neri", "Ada", date(2012, 5, 1), "NREADA12E41H501B", year=3, sex="F")
MARIO = Guardian(LUCA.tax_code, "mario.rossi@example.org", "PADRE", "ROSSI", "MARIO", "RSSMRA70")
MARIO2 = replace(MARIO, pupil_tax_code=MARTA.tax_code)
EVA = Guardian(ADA.tax_code, "eva.neri@example.org", "MADRE", "NERI", "EVA", "NREEVA70")
CODES = {
    "alunno-5256305": "S1234567A",
    "alunno-5256306": "S7654321B",
    "alunno-5256307": "S1111111C",
}
LINK = re.compile(r"https://\S+/reset/\S+")


def with_codes(tmp_path: Path) -> list[str]:
    """The same pupils and guardians, now with the register's login codes."""
    pupils = [replace(p, code=CODES[f"alunno-{p.pupil_id}"]) for p in (LUCA, MARTA, ADA)]
    mario, eva = replace(MARIO, code="G1234567A"), replace(EVA, code="G7654321B")
    students, guardians = tmp_path / "alunni-codici.xls", tmp_path / "tutori-codici.xlsx"
    students.write_bytes(classeviva_xls(pupils))
    guardians.write_bytes(
        guardians_xlsx([mario, replace(mario, pupil_tax_code=MARTA.tax_code), eva])
    )
    return [str(students), str(guardians)]


def test_an_import_with_login_codes_renames_the_made_up_people(
    config: Path,
    dovecot: Dovecot,
    smtp: SmtpServer,
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    students, guardians = tmp_path / "alunni.xls", tmp_path / "tutori.xlsx"
    students.write_bytes(classeviva_xls([LUCA, MARTA, ADA]))
    guardians.write_bytes(guardians_xlsx([MARIO, MARIO2, EVA]))
    assert "added 5" in cli(capsys, "directory", "import", str(students), str(guardians))
    app = make_app(server_settings(dovecot, smtp, db_url), directory=False)
    mario = next(p for p in app.desks.directory.people() if p.first_name == "Mario")
    app.desks.directory.set_language(mario.username, "ro", Actor("segreteria", "cli"))
    ids = person_ids(app)

    cli(capsys, "campaign", "start", "settembre", "--without-register-codes")
    run_until_done(app, "settembre")
    (mail,) = campaign_mails(smtp)  # Mario's address, one mail for Luca and Marta
    luca_link, marta_link = dict.fromkeys(LINK.findall(body_text(mail)))  # Italian, Romanian
    assert app.desks.reset.spend(luca_link).status == "done"  # an open register task
    assert [t.username for t in app.desks.tasks.listing()] == ["alunno-5256305"]

    codes = with_codes(tmp_path)
    dry = cli(capsys, "directory", "import", *codes, "--dry-run", "--csv", str(tmp_path / "r.csv"))
    assert "since the last import: added 0, renamed 5 (login codes now given)" in dry
    assert "renamed: S1234567A (student, Luca Rossi): alunno-5256305 -> S1234567A" in dry
    assert "dry run, nothing written: added 0, updated 0, unchanged 0, renamed 5" in dry
    with (tmp_path / "r.csv").open(encoding="utf-8-sig", newline="") as report:
        rows = list(csv.reader(report, delimiter=";"))
    assert ["count", "renamed", "", "", "", "5"] in rows
    assert ["change", "renamed", "", "", "S7654321B", "student Marta Rossi alunno-5256306 -> "
            "S7654321B"] in rows  # fmt: skip
    assert person_ids(app) == ids  # the dry run wrote nothing

    out = cli(capsys, "directory", "import", *codes)
    assert "added 0, updated 0, unchanged 0, renamed 5, removed 0" in out
    assert "marked inactive" not in out
    latest = app.desks.audit.listing(AuditFilter(action="directory.import"))[0][0]
    assert latest.detail is not None and "rinominate 5: " in latest.detail
    assert "alunno-5256305 -> S1234567A" in latest.detail and "Luca" not in latest.detail
    renamed = person_ids(app)
    assert sorted(renamed) == ["G1234567A", "G7654321B", "S1111111C", "S1234567A", "S7654321B"]
    assert sorted(renamed.values()) == sorted(ids.values())  # the same rows: nobody is new
    guardian = json.loads(cli(capsys, "directory", "show", "G1234567A", "--json"))
    assert guardian["students"] == ["S1234567A", "S7654321B"]
    assert guardian["emails"] == ["mario.rossi@example.org"]
    with app.uow(read_only=True) as uow:
        ada, mario_now = uow.directory.get("S1111111C"), uow.directory.get("G1234567A")
    assert ada is not None and ada.sex == "F" and not ada.new_student
    assert mario_now is not None and mario_now.language == "ro"

    plan = json.loads(cli(capsys, "campaign", "plan", "settembre", "--json"))
    assert (plan["new_students"], plan["links"], plan["made_up_codes"]["count"]) == (2, 2, 0)
    assert app.desks.campaign.extend("settembre", Actor("test", "cli")) == 0
    pairs = app.desks.campaign.report("settembre")
    assert sorted((p.student, p.guardians) for p in pairs) == [
        ("S1234567A", ("G1234567A",)),
        ("S7654321B", ("G1234567A",)),
    ]
    assert [t.username for t in app.desks.tasks.listing()] == ["S1234567A"]
    marta = app.desks.reset.look(marta_link)  # the link mailed in September still works
    assert marta.valid and marta.username == "S7654321B"


def person_ids(app: App) -> dict[str, int]:
    with app.uow(read_only=True) as uow:
        session = uow.session
        return {name: i for name, i in session.execute(select(PersonRow.username, PersonRow.id))}


def test_a_link_follows_the_rename_only_when_nothing_else_changed(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url), directory=False)
    desk, clerk = app.desks.directory, Actor("segreteria", "cli")
    first = [
        ("alunni.xls", classeviva_xls([LUCA, MARTA])),
        ("t.xlsx", guardians_xlsx([MARIO, MARIO2])),
    ]
    desk.import_files(first, clerk, dry_run=False)
    mario = next(p.username for p in desk.people() if p.first_name == "Mario")
    links = issue_links(
        app, {mario: MARIO.email, "alunno-5256305": MARIO.email, "alunno-5256306": MARIO.email}
    )

    corrected = replace(MARTA, born=date(2014, 6, 1), code=CODES["alunno-5256306"])
    pupils = [replace(LUCA, code=CODES["alunno-5256305"]), corrected]
    coded_mario = replace(MARIO, code="G1234567A")
    again = [
        ("alunni.xls", classeviva_xls(pupils)),
        (
            "t.xlsx",
            guardians_xlsx([coded_mario, replace(coded_mario, pupil_tax_code=MARTA.tax_code)]),
        ),
    ]
    done = desk.import_files(again, clerk, dry_run=False).result.summary
    assert (done.added, done.renamed, done.updated) == (0, 3, 0)

    guardian, luca, marta = (
        app.desks.reset.look(links[n]) for n in (mario, "alunno-5256305", "alunno-5256306")
    )
    assert guardian.valid and guardian.username == "G1234567A"  # the guardian's own link
    assert luca.valid and luca.username == "S1234567A"
    assert marta.state == "stale" and marta.username is None  # her birth date changed too


def issue_links(app: App, to: dict[str, str]) -> dict[str, str]:
    """A live link for each person (username -> address), as a request would issue it."""
    issuer = TokenLinkIssuer("https://registro.example.org", 60)
    now, found = app.clock(), {}
    with app.uow() as uow:
        for username, address in to.items():
            person = uow.directory.get(username)
            assert person is not None
            issued = issuer.issue(uow, person, link_kind(person, now.date())[0], address, now)
            assert issued.selector is not None
            minted = issuer.mint(uow, issued.selector, now)
            assert minted is not None
            found[username] = minted.url
        uow.commit()
    return found
