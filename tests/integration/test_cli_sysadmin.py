"""The sysadmin's first day with the CLI, on real servers: a port in use, an outbox listing
by status, logs kept off a command's output, reports on standard output (what the sudo
wrapper needs), and a school's schema that does not exist yet."""

from __future__ import annotations

import csv
import io
import json
import socket
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from credmail.entrypoints.cli import main
from credmail.samples import directory_csv
from tests.conftest import PG_URL
from tests.integration import test_cli
from tests.integration.test_cli import Cli, sample
from tests.support.register_files import Pupil, classeviva_xls
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import IDENTITY

pytestmark = pytest.mark.integration
cli = test_cli.cli  # the same fixture: the CLI on real servers and databases


def split(cli: Cli, *args: str, expect: int = 0) -> tuple[str, str]:
    """A command's standard output and standard error, apart."""
    code = main(list(args))
    out, err = cli.capsys.readouterr()
    assert code == expect, f"exit {code}: {err}"
    return out, err


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another program listens on."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[1]


def test_web_on_a_port_in_use_names_the_setting(
    cli: Cli, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli("db", "upgrade")
    listen = f"127.0.0.1:{taken_port}"
    out, err = split(cli, "web", "--listen", listen, expect=1)
    assert out == ""
    assert err == f"credmail: cannot listen on {listen}: Address already in use; check --listen\n"
    monkeypatch.setenv("CREDMAIL_WEB__LISTEN", listen)
    _, err = split(cli, "web", expect=1)
    assert err.endswith("Address already in use; check web.listen\n")
    assert len(err.splitlines()) == 1


def test_outbox_list_by_status_says_what_the_outbox_holds(
    cli: Cli, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    cli("db", "upgrade")
    assert cli("outbox", "list", "--status", "pending").strip() == "outbox is empty"
    cli("directory", "import", cli.csv(directory_csv(date.today())))
    dovecot.append(sample("adult-guardian"))
    cli("run", "--once")
    out = cli("outbox", "list", "--status", "pending")
    assert out.strip() == "no pending mail in the outbox (1 sent)"


def test_interactive_commands_log_warnings_only_unless_verbose(cli: Cli) -> None:
    cli("db", "upgrade")
    out, err = split(cli, "backlog", "list")
    assert "imap.connected" not in out + err
    assert out == "0 skipped requests waiting in the watched folder\n"
    out, err = split(cli, "-v", "backlog", "list")
    assert "imap.connected" in err and "imap.connected" not in out
    _, err = split(cli, "run", "--once")  # the daemon's command logs at logging.level
    assert "imap.connected" in err


def rows(out: str) -> list[list[str]]:
    assert out.startswith("\ufeff")  # UTF-8 with BOM, as Excel opens it
    return list(csv.reader(io.StringIO(out[1:]), delimiter=";"))


def test_reports_go_to_standard_output_with_csv_dash(cli: Cli, tmp_path: Path) -> None:
    export = tmp_path / "RMII0063_AC_2025-26.xls"
    pupil = Pupil(5256305, "Rossi", "Luca", date(2012, 5, 1), "RSSLCU12E01H501A", year=1)
    export.write_bytes(classeviva_xls([pupil]))
    out, err = split(cli, "directory", "import", str(export), "--dry-run", "--csv", "-")
    assert rows(out)[0] == ["kind", "code", "file", "line", "username", "detail"]
    assert "report written to standard output" in err and "dry run, nothing written" in err
    assert not (tmp_path / "-").exists()

    cli("directory", "import", cli.csv(directory_csv(date.today())))
    out, err = split(cli, "campaign", "plan", "settembre", "--csv", "-")
    assert rows(out)[0] == ["indirizzo", "studente", "nome", "genitori/tutori", "avviso"]
    assert "plan written to standard output" in err
    cli("campaign", "start", "settembre")
    out, err = split(cli, "campaign", "report", "settembre", "--csv", "-")
    assert rows(out)[0][:4] == ["indirizzo", "studente", "genitori/tutori", "stato"]
    assert "written to standard output" in err


@pytest.fixture
def school_role() -> Iterator[str]:
    """A school's role that may connect to the shared database but not create schemas."""
    role = f"{make_url(PG_URL).database}_school"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{role}" CASCADE'))
        conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    yield role
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{role}" CASCADE'))
        conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
    admin.dispose()


def test_a_schema_not_created_yet_is_named_with_the_command_that_creates_it(
    school_role: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_url(PG_URL).set(username=school_role, password=None)
    shown = url.render_as_string(hide_password=True)
    env = {
        **IDENTITY,
        "CREDMAIL_DATABASE__URL": shown,
        "CREDMAIL_DATABASE__SCHEMA": school_role,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CREDMAIL_CONFIG", raising=False)
    assert main(["db", "upgrade"]) == 1
    err = capsys.readouterr().err
    create = f"CREATE SCHEMA {school_role} AUTHORIZATION {school_role}"
    assert err == (
        f"credmail: database {shown}: schema {school_role} does not exist and role "
        f"{school_role} may not create it; create it as PostgreSQL's administrator: "
        f'sudo -u postgres psql {url.database} -c "{create}" (README "Many schools"), '
        "then run `credmail db upgrade`\n"
    )
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # what the line says to do
        conn.execute(text(create))
    admin.dispose()
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    main(["status", "--json"])
    assert json.loads(capsys.readouterr().out)["review_pending"] == 0
