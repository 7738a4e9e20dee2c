"""Expected failures become one line naming what failed and what to check."""

from __future__ import annotations

import imaplib
import socket
import threading

from imapclient.exceptions import LoginError
from structlog.testing import capture_logs

from credmail.adapters.errors import is_login_failure
from credmail.adapters.explain import explain
from credmail.runners.watcher import InboxWatcher
from credmail.service.ports import SendError


def test_explain_names_the_part_and_the_key_to_check() -> None:
    assert "login refused" in (explain(LoginError("[AUTHENTICATIONFAILED]")) or "")
    assert "check mailbox.folder" in (explain(imaplib.IMAP4.error("select failed")) or "")
    assert "check mailbox.host" in (explain(socket.gaierror(-2, "Name unknown")) or "")
    assert (explain(SendError("535 auth", permanent=True)) or "").startswith("SMTP: 535 auth")
    assert explain(KeyError("bug")) is None  # a bug keeps its traceback


class FailingPipeline:
    def sync(self, *_args: object, **_kwargs: object) -> None:
        raise imaplib.IMAP4.error("select failed: Mailbox doesn't exist: Posta")


class NoSource:
    def close(self) -> None:
        return None


def test_the_daemon_says_what_failed() -> None:
    watcher = InboxWatcher(
        FailingPipeline(),  # type: ignore[arg-type]
        NoSource(),  # type: ignore[arg-type]
        threading.Event(),
        explain=explain,  # as the daemon wires it
    )
    watcher.stop.set()  # the backoff wait returns at once
    with capture_logs() as logs:
        watcher._cycle()
    (failed,) = [entry for entry in logs if entry["event"] == "sync.failed"]
    assert failed["error_type"] == "error"
    assert failed["error"] == (
        "IMAP: the server said: select failed: Mailbox doesn't exist: Posta; check mailbox.folder"
    )


def test_a_refused_login_quotes_the_server_as_text() -> None:
    refused = LoginError(str(imaplib.IMAP4.error(b"[AUTHENTICATIONFAILED] Authentication failed.")))
    assert explain(refused) == (
        "IMAP: login refused ([AUTHENTICATIONFAILED] Authentication failed.); "
        "check mailbox.username and mailbox.password_file"
    )


class RefusedLogin:
    def sync(self, *_args: object, **_kwargs: object) -> None:
        raise LoginError("b'[AUTHENTICATIONFAILED] Authentication failed.'")


class Source(NoSource):
    host = "imap.example.org"


def test_the_daemon_says_why_the_login_failed() -> None:
    watcher = InboxWatcher(
        RefusedLogin(),  # type: ignore[arg-type]
        Source(),  # type: ignore[arg-type]
        threading.Event(),
        is_login_failure=is_login_failure,
        explain=explain,
    )
    watcher.stop.set()
    with capture_logs() as logs:
        watcher._cycle()
    (failed,) = [entry for entry in logs if entry["event"] == "mailbox.login_failed"]
    assert failed["host"] == "imap.example.org"
    assert failed["error"] == (
        "IMAP: login refused ([AUTHENTICATIONFAILED] Authentication failed.); "
        "check mailbox.username and mailbox.password_file"
    )
