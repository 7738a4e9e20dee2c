"""The CLI as the secretariat and the sysadmin use it, on real servers and databases."""

from __future__ import annotations

import getpass
import io
import json
import sys
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from credmail.adapters.db.models import PersonRow
from credmail.bootstrap import bootstrap
from credmail.config import load_settings
from credmail.entrypoints.cli import main
from credmail.samples import SAMPLES, directory_csv
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import IDENTITY, body_text, link_in, server_env, write_config

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(
    dovecot: Dovecot,
    smtp: SmtpServer,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    config = write_config(tmp_path / "credmail.toml", server_env(dovecot, smtp, db_url))
    monkeypatch.setenv("CREDMAIL_CONFIG", str(config))
    for name in list(__import__("os").environ):
        if name.startswith("CREDMAIL_") and name != "CREDMAIL_CONFIG":
            monkeypatch.delenv(name)
    return Cli(capsys, tmp_path, db_url)


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str], tmp_path: Path, db_url: str) -> None:
        self.capsys, self.tmp_path, self.db_url = capsys, tmp_path, db_url

    def __call__(self, *args: str, expect: int = 0, stdin: str | None = None) -> str:
        saved = sys.stdin
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        try:
            code = main(list(args))
        finally:
            sys.stdin = saved
        out, err = self.capsys.readouterr()
        assert code == expect, f"exit {code}: {err}"
        return out + err

    def people(self) -> int:
        env = {**IDENTITY, "CREDMAIL_DATABASE__URL": self.db_url}
        engine = bootstrap(load_settings(None, env)).engine
        with engine.connect() as conn:
            count = conn.scalar(select(func.count()).select_from(PersonRow)) or 0
        engine.dispose()
        return count

    def csv(self, text: bytes) -> str:
        path = self.tmp_path / "directory.csv"
        path.write_bytes(text)
        return str(path)


def sample(name: str) -> bytes:
    return next(s for s in SAMPLES if s.name == name).to_bytes()


def test_directory_import_upserts_prunes_and_dry_runs(cli: Cli) -> None:
    data = directory_csv(date.today())
    assert "added 11, updated 0, unchanged 0, removed 0" in cli(
        "directory", "import", cli.csv(data)
    )
    assert "added 0, updated 0, unchanged 11, removed 0" in cli(
        "directory", "import", cli.csv(data)
    )
    lines = data.decode().splitlines()
    changed = [line.replace("franco.gallo@", "f.gallo@") for line in lines if "T3001" not in line]
    path = cli.csv(("\n".join(changed) + "\n").encode())
    dry = cli("directory", "import", path, "--prune", "--dry-run")
    assert "dry run, nothing written: added 0, updated 1, unchanged 9, removed 1" in dry
    assert cli.people() == 11
    assert "updated 1, unchanged 9, removed 1" in cli("directory", "import", path, "--prune")
    assert cli.people() == 10


def test_prune_lists_who_goes_and_refuses_to_empty_the_directory(cli: Cli) -> None:
    data = directory_csv(date.today())
    cli("directory", "import", cli.csv(data))
    header_only = cli.csv(data.splitlines(keepends=True)[0])
    dry = cli("directory", "import", header_only, "--prune", "--dry-run", expect=1)
    assert "would remove: T3001 (teacher, Giovanna Esposito)" in dry
    assert dry.count("would remove: ") == 11
    assert "refusing to remove 11 of 11 people (100%)" in dry and "--force" in dry
    assert "removed 11" not in dry
    cli("directory", "import", header_only, "--prune", expect=1)
    assert cli.people() == 11
    out = cli("directory", "import", header_only, "--prune", "--force")
    assert "removed: G1001 (guardian, Mario Rossi)" in out and "removed 11" in out
    assert cli.people() == 0


