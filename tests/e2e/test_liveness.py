"""Liveness: `credmail status`, and the systemd notify/watchdog protocol."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.support.daemon import Daemon
from tests.support.requests import request
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import server_env

pytestmark = pytest.mark.e2e


class NotifySocket:
    """Plays systemd's side of sd_notify: collects the datagrams with their arrival time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.received: list[tuple[float, str]] = []

    def collect(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.received.append((time.monotonic(), self.sock.recv(4096).decode()))
            except TimeoutError:
                continue

    def since(self, moment: float, message: str) -> int:
        return sum(1 for at, text in self.received if at >= moment and text == message)


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    listener = NotifySocket(tmp_path / "notify.sock")
    yield listener
    listener.sock.close()


def test_status_reports_the_last_sync(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, tmp_path: Path
) -> None:
    daemon = Daemon(
        tmp_path, server_env(dovecot, smtp, sqlite_url, daemon__stale_after_seconds="60")
    )
    missing = daemon.cli("status")  # read-only: names the missing database, creates none
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert daemon.cli("db", "upgrade").returncode == 0
    never = daemon.cli("status")
    assert never.returncode == 1 and "never" in never.stdout
    dovecot.append(request("sconosciuto@example.net"))
    assert daemon.cli("run", "--once").returncode == 0
    fresh = daemon.cli("status", "--json")
    report = json.loads(fresh.stdout)
    assert fresh.returncode == 0 and report["healthy"] and report["review_pending"] == 1
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE checkpoints SET synced_at = '2020-01-01 00:00:00'"))
    engine.dispose()
    stale = daemon.cli("status")
    assert stale.returncode == 1 and stale.stdout.startswith("STALE")


def test_watchdog_pings_only_while_syncs_succeed(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, tmp_path: Path, notify: NotifySocket
) -> None:
    settings = server_env(
        dovecot, smtp, sqlite_url, mailbox__timeout_seconds="2", mailbox__poll_interval_seconds="1"
    )
    daemon = Daemon(
        tmp_path, settings, {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000"}
    )
    daemon.start()
    try:
        notify.collect(4)
        assert notify.since(0, "READY=1") == 1
        healthy = notify.since(0, "WATCHDOG=1")
        assert healthy >= 2  # about one a second (half the watchdog period)
        session = dovecot.session_pid()
        dovecot.stop()  # an open IMAP session outlives the master: end it too
        os.kill(session, signal.SIGKILL)
        notify.collect(1.5)  # drain what was sent before the daemon noticed
        outage = time.monotonic()
        notify.collect(4)
        assert notify.since(outage, "WATCHDOG=1") == 0  # systemd would restart it now
        dovecot.start()
        back = time.monotonic()
        notify.collect(10)
        assert notify.since(back, "WATCHDOG=1") >= 2
        assert daemon.stop() == 0
        notify.collect(0.5)
        assert "STOPPING=1" in [text for _at, text in notify.received]
    finally:
        daemon.kill()
        if dovecot.process is None:
            dovecot.start()
