"""The daemon and the demo as a sysadmin and a newcomer run them: real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from credmail.samples import SAMPLES
from tests.support.daemon import Daemon, wait_for
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import server_env

pytestmark = pytest.mark.e2e


def sample(name: str) -> bytes:
    return next(s for s in SAMPLES if s.name == name).to_bytes()


def test_daemon_answers_over_idle_and_stops_cleanly(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, tmp_path: Path
) -> None:
    settings = server_env(
        dovecot,
        smtp,
        sqlite_url,
        mailbox__process_existing="false",
        mailbox__poll_interval_seconds="600",
    )  # only IDLE can wake it
    daemon = Daemon(tmp_path, settings)
    daemon.import_directory()
    dovecot.append(sample("teacher"))  # backlog before the first start: left alone
    daemon.start()
    try:
        assert wait_for(lambda: bool(daemon.events("mailbox.first_start")), 30)
        time.sleep(0.5)  # let it enter IDLE
        dovecot.append(sample("ordinary-mail"))
        dovecot.append(sample("adult-guardian"))
        assert wait_for(lambda: len(smtp.handler.messages) == 1, 30), daemon.text()
        started = time.monotonic()
        assert daemon.stop() == 0
        assert time.monotonic() - started < 10
    finally:
        daemon.kill()

    (reply,) = smtp.handler.parsed()
    assert reply["To"] == "mario.rossi@example.org"
    inbox = dovecot.folder_messages("INBOX")
    assert len(inbox) == 2  # the backlog request and the ordinary mail
    assert all(b"\\Seen" not in data[b"FLAGS"] for data in inbox.values())
    assert [h["outcome"] for h in daemon.events("message.handled")] == ["answered"]
    assert daemon.events("daemon.stopped")
    text = daemon.text()
    assert "mario.rossi@example.org" not in text and "/reset/" not in text


def test_daemon_polls_when_idle_is_off(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, tmp_path: Path
) -> None:
    settings = server_env(
        dovecot, smtp, sqlite_url, mailbox__use_idle="false", mailbox__poll_interval_seconds="1"
    )
    daemon = Daemon(tmp_path, settings)
    daemon.import_directory()
    daemon.start()
    try:
        dovecot.append(sample("teacher"))
        assert wait_for(lambda: len(smtp.handler.messages) == 1, 30)
        assert daemon.stop() == 0
    finally:
        daemon.kill()


def test_config_error_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "credmail.toml"
    config.write_text(
        '[smtp]\nhost = "smtp.example.org"\nprot = 25\nfrom_address = "s@example.org"\n'
        '[links]\nbase_url = "https://registro.example.org"\n'
        '[replies]\nschool_name = "Scuola"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDMAIL_")}
    result = subprocess.run(
        [sys.executable, "-m", "credmail", "--config", str(config), "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "credmail: config error: smtp.prot: unknown key"


def test_demo_runs_every_case(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDMAIL_")}
    result = subprocess.run(
        [sys.executable, "-m", "credmail", "demo", "--workdir", str(tmp_path / "demo")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    for case in SAMPLES:
        assert case.expected in rows[case.name].split(), rows[case.name]
        if case.reply:
            assert case.reply in rows[case.name]
    sent = list((tmp_path / "demo" / "sent").glob("*.eml"))
    assert len(sent) == sum(1 for case in SAMPLES if case.reply)