def test_prune_share_is_configurable(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    data = directory_csv(date.today())
    cli("directory", "import", cli.csv(data))
    lines = data.decode().splitlines(keepends=True)
    kept = cli.csv(
        "".join(line for line in lines if "T3001" not in line and "G1005" not in line).encode()
    )
    assert "refusing to remove 2 of 11" not in cli(
        "directory", "import", kept, "--prune", "--dry-run"
    )
    monkeypatch.setenv("CREDMAIL_DIRECTORY__MAX_PRUNE_SHARE", "0.1")
    assert "refusing to remove 2 of 11 people (18%)" in cli(
        "directory", "import", kept, "--prune", expect=1
    )


def test_semicolon_export_and_bad_rows_name_their_line(cli: Cli) -> None:
    semicolons = (
        b"role;username;first_name;last_name;birth_date;emails;students;class\r\n"
        b'teacher;T9;Nuova;Docente;;"n.docente@example.org;nd@example.org";;\r\n'
    )
    out = cli("directory", "import", cli.csv(semicolons))
    assert "fields separated by semicolon (';')" in out and "added 1" in out
    shown = json.loads(cli("directory", "show", "T9", "--json"))
    assert shown["emails"] == ["n.docente@example.org", "nd@example.org"]
    bad = (
        b"role,username,first_name,last_name,birth_date,emails,students,class\n"
        b'teacher,T8,A,B,,"a@x.org, b@y.org",,\n'
        b"teacher,T7,C,D,,Nome <c@x.org>,,\n"
        b"student,S7,E,F,2999-01-01,,,\n"
    )
    out = cli("directory", "import", cli.csv(bad), expect=1)
    assert "fields separated by comma (',')" in out
    assert "line 2: emails: 'a@x.org, b@y.org' is not an address" in out
    assert "line 3: emails: 'Nome <c@x.org>' is not an address" in out
    assert "line 4: birth_date 2999-01-01 is in the future" in out
    assert cli.people() == 1


def test_an_italian_excel_export_and_every_problem_in_one_pass(cli: Cli) -> None:
    """Windows-1252 with semicolons, as Excel writes it in an Italian locale; a guardian
    linked to nobody on file is reported together with the row errors."""
    excel = (
        "role;username;first_name;last_name;birth_date;emails;students;class\r\n"
        "teacher;T6;Niccolò;Ferrè;;nf@example.org;;\r\n"
        "guardian;G6;Anna;Bò;;ab@example.org;S999;\r\n"
        "teacher;T5;C;D;;Nome <c@x.org>;;\r\n"
    ).encode("cp1252")
    out = cli("directory", "import", cli.csv(excel), expect=1)
    assert "fields separated by semicolon (';'), text in Windows-1252" in out
    assert "S999" in out and "line 4: emails: 'Nome <c@x.org>' is not an address" in out
    fixed = excel.replace(b";S999;", b";;").replace(b"Nome <c@x.org>", b"c@x.org")
    assert "added 3" in cli("directory", "import", cli.csv(fixed))
    assert json.loads(cli("directory", "show", "T6", "--json"))["first_name"] == "Niccolò"


def test_directory_list_and_show(cli: Cli) -> None:
    cli("directory", "import", cli.csv(directory_csv(date.today())))
    listed = json.loads(cli("directory", "list", "--json"))
    usernames = [person["username"] for person in listed]
    assert len(usernames) == 11 and usernames == sorted(usernames)
    text = cli("directory", "list")
    assert "T3001" in text and "g.esposito@example.org" in text and "11 people" in text
    student = json.loads(cli("directory", "show", "S2001", "--json"))
    assert (student["role"], student["class"], student["guardians"]) == ("student", "2B", ["G1001"])
    guardian = cli("directory", "show", "G1001")
    assert "mario.rossi@example.org" in guardian and "S2001" in guardian
    assert "no person with username NOPE" in cli("directory", "show", "NOPE", expect=1)


def test_bad_directory_file_writes_nothing(cli: Cli) -> None:
    cli("directory", "import", cli.csv(directory_csv(date.today())))
    bad = (
        b"role,username,first_name,last_name,birth_date,emails,students,class\n"
        b"teacher,T9,Nuovo,Docente,,nuovo@example.org,,\n"
        b"student,S9,Senza,Data,,,,\n"
        b"guardian,G9,Tutore,Nuovo,,tutore@example.org,NOPE,\n"
    )
    out = cli("directory", "import", cli.csv(bad), expect=1)
    assert "line 3: birth_date is required for students" in out
    assert "nothing imported" in out
    assert cli.people() == 11
    bad_link = bad.replace(b"student,S9,Senza,Data,,,,\n", b"")
    out = cli("directory", "import", cli.csv(bad_link), expect=1)
    assert "line 3: unknown student NOPE" in out
    assert cli.people() == 11


def test_review_list_show_approve(cli: Cli, dovecot: Dovecot, smtp: SmtpServer) -> None:
    cli("directory", "import", cli.csv(directory_csv(date.today())))
    dovecot.append(sample("shared-address-unnamed"))
    cli("run", "--once")

    (item,) = json.loads(cli("review", "list", "--json"))
    assert item["reasons"] == ["ambiguous_person"]
    assert (item["kind"], item["status"], item["sender"]) == (
        "adult",
        "pending",
        "famiglia.bianchi@example.org",
    )
    assert {"id", "created_at", "message_id"} <= set(item)
    shown = cli("review", "show", str(item["id"]))
    assert "G1002: Anna Bianchi" in shown and "G1003: Paolo Bianchi" in shown
    assert "l'indirizzo appartiene a più persone" in shown

    out = cli("review", "approve", str(item["id"]), "--person", "G1003", "--by", "rossi.segreteria")
    assert "approvata" in out
    cli("run", "--once")
    (reply,) = smtp.handler.parsed()
    assert reply["To"] == "famiglia.bianchi@example.org"
    assert "G1003" in body_text(reply)
    assert json.loads(cli("token", "check", stdin=link_in(reply)))["username"] == "G1003"
    assert json.loads(cli("review", "list", "--json")) == []
    shown = cli("review", "show", str(item["id"]))
    assert f"approvata da {getpass.getuser()} (terminale)" in shown
    assert "indicato con --by: rossi.segreteria" in shown
    again = cli("review", "approve", str(item["id"]), "--person", "G1003", expect=1)
    assert "già stata decisa" in again


def test_approve_never_uses_an_address_not_on_file(
    cli: Cli, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    cli("directory", "import", cli.csv(directory_csv(date.today())))
    dovecot.append(sample("unknown-sender"))
    cli("run", "--once")
    (item,) = json.loads(cli("review", "list", "--json"))
    out = cli(
        "review",
        "approve",
        str(item["id"]),
        "--person",
        "G1001",
        "--to",
        "sconosciuto@example.net",
        "--conferma",
        expect=1,
    )
    assert "non è un indirizzo registrato" in out
    cli("review", "approve", str(item["id"]), "--person", "G1001", "--conferma")
    cli("run", "--once")
    assert [rcpts for _f, rcpts, _raw in smtp.handler.messages] == [["mario.rossi@example.org"]]


def test_reject_with_notice_and_discard(cli: Cli, dovecot: Dovecot, smtp: SmtpServer) -> None:
    cli("directory", "import", cli.csv(directory_csv(date.today())))
    dovecot.append(sample("reply-prefix"))
    dovecot.append(sample("teacher-asks-student"))
    cli("run", "--once")
    first, second = json.loads(cli("review", "list", "--json"))
    cli("review", "reject", str(first["id"]), "--note", "Richiesta già evasa", "--notify")
    cli("review", "discard", str(second["id"]))
    cli("run", "--once")
    (notice,) = smtp.handler.parsed()
    assert notice["To"] == first["sender"]
    assert "Richiesta già evasa" in body_text(notice)
    assert json.loads(cli("review", "list", "--json")) == []


def test_outbox_list_and_token_check(cli: Cli, dovecot: Dovecot, smtp: SmtpServer) -> None:
    cli("directory", "import", cli.csv(directory_csv(date.today())))
    dovecot.append(sample("adult-guardian"))
    cli("run", "--once")
    (row,) = json.loads(cli("outbox", "list", "--json"))
    assert (row["status"], row["template"], row["attempts"]) == ("sent", "link_adult", 1)
    link = link_in(smtp.handler.parsed()[0])
    status = json.loads(cli("token", "check", stdin=link + "\n"))
    assert status == {**status, "username": "G1001", "purpose": "adult_reset", "valid": True}
    token = link.rsplit("/", 1)[1]
    assert json.loads(cli("token", "check", stdin=token))["username"] == "G1001"
    unknown = json.loads(cli("token", "check", stdin="not-a-token", expect=1))
    assert unknown["found"] is False


def test_failed_mail_can_be_retried(cli: Cli, dovecot: Dovecot, smtp: SmtpServer) -> None:
    cli("directory", "import", cli.csv(directory_csv(date.today())))
    dovecot.append(sample("adult-guardian"))
    smtp.handler.refuse_with = "554 5.7.1 rejected by policy"
    cli("run", "--once")
    (failed,) = json.loads(cli("outbox", "list", "--status", "failed", "--json"))
    assert failed["last_error"].startswith("554")
    assert "outbox message" in cli("outbox", "retry", "999", expect=1)

    smtp.handler.refuse_with = None
    cli("outbox", "retry", str(failed["id"]))
    cli("run", "--once")
    assert len(smtp.handler.messages) == 1
    (row,) = json.loads(cli("outbox", "list", "--json"))
    assert row["status"] == "sent"


def test_privacy_and_limits_commands(cli: Cli, dovecot: Dovecot, smtp: SmtpServer) -> None:
    cli("directory", "import", cli.csv(directory_csv(date.today())))
    dovecot.append(sample("unknown-sender"))
    cli("run", "--once")
    held = json.loads(cli("privacy", "show", "Sconosciuto@Example.NET"))
    assert held["address"] == "sconosciuto@example.net"
    assert [item["reasons"] for item in held["review_items"]] == [["unknown_sender"]]
    erased = json.loads(cli("privacy", "forget", "sconosciuto@example.net"))["erased"]
    assert erased["review_items"] == 1
    assert json.loads(cli("privacy", "show", "sconosciuto@example.net"))["review_items"] == []
    assert "not an address" in cli("privacy", "show", "nobody", expect=1)
    assert "closed" in cli("limits", "show")
    assert "was not tripped" in cli("limits", "reset")
