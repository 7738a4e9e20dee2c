"""Issue 10, "the first day of a real school": the sysadmin's commands against real servers."""

from __future__ import annotations

import io
import os
import sys
from datetime import date
from pathlib import Path

import pytest

from credmail.config import FoldersSettings
from credmail.entrypoints.cli import main
from credmail.entrypoints.daemon import run_once
from credmail.samples import SAMPLES, directory_csv
from tests.support.servers import Dovecot, SmtpServer, free_port
from tests.support.wiring import make_app, server_env, server_settings, write_config

pytestmark = pytest.mark.integration


def sample(name: str) -> bytes:
    return next(s for s in SAMPLES if s.name == name).to_bytes()


class Cli:
    """`credmail ...` in process, with a config file written from `server_env`."""

    def __init__(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path, env: dict[str, str]
    ) -> None:
        self.capsys, self.tmp_path, self.env = capsys, tmp_path, env

    def __call__(self, *args: str, expect: int = 0, stdin: str | None = None) -> str:
        config = write_config(self.tmp_path / "credmail.toml", self.env)
        saved = sys.stdin
        sys.stdin = io.StringIO(stdin or "")
        try:
            code = main(["--config", str(config), *args])
        finally:
            sys.stdin = saved
        out, err = self.capsys.readouterr()
        assert code == expect, f"exit {code}: {out}{err}"
        assert "Traceback" not in out + err
        return out + err


