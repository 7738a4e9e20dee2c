"""The stop's bound: threads are waited for until most of it, then the process exits."""

from __future__ import annotations

import threading
import time

from structlog.testing import capture_logs

from credmail.runners.shutdown import EXIT_FORCED, JOIN_SHARE, ShutdownBound

SECONDS = 0.5


def test_a_thread_still_busy_is_left_and_the_bound_ends_the_process() -> None:
    codes: list[int] = []
    exited = threading.Event()

    def exit_now(code: int) -> None:
        codes.append(code)
        exited.set()

    bound = ShutdownBound(SECONDS, exit_now)
    stuck = threading.Thread(target=threading.Event().wait, daemon=True)
    stuck.start()
    with capture_logs() as logs:
        started = time.monotonic()
        assert bound.join(stuck) is False
        waited = time.monotonic() - started
        assert exited.wait(5)
    assert SECONDS * JOIN_SHARE * 0.9 <= waited < SECONDS
    assert codes == [EXIT_FORCED]
    assert [entry["event"] for entry in logs] == ["daemon.shutdown_forced"]


def test_a_thread_that_finishes_is_joined_at_once() -> None:
    bound = ShutdownBound(30, lambda code: None)
    done = threading.Thread(target=lambda: None)
    done.start()
    started = time.monotonic()
    assert bound.join(done) is True
    assert time.monotonic() - started < 1
