"""What a newcomer following the README hit at the terminal (issue 10), on real servers."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from credmail.samples import directory_csv
from tests.integration.test_cli import Cli, cli, sample
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import IDENTITY

pytestmark = pytest.mark.integration
__all__ = ["cli"]


def _pending(cli: Cli, dovecot: Dovecot, name: str = "shared-address-unnamed") -> int:
    cli("directory", "import", cli.csv(directory_csv(date.today())))
    dovecot.append(sample(name))
    cli("run", "--once")
    (item,) = json.loads(cli("review", "list", "--json"))
    return int(item["id"])


def test_the_secretary_behind_sudo_decides(
    cli: Cli, dovecot: Dovecot, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = _pending(cli, dovecot)
    monkeypatch.setenv("SUDO_USER", "rossi.segreteria")
    cli("review", "approve", str(item), "--person", "G1003")
    assert "approvata da rossi.segreteria (terminale)" in cli("review", "show", str(item))


def test_directory_import_reads_standard_input(cli: Cli) -> None:
    data = directory_csv(date.today()).decode()
    assert "added 11" in cli("directory", "import", "-", stdin=data)
    assert cli.people() == 11


def test_a_person_not_linked_to_the_sender_needs_conferma(
    cli: Cli, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    item = _pending(cli, dovecot)
    out = cli("review", "approve", str(item), "--person", "T3001", expect=1)
    assert "T3001 non è tra le persone collegate" in out
    assert "G1002" in out and "G1003" in out and "--conferma" in out
    assert json.loads(cli("review", "list", "--json"))[0]["id"] == item
    assert "approvata" in cli("review", "approve", str(item), "--person", "T3001", "--conferma")


def test_a_closed_standard_output_ends_quietly(
    cli: Cli, dovecot: Dovecot, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = _pending(cli, dovecot)

    class Closed:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Closed())
    err = cli("review", "show", str(item), expect=141)
    assert err == ""


def test_token_prompt_ctrl_d_and_ctrl_c(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal:
        def isatty(self) -> bool:
            return True

    cli("directory", "import", cli.csv(directory_csv(date.today())))
    monkeypatch.setattr(sys, "stdin", Terminal())

    def typed(error: type[BaseException]) -> None:
        def prompt(_text: str = "") -> str:
            raise error

        monkeypatch.setattr(getpass, "getpass", prompt)

    typed(EOFError)
    out = cli("token", "check", expect=1)
    assert out.strip().splitlines() == [
        "credmail: no token given (type it at the prompt or pipe it in)"
    ]
    typed(KeyboardInterrupt)
    assert "Traceback" not in cli("token", "check", expect=130)


def test_outbox_retry_sends_pending_mail_now(cli: Cli, dovecot: Dovecot, smtp: SmtpServer) -> None:
    cli("directory", "import", cli.csv(directory_csv(date.today())))
    dovecot.append(sample("adult-guardian"))
    smtp.handler.refuse_with = "451 4.3.0 try again later"
    cli("run", "--once")
    (waiting,) = json.loads(cli("outbox", "list", "--status", "pending", "--json"))
    assert waiting["attempts"] == 1

    smtp.handler.refuse_with = None
    cli("run", "--once")
    assert smtp.handler.messages == []  # still backing off
    assert "1 pending message due now" in cli("outbox", "retry")
    cli("run", "--once")
    assert len(smtp.handler.messages) == 1


def test_first_start_says_what_it_skipped_in_words(
    cli: Cli, dovecot: Dovecot, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDMAIL_MAILBOX__PROCESS_EXISTING", "false")
    cli("directory", "import", cli.csv(directory_csv(date.today())))
    dovecot.append(sample("adult-guardian"))
    dovecot.append(sample("ordinary-mail"))
    out = cli("run", "--once")
    assert not out.lstrip().startswith("{")
    assert "first start: 1 request already in the folder left unanswered" in out
    assert "credmail backlog list" in out
    assert "1 skipped request waiting" in cli("backlog", "list")
    summary = json.loads(cli("run", "--once", "--json").splitlines()[0])
    assert (summary["scanned"], summary["skipped_requests"]) == (0, 0)


def test_outbox_list_columns_line_up(cli: Cli, dovecot: Dovecot, smtp: SmtpServer) -> None:
    cli("directory", "import", cli.csv(directory_csv(date.today())))
    dovecot.append(sample("adult-guardian"))
    cli("run", "--once")
    dovecot.append(sample("adult-guardian"))
    cli("run", "--once")
    lines = cli("outbox", "list").splitlines()
    templates = {line.split()[2] for line in lines}
    assert "link_already_sent" in templates, lines
    assert len({line.index("mario.rossi@example.org") for line in lines}) == 1


def test_status_speaks_in_lines_and_local_time(
    cli: Cli, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    cli("directory", "import", cli.csv(directory_csv(date.today())))
    dovecot.append(sample("adult-guardian"))
    smtp.handler.refuse_with = "451 4.3.0 try again later"
    cli("run", "--once")
    down = cli("status")
    assert "outbox: 1 pending; review pending: 0" in down
    assert "delivery ok" not in down and "delivery RETRYING" in down
    assert "{" not in down and "+00:00" not in down
    assert " CET" in down or " CEST" in down  # Europe/Rome, the default time zone
    report = json.loads(cli("status", "--json"))
    assert report["outbox"] == {"pending": 1} and report["delivery_ok"] is True

    smtp.handler.refuse_with = None
    cli("outbox", "retry")
    cli("run", "--once")
    up = cli("status")
    assert "outbox: 1 sent" in up and "delivery ok" in up
    assert "mail has been sent since" in up


def test_a_real_closed_pipe_is_quiet(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CREDMAIL_")},
        **IDENTITY,
        "CREDMAIL_DATABASE__URL": f"sqlite:///{tmp_path / 'credmail.db'}",
    }
    command = [sys.executable, "-m", "credmail"]
    subprocess.run([*command, "db", "upgrade"], env=env, check=True, capture_output=True)
    read, write = os.pipe()
    os.close(read)  # `| head` already gone
    try:
        done = subprocess.run(
            [*command, "limits", "show"], env=env, stdout=write, stderr=subprocess.PIPE
        )
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (141, b"")