@pytest.fixture
def cli(
    dovecot: Dovecot,
    smtp: SmtpServer,
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    for name in list(os.environ):
        if name.startswith("CREDMAIL_"):
            monkeypatch.delenv(name)
    return Cli(capsys, tmp_path, server_env(dovecot, smtp, sqlite_url))


# -- 10.1: a target folder equal to the watched folder ---------------------------------


def test_check_config_refuses_the_watched_folder_as_a_target(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDMAIL_MAILBOX__FOLDERS__ANSWERED", "INBOX")
    out = cli("check-config", expect=2)
    assert "folders.answered = 'INBOX' is the watched folder" in out


def test_a_move_into_the_watched_folder_never_loops_and_the_fixed_config_wins(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    good = server_settings(dovecot, smtp, db_url)
    # A config that slipped past validation (model_copy does not validate).
    bad_box = good.mailbox.model_copy(update={"folders": FoldersSettings(answered="INBOX")})
    bad = good.model_copy(update={"mailbox": bad_box})
    dovecot.append(sample("adult-guardian"))
    app = make_app(bad)
    for _ in range(3):
        run_once(app)
    assert len(dovecot.folder_messages("INBOX")) == 1  # not moved, so not copied back in
    assert len(smtp.handler.messages) == 1

    run_once(make_app(good, directory=False))  # the sysadmin fixed the config
    assert dovecot.folder_messages("INBOX") == {}
    assert len(dovecot.folder_messages("Credenziali/Evase")) == 1
    assert len(smtp.handler.messages) == 1


# -- 10.5: check-config --connect and one-line failures --------------------------------


def test_check_config_connect_reports_each_step(cli: Cli) -> None:
    out = cli("check-config", "--connect")
    assert "signed in as segreteria" in out
    assert "folder INBOX exists" in out
    assert "SMTP 127.0.0.1:" in out and "connected" in out
    assert "ok: database" in out  # the database is reached too
    assert out.rstrip().endswith("configuration ok")


def test_check_config_connect_names_a_missing_folder(cli: Cli, dovecot: Dovecot) -> None:
    cli.env["CREDMAIL_MAILBOX__FOLDER"] = "Posta/Segreteria"
    out = cli("check-config", "--connect", expect=1)
    assert f"IMAP 127.0.0.1:{dovecot.port}:" in out
    assert "'Posta/Segreteria' does not exist; check mailbox.folder" in out
    assert "configuration ok" not in out
    # and `run --once` says the same in one line instead of an imaplib traceback
    err = cli("run", "--once", expect=1).strip().splitlines()[-1]
    assert err.startswith("credmail: IMAP 127.0.0.1:") and "check mailbox.folder" in err


def test_a_wrong_password_is_one_line(cli: Cli) -> None:
    cli.env["CREDMAIL_MAILBOX__PASSWORD"] = "wrong-password"
    for args in (("check-config", "--connect"), ("run", "--once")):
        err = cli(*args, expect=1).strip().splitlines()[-1]
        assert err.startswith("credmail: IMAP 127.0.0.1:")
        assert "login refused" in err and "check mailbox.username" in err


def test_a_refused_connection_is_one_line(cli: Cli) -> None:
    cli.env["CREDMAIL_MAILBOX__PORT"] = str(free_port())
    err = cli("run", "--once", expect=1).strip()
    assert "connection refused; check mailbox.host, mailbox.port" in err
    assert len(err.splitlines()) == 1


def test_a_refused_smtp_connection_is_named_by_check_config(cli: Cli) -> None:
    cli.env["CREDMAIL_SMTP__PORT"] = str(free_port())
    out = cli("check-config", "--connect", expect=1)
    assert "signed in as segreteria" in out
    assert "credmail: SMTP 127.0.0.1:" in out and "check the [smtp] settings" in out


# -- 10.7: read-only commands and secrets -----------------------------------------------


def test_read_only_commands_never_create_a_database(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    cli.env["CREDMAIL_DATABASE__URL"] = f"sqlite:///{missing}"
    for args in (("review", "list"), ("status",), ("outbox", "list"), ("limits", "show")):
        out = cli(*args, expect=1)
        assert f"database sqlite:///{missing} does not exist" in out
    assert not missing.exists()


def test_reviewing_needs_no_mail_secret(cli: Cli, tmp_path: Path) -> None:
    cli("db", "upgrade")
    del cli.env["CREDMAIL_MAILBOX__PASSWORD"]
    cli.env["CREDMAIL_MAILBOX__PASSWORD_FILE"] = str(tmp_path / "unreadable")
    cli.env["CREDMAIL_SMTP__PASSWORD_FILE"] = str(tmp_path / "unreadable")
    assert "Nessuna richiesta" in cli("review", "list")
    out = cli("run", "--once", expect=2)
    assert "mailbox.password_file: cannot read" in out


# -- 10.14: the backlog first start skipped ----------------------------------------------


def test_backlog_is_counted_listed_and_handled(
    cli: Cli, dovecot: Dovecot, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.env["CREDMAIL_MAILBOX__PROCESS_EXISTING"] = "false"
    cli.env["CREDMAIL_LOGGING__FORMAT"] = "json"
    csv = cli.tmp_path / "people.csv"
    csv.write_bytes(directory_csv(date.today()))
    cli("directory", "import", str(csv))
    dovecot.append(sample("adult-guardian"))
    dovecot.append(sample("ordinary-mail"))
    dovecot.append(sample("teacher"))
    out = cli("run", "--once")
    assert '"skipped_messages": 3' in out and '"skipped_requests": 2' in out
    assert smtp.handler.messages == []

    listed = cli("backlog", "list")
    assert "2 skipped requests waiting" in listed
    dry = cli("backlog", "handle", "--dry-run")
    assert "dry run, nothing handled: 2 skipped requests would be handled" in dry
    assert smtp.handler.messages == []
    assert len(dovecot.folder_messages("INBOX")) == 3

    done = cli("backlog", "handle")
    assert "handled 2 skipped requests (2 answered); 2 sent" in done
    assert len(smtp.handler.messages) == 2
    assert len(dovecot.folder_messages("INBOX")) == 1  # the ordinary mail stays
    assert "0 skipped requests waiting" in cli("backlog", "list")


def test_an_unreachable_postgresql_database_is_one_line(cli: Cli) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/credmail_no_such_database"
    cli.env["CREDMAIL_DATABASE__URL"] = url
    err = cli("review", "list", expect=1).strip()
    assert err.startswith(f"credmail: database {url}: ")
    assert err.endswith("check database.url") and len(err.splitlines()) == 1


def test_backlog_is_refused_for_a_maildir(cli: Cli, tmp_path: Path) -> None:
    cli.env["CREDMAIL_MAILBOX__KIND"] = "maildir"
    cli.env["CREDMAIL_MAILBOX__MAILDIR_PATH"] = str(tmp_path / "Maildir")
    assert "backlog needs an IMAP mailbox" in cli("backlog", "list", expect=1)


# -- a newcomer's first install --------------------------------------------------------


def test_a_missing_database_directory_is_named(cli: Cli, tmp_path: Path) -> None:
    state = tmp_path / "var" / "lib" / "credmail"
    cli.env["CREDMAIL_DATABASE__URL"] = f"sqlite:///{state}/credmail.db"
    err = cli("db", "upgrade", expect=1).strip()
    assert len(err.splitlines()) == 1
    assert f"directory {state} does not exist" in err and "check database.url" in err
    state.mkdir(parents=True)
    assert "newest revision" in cli("db", "upgrade")


def test_an_empty_directory_file_is_said_to_be_empty(cli: Cli) -> None:
    empty = cli.tmp_path / "people.csv"
    empty.write_bytes(b"")
    out = cli("directory", "import", str(empty), expect=1)
    assert out == f"credmail: {empty}: the file is empty; nothing imported\n"


def test_a_username_for_a_server_without_auth_names_the_key(cli: Cli) -> None:
    cli.env["CREDMAIL_SMTP__USERNAME"] = "segreteria"
    cli.env["CREDMAIL_SMTP__PASSWORD"] = "a-real-smtp-password"
    err = cli("check-config", "--connect", expect=1).strip().splitlines()[-1]
    assert err.startswith("credmail: SMTP 127.0.0.1:")
    assert err.endswith(
        "the server offers no AUTH but smtp.username is set; remove smtp.username"
        " or use a server that offers AUTH"
    )
    assert "Try connecting via TLS" not in err


def test_a_wrong_imap_password_quotes_the_server_as_text(cli: Cli) -> None:
    cli.env["CREDMAIL_MAILBOX__PASSWORD"] = "wrong-password"
    err = cli("check-config", "--connect", expect=1)
    assert "login refused ([AUTHENTICATIONFAILED]" in err and "b'" not in err
