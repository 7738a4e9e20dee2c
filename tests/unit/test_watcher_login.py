"""The watcher waits long after a refused sign-in, told by the adapter's check."""

from __future__ import annotations

import threading
from collections.abc import MutableMapping
from typing import Any

from structlog.testing import capture_logs

from credmail.runners.watcher import LOGIN_RETRY_SECONDS, InboxWatcher


class Refused(Exception):
    pass


class RefusingPipeline:
    def sync(self, *_args: object, **_kwargs: object) -> None:
        raise Refused("AUTHENTICATIONFAILED")


class NoSource:
    def close(self) -> None:
        return None


def _events(is_login_failure: bool) -> list[MutableMapping[str, Any]]:
    stop = threading.Event()
    stop.set()  # every wait returns at once
    watcher = InboxWatcher(
        RefusingPipeline(),  # type: ignore[arg-type]
        NoSource(),  # type: ignore[arg-type]
        stop,
        is_login_failure=lambda exc: is_login_failure and isinstance(exc, Refused),
    )
    with capture_logs() as logs:
        watcher._cycle()
    return logs


def test_a_refused_sign_in_waits_the_long_retry() -> None:
    (event,) = _events(True)
    assert event["event"] == "mailbox.login_failed"
    assert event["retry_in_seconds"] == LOGIN_RETRY_SECONDS


def test_other_failures_back_off() -> None:
    (event,) = _events(False)
    assert event["event"] == "sync.failed"
