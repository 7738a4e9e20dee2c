"""SIGTERM ends `credmail run` within `daemon.shutdown_seconds` even when the mail server
stops answering (`mailbox.timeout_seconds` is a minute, the pod's grace period 20 s), and
nothing is lost: the next start answers what waited, and nothing twice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.daemon import Daemon, wait_for
from tests.support.requests import request
from tests.support.servers import Dovecot, SmtpServer
from tests.support.silent import Silent
from tests.support.wiring import server_env

pytestmark = pytest.mark.e2e

BOUND = 4  # daemon.shutdown_seconds


def _stop_timed(daemon: Daemon) -> tuple[int, float]:
    started = time.monotonic()
    code = daemon.stop(timeout=BOUND + 10)
    return code, time.monotonic() - started


def _started(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, tmp_path: Path, port: int
) -> Daemon:
    """The daemon on `port`, the directory imported and a request waiting in the folder."""
    env = server_env(
        dovecot, smtp, sqlite_url, mailbox__port=str(port), daemon__shutdown_seconds=str(BOUND)
    )
    daemon = Daemon(tmp_path, env)
    daemon.import_directory()
    dovecot.append(request("mario.rossi@example.org"))
    return daemon.start()


def _answer_what_waits(dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, tmp: Path) -> None:
    """A later `run --once` straight to Dovecot (the server is back)."""
    tmp.mkdir()
    direct = Daemon(tmp, server_env(dovecot, smtp, sqlite_url))
    assert direct.cli("run", "--once").returncode == 0


def test_a_server_that_never_greets(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, tmp_path: Path
) -> None:
    silent = Silent()  # accepts the connection, then not a word
    daemon = _started(dovecot, smtp, sqlite_url, tmp_path, silent.port)
    try:
        assert wait_for(lambda: silent.accepted >= 1, 15)
        time.sleep(0.5)  # waiting for the greeting, up to mailbox.timeout_seconds (60)
        code, elapsed = _stop_timed(daemon)
    finally:
        daemon.kill()
        silent.close()
    assert code == 0 and elapsed < BOUND, (code, elapsed, daemon.text()[-1500:])
    (stopped,) = daemon.events("daemon.stopped")
    assert stopped["left_busy"] == ["watcher"]
    _answer_what_waits(dovecot, smtp, sqlite_url, tmp_path / "later")
    assert len(smtp.handler.messages) == 1


def test_a_server_that_falls_silent_mid_idle(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, tmp_path: Path
) -> None:
    relay = Silent(target=dovecot.port)
    daemon = _started(dovecot, smtp, sqlite_url, tmp_path, relay.port)
    try:
        assert wait_for(lambda: len(smtp.handler.messages) == 1, 20), daemon.text()[-1500:]
        time.sleep(1)  # idling
        relay.silence()
        dovecot.append(request("g.esposito@example.org"))  # never reaches the daemon
        time.sleep(0.5)
        code, elapsed = _stop_timed(daemon)  # leaving IDLE: DONE is never answered
    finally:
        daemon.kill()
        relay.close()
    assert code == 0 and elapsed < BOUND, (code, elapsed, daemon.text()[-1500:])
    assert daemon.events("daemon.stopped")[0]["left_busy"] == ["watcher"]
    _answer_what_waits(dovecot, smtp, sqlite_url, tmp_path / "later")
    recipients = [to for _from, tos, _raw in smtp.handler.messages for to in tos]
    assert len(recipients) == 2 and len(set(recipients)) == 2  # the second, and once each
