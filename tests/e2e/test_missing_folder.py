"""`credmail run` watching a folder the mailbox lacks: one error line naming the key, no
retry storm, and SIGTERM still stops it at once (the slow retry's wait is interrupted)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.daemon import Daemon, wait_for
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import server_env

pytestmark = pytest.mark.e2e


def test_a_missing_folder_is_one_error_then_quiet(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, tmp_path: Path
) -> None:
    settings = server_env(dovecot, smtp, sqlite_url, mailbox__folder="Posta/Richieste")
    daemon = Daemon(tmp_path, settings).start()
    try:
        assert wait_for(lambda: bool(daemon.events("mailbox.folder_missing")), 15)
        time.sleep(4)  # the old backoff retried 3 to 4 times in this while
        (line,) = daemon.events("mailbox.folder_missing")
        assert line["level"] == "error" and line["folder"] == "Posta/Richieste"
        assert "check mailbox.folder" in line["error"] and line["retry_in_seconds"] >= 60
        assert daemon.events("sync.failed") == []
        assert daemon.cli("status").returncode == 1  # never synced: unhealthy
        started = time.monotonic()
        assert daemon.stop() == 0
        assert time.monotonic() - started < 3
    finally:
        daemon.kill()
