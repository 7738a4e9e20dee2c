"""IMAP faults with the daemon running: restarts, kicks, hangs, wrong credentials."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from credmail.samples import SAMPLES
from tests.support.daemon import Daemon, wait_for
from tests.support.requests import request
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import server_env

pytestmark = pytest.mark.e2e


@pytest.fixture
def daemon(dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, tmp_path: Path) -> Iterator[Daemon]:
    settings = server_env(
        dovecot,
        smtp,
        sqlite_url,
        mailbox__timeout_seconds="3",
        mailbox__poll_interval_seconds="2",
        daemon__outbox_interval_seconds="1",
    )
    running = Daemon(tmp_path, settings)
    running.import_directory()
    yield running.start()
    running.kill()


def replies(smtp: SmtpServer) -> list[str]:
    return [str(m["In-Reply-To"]).strip() for m in smtp.handler.parsed()]


def teachers(count: int, offset: int = 0) -> list[bytes]:
    """Requests from the adults of the sample directory, each answerable once per 15 min."""
    senders = [
        "mario.rossi@example.org",
        "g.esposito@example.org",
        "davide.neri@example.org",
        "franco.gallo@example.org",
        "sara.verdi@studenti.example.org",
    ]
    return [request(senders[(offset + i) % len(senders)]) for i in range(count)]


def kick(dovecot: Dovecot) -> bool:
    """Drop the daemon's connection; False when it had none at that moment (exit 68)."""
    done = dovecot.doveadm("kick", "segreteria", check=False)
    assert done.returncode in (0, 68), done.stderr
    return done.returncode == 0


def test_reconnects_after_kicks_and_a_dovecot_restart(
    daemon: Daemon, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    dovecot.append(request("mario.rossi@example.org"))
    assert wait_for(lambda: len(smtp.handler.messages) == 1, 15), daemon.text()[-2000:]

    time.sleep(0.5)  # idling now
    assert kick(dovecot)
    dovecot.append(request("g.esposito@example.org"))
    assert wait_for(lambda: len(smtp.handler.messages) == 2, 20), daemon.text()[-2000:]

    dovecot.stop()
    time.sleep(1.5)
    dovecot.start()
    dovecot.append(request("davide.neri@example.org"))
    assert wait_for(lambda: len(smtp.handler.messages) == 3, 30), daemon.text()[-2000:]

    assert len(set(replies(smtp))) == 3
    assert daemon.events("sync.failed")  # it noticed, and said so
    assert daemon.stop() == 0


def test_kicked_while_fetching_a_backlog(
    daemon: Daemon, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    assert wait_for(
        lambda: bool(daemon.events("mailbox.first_start") or daemon.events("imap.connected")), 15
    )
    with dovecot.client() as client:
        for sample in SAMPLES:
            client.append("INBOX", sample.to_bytes())
    kicked = 0
    for _ in range(6):
        kicked += kick(dovecot)
        time.sleep(0.1)
    assert kicked
    expected = sum(1 for s in SAMPLES if s.reply)
    assert wait_for(lambda: len(smtp.handler.messages) >= expected, 40), daemon.text()[-2000:]
    time.sleep(1)
    assert len(replies(smtp)) == len(set(replies(smtp))) == expected
    assert daemon.stop() == 0


def test_a_hung_connection_is_caught_by_the_poll_and_timeouts(
    daemon: Daemon, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    dovecot.append(request("mario.rossi@example.org"))
    assert wait_for(lambda: len(smtp.handler.messages) == 1, 15)
    time.sleep(0.5)
    pid = dovecot.session_pid()
    os.kill(pid, signal.SIGSTOP)  # the server goes silent: IDLE will never report
    try:
        dovecot.append(request("g.esposito@example.org"))
        assert wait_for(lambda: len(smtp.handler.messages) == 2, 30), daemon.text()[-2000:]
    finally:
        os.kill(pid, signal.SIGCONT)
    assert daemon.stop() == 0


def test_wrong_password_one_clear_error_and_slow_retries(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, tmp_path: Path
) -> None:
    settings = server_env(dovecot, smtp, sqlite_url, mailbox__password="not-the-password")
    log = dovecot.root / "dovecot.log"
    before = len(log.read_text())  # the server is shared: earlier tests failed logins too
    daemon = Daemon(tmp_path, settings).start()
    try:
        assert wait_for(lambda: bool(daemon.events("mailbox.login_failed")), 15)
        time.sleep(3)
        assert len(daemon.events("mailbox.login_failed")) == 1
        assert daemon.events("mailbox.login_failed")[0]["retry_in_seconds"] >= 60
        failed = daemon.events("mailbox.login_failed")[0]
        assert failed["host"] == "127.0.0.1"
        assert "check mailbox.username and mailbox.password_file" in failed["error"]
        assert "b'" not in failed["error"] and "not-the-password" not in daemon.text()
        assert daemon.stop() == 0  # the long wait does not delay a stop
    finally:
        daemon.kill()
    failures = log.read_text()[before:].count("auth failed")
    assert 1 <= failures <= 2, failures
