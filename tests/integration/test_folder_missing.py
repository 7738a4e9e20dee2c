"""A watched folder the mailbox lacks: one error naming mailbox.folder, slow retries, and
the watcher recovers by itself once the folder is created (real Dovecot, real pipeline)."""

from __future__ import annotations

import threading
import time
from collections.abc import MutableMapping
from typing import Any

import pytest
from structlog.testing import capture_logs

from credmail.adapters.imap import ImapSource
from credmail.bootstrap import explain
from credmail.config import Settings
from credmail.runners.systemd import Heartbeat
from credmail.runners.watcher import InboxWatcher
from credmail.service.ports import FolderState
from tests.support.daemon import wait_for
from tests.support.requests import request
from tests.support.servers import IMAP_PASSWORD, Dovecot, SmtpServer
from tests.support.wiring import make_app, server_settings

pytestmark = pytest.mark.integration

FOLDER = "Richieste"
RETRY = 0.4  # stands for the 300 s of a running daemon


class Recorded(Heartbeat):
    """The STATUS= lines systemd would show."""

    def __init__(self) -> None:
        super().__init__(environ={})
        self.statuses: list[str] = []
        self.beats = 0

    def beat(self) -> None:
        self.beats += 1

    def status(self, text: str) -> None:
        self.statuses.append(text)


class CountedSource(ImapSource):
    """The real IMAP source, noting when each sync began (its SELECT)."""

    def __init__(self, settings: Settings) -> None:
        box, names = settings.mailbox, settings.mailbox.folders
        folders = [names.answered, names.review, names.automated, names.errors]
        super().__init__(
            box.host, box.effective_port, "none", box.username, IMAP_PASSWORD, FOLDER, folders
        )
        self.selects: list[float] = []

    def select(self) -> FolderState:
        self.selects.append(time.monotonic())
        return super().select()


def test_a_missing_folder_is_said_once_retried_slowly_and_recovered(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str
) -> None:
    settings = server_settings(dovecot, smtp, sqlite_url, mailbox__folder=FOLDER)
    app = make_app(settings)
    source = CountedSource(settings)
    stop, heartbeat = threading.Event(), Recorded()
    watcher = InboxWatcher(
        app.pipeline,
        source,
        stop,
        heartbeat,
        app.is_login_failure,
        slow_retry_seconds=RETRY,
        explain=explain,
    )
    thread = threading.Thread(target=watcher.run)
    with capture_logs() as logs:
        thread.start()
        try:
            assert wait_for(lambda: len(source.selects) >= 4, 10)
            missing = _events(logs, "mailbox.folder_missing")
            fed_while_missing = heartbeat.beats
            with dovecot.client() as client:  # the sysadmin creates the folder
                client.create_folder(FOLDER)
                client.append(FOLDER, request("mario.rossi@example.org"))
            assert wait_for(lambda: not dovecot.folder_messages(FOLDER), 10)
        finally:
            stop.set()
            thread.join(timeout=10)
    assert not thread.is_alive()
    (error,) = missing  # said once, however many retries
    assert error["log_level"] == "error" and error["folder"] == FOLDER
    assert "check mailbox.folder" in error["error"] and error["retry_in_seconds"] == RETRY
    gaps = [b - a for a, b in zip(source.selects, source.selects[1:4], strict=False)]
    assert all(gap >= RETRY * 0.9 for gap in gaps), gaps  # the slow retry, not a backoff
    assert not _events(logs, "sync.failed")
    assert _events(logs, "mailbox.folder_missing") == missing  # still once
    assert _events(logs, "mailbox.folder_found")
    assert fed_while_missing >= 2  # the watchdog: not hung, a restart would not help
    assert "mailbox.folder" in heartbeat.statuses[0]
    assert heartbeat.statuses[-1] == f"watching {FOLDER}"


def _events(logs: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in list(logs) if entry["event"] == name]
